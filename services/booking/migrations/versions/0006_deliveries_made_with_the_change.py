"""Webhook deliveries made in the transaction of the change, no NOTIFY per change, and a receiver
held by one sender at a time (docs/adr/0017).

The trigger function of migration 0004 is replaced by the one in
`0006_deliveries_made_with_the_change.sql` beside this file. Events the old webhook
dispatcher had not reached yet get their deliveries here, so an upgrade owes every
receiver what it was owed; then the `dispatched` flag, which only that dispatcher
read, goes.

Revision ID: 0006
Revises: 0005
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "booking"
SQL = Path(__file__).resolve().parent / "0006_deliveries_made_with_the_change.sql"

_DISPATCH_LEFTOVERS = """
INSERT INTO booking.webhook_deliveries (webhook_id, event_sequence)
SELECT webhooks.webhook_id, events.sequence
FROM booking.booking_events AS events
JOIN booking.bookings AS bookings USING (booking_id)
JOIN booking.webhooks AS webhooks
  ON (webhooks.event_types IS NULL OR events.type = ANY (webhooks.event_types))
 AND (webhooks.conference_id IS NULL OR webhooks.conference_id = bookings.conference_id)
WHERE NOT events.dispatched
ORDER BY events.sequence
ON CONFLICT ON CONSTRAINT one_delivery_per_event_and_receiver DO NOTHING
"""


def upgrade() -> None:
    # While a sender sends to the receiver (a lease): one sender at a time, so its events arrive in order.
    op.add_column("webhooks", sa.Column("held_until", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.execute(SQL.read_text())
    op.execute(_DISPATCH_LEFTOVERS)
    op.drop_index("events_to_dispatch", "booking_events", schema=SCHEMA)
    op.drop_column("booking_events", "dispatched", schema=SCHEMA)
