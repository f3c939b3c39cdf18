"""Every booking change recorded as an event, and webhooks with their pending deliveries.

- `booking_events`: one row per booking change, written by a trigger on `bookings`
  in the same transaction as the change (so no path can change a booking without
  its event, and a rolled-back change leaves none). It is each booking's history:
  streams resume from it, and webhook deliveries are made from it.
- `webhooks`: subscriptions, with each receiver's retry state.
- `webhook_deliveries`: one row per event still owed to a receiver.

The trigger and its function are in `0004_booking_events_and_webhooks.sql` beside this file.

Revision ID: 0004
Revises: 0003
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "booking"
SQL = Path(__file__).resolve().parent / "0004_booking_events_and_webhooks.sql"

EVENT_TYPES = ("booking.confirmed", "booking.waitlisted", "booking.offered", "booking.canceled")
REASONS = ("user", "seat_freed", "overlap", "offer_expired", "conference_started")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "booking_events",
        # Order of recording; a booking's own events commit in this order, as its row lock serializes them.
        sa.Column("sequence", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "event_id", postgresql.UUID, nullable=False, unique=True, server_default=sa.text("gen_random_uuid()")
        ),
        sa.Column("booking_id", sa.BigInteger, sa.ForeignKey(f"{SCHEMA}.bookings.booking_id"), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        # The booking as the change left it.
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("offer_deadline", sa.DateTime(timezone=True)),
        sa.Column("waitlist_position", sa.Integer),
        # False until the webhook dispatcher has made this event's deliveries.
        sa.Column("dispatched", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint(_one_of("type", EVENT_TYPES), name="known_event_type"),
        sa.CheckConstraint(_one_of("reason", REASONS), name="known_reason"),
        schema=SCHEMA,
    )
    op.create_index("booking_history", "booking_events", ["booking_id", "sequence"], schema=SCHEMA)
    op.create_index(
        "events_to_dispatch", "booking_events", ["sequence"], schema=SCHEMA, postgresql_where=sa.text("NOT dispatched")
    )
    op.create_table(
        "webhooks",
        sa.Column("webhook_id", postgresql.UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("url", sa.Text, nullable=False),
        # NULL: every event type.
        sa.Column("event_types", sa.ARRAY(sa.Text)),
        # NULL: every conference.
        sa.Column("conference_id", sa.BigInteger, sa.ForeignKey(f"{SCHEMA}.conference_seats.conference_id")),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # The receiver's failures in a row, and when it may be tried again: one failing
        # receiver waits as a whole rather than each of its deliveries hammering it.
        sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "webhook_id",
            postgresql.UUID,
            sa.ForeignKey(f"{SCHEMA}.webhooks.webhook_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_sequence", sa.BigInteger, sa.ForeignKey(f"{SCHEMA}.booking_events.sequence"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # When it may be sent next; a sender claims it by moving this past its attempt (a lease).
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        # Set once retries ran out; kept for a person to inspect.
        sa.Column("gave_up_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("webhook_id", "event_sequence", name="one_delivery_per_event_and_receiver"),
        schema=SCHEMA,
    )
    op.create_index(
        "deliveries_due",
        "webhook_deliveries",
        ["webhook_id", "due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("gave_up_at IS NULL"),
    )
    op.execute(SQL.read_text())
