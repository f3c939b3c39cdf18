"""Use cases of the booking service, each in one transaction."""
