"""Retention and erasure (docs/adr/0024).

- Indexes for the purges: `deliveries_by_event` (an event is kept while a delivery needs it),
  `abandoned_deliveries` (deliveries given up on, past RETENTION_WEBHOOK_DELIVERIES) and
  `conference_seats_by_end` (canceled bookings of conferences ended longer ago than
  RETENTION_CANCELED_BOOKINGS). Booking events and outbox rows are walked by their primary key,
  so the booking path keeps no index more.
- `users.erased_at`: set on the pseudonymous user an erased user's bookings are moved to.
- The reason `user_erased`: a booking canceled because its user was erased.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = "booking"

REASONS = ("user", "organizer", "seat_freed", "overlap", "offer_expired", "conference_started", "user_erased")


def upgrade() -> None:
    op.create_index("deliveries_by_event", "webhook_deliveries", ["event_sequence"], schema=SCHEMA)
    op.create_index(
        "abandoned_deliveries",
        "webhook_deliveries",
        ["gave_up_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("gave_up_at IS NOT NULL"),
    )
    op.create_index("conference_seats_by_end", "conference_seats", ["end_at"], schema=SCHEMA)
    op.add_column("users", sa.Column("erased_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.drop_constraint("known_reason", "booking_events", schema=SCHEMA)
    op.create_check_constraint(
        "known_reason", "booking_events", f"reason IN ({', '.join(repr(each) for each in REASONS)})", schema=SCHEMA
    )
