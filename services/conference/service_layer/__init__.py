"""Use cases of the conference service, each in one transaction."""
