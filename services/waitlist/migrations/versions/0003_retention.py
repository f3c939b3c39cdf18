"""Retention (docs/adr/0024): an index for each purge of the waitlist's tables.

- `processed_messages_by_age`: handled message ids past RETENTION_INBOX.
- `closed_offers_by_age`: offers closed longer ago than RETENTION_CLOSED_OFFERS.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "waitlist"


def upgrade() -> None:
    op.create_index("processed_messages_by_age", "processed_messages", ["processed_at"], schema=SCHEMA)
    op.create_index(
        "closed_offers_by_age", "offers", ["updated_at"], schema=SCHEMA, postgresql_where=sa.text("state = 'CLOSED'")
    )
