"""Users, the seat ledger, bookings with their invariants, and the booking service's outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from confbook_common.db.migrations import create_outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "booking"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("topics", sa.ARRAY(sa.Text), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "conference_seats",
        sa.Column("conference_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("seats_held", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.CheckConstraint("seats_held >= 0 AND seats_held <= slots", name="never_oversold"),
        schema=SCHEMA,
    )
    op.execute(f"CREATE SEQUENCE {SCHEMA}.waitlist_join_order")
    op.create_table(
        "bookings",
        sa.Column("booking_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("user_id", sa.Text, sa.ForeignKey(f"{SCHEMA}.users.user_id"), nullable=False),
        sa.Column(
            "conference_id",
            sa.BigInteger,
            sa.ForeignKey(f"{SCHEMA}.conference_seats.conference_id"),
            nullable=False,
        ),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("during", postgresql.TSTZRANGE, nullable=False),
        sa.Column("join_order", sa.BigInteger),
        sa.Column("offer_deadline", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "status IN ('CONFIRMED', 'WAITLISTED', 'CONFIRMATION_PENDING', 'CANCELED')", name="known_status"
        ),
        sa.CheckConstraint("(status = 'WAITLISTED') = (join_order IS NOT NULL)", name="in_line_iff_waitlisted"),
        sa.CheckConstraint(
            "(status = 'CONFIRMATION_PENDING') = (offer_deadline IS NOT NULL)", name="deadline_iff_pending"
        ),
        postgresql.ExcludeConstraint(
            ("user_id", "="),
            ("during", "&&"),
            using="gist",
            where=sa.text("status = 'CONFIRMED'"),
            name="no_overlapping_confirmed_bookings",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "one_active_booking_per_conference",
        "bookings",
        ["user_id", "conference_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status <> 'CANCELED'"),
    )
    op.create_index(
        "waitlist_line",
        "bookings",
        ["conference_id", "join_order"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'WAITLISTED'"),
    )
    op.create_index(
        "pending_offers",
        "bookings",
        ["conference_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'CONFIRMATION_PENDING'"),
    )
    op.create_index("bookings_by_user", "bookings", ["user_id", "booking_id"], schema=SCHEMA)
    create_outbox(SCHEMA)
