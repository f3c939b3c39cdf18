"""PostgreSQL tables and repositories of the booking schema; the conference service client."""
