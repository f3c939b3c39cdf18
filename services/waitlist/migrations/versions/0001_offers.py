"""Offers being watched, and the waitlist service's outbox and inbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from confbook_common.db.migrations import create_inbox, create_outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "waitlist"


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("booking_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("conference_id", sa.BigInteger, nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("state IN ('OPEN', 'CLOSED')", name="known_offer_state"),
        schema=SCHEMA,
    )
    op.create_index(
        "open_offers_by_deadline", "offers", ["deadline"], schema=SCHEMA, postgresql_where=sa.text("state = 'OPEN'")
    )
    op.create_index("offers_by_conference", "offers", ["conference_id"], schema=SCHEMA)
    create_outbox(SCHEMA)
    create_inbox(SCHEMA)
