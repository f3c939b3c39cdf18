"""PostgreSQL tables and repositories of the conference schema."""
