"""Conferences and the conference service's outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from confbook_common.db.migrations import create_outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "conference"


def upgrade() -> None:
    op.create_table(
        "conferences",
        sa.Column("conference_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("topics", sa.ARRAY(sa.Text), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("start_announced_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("name_key", name="conference_name_unique"),
        sa.CheckConstraint("end_at > start_at", name="conference_ends_after_start"),
        sa.CheckConstraint("end_at - start_at <= interval '12 hours'", name="conference_at_most_12_hours"),
        sa.CheckConstraint("slots > 0", name="conference_has_slots"),
        schema=SCHEMA,
    )
    op.create_index("conferences_by_start", "conferences", ["start_at", "conference_id"], schema=SCHEMA)
    op.create_index(
        "conferences_to_announce",
        "conferences",
        ["start_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("start_announced_at IS NULL"),
    )
    create_outbox(SCHEMA)
