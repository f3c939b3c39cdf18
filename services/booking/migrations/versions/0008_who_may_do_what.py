"""Who may do what (CONTRACT.md, "Who may do what"): the subjects that own data,
and who caused each change.

- `users.subject`: the subject whose token created the user, one user per subject (a unique
  index where set); NULL for users made before, which only an admin reaches.
- `conference_seats.owner_subject`: the conference's owner, copied with the conference from the
  conference service; NULL for copies made before (only an admin manages those).
- `webhooks.owner_subject` and `webhooks.sees_everything` (its creator was an admin): a webhook
  delivers only what its creator may read. Subscriptions made before have no owner and see
  nothing: nobody can say whose they were, so they deliver nothing more (an operator deletes them).
- `booking_events.actor_subject` and `actor_role` (attendee, organizer, admin or system): who
  caused each change. Earlier changes a person asked for (reason `user`) were an attendee's,
  the only kind of caller there was; the rest were the system's. The reason `organizer`: a
  booking canceled by its conference's owner or an admin.
- `bookings_of_conference`: the organizer's view of one conference, each status in its order.

The functions are in `0008_who_may_do_what.sql` beside this file: `booking.book()` and
`booking.book_together()` take whose user a booking may be for and who books (the ownership
check costs no round trip of its own), and `booking.record_booking_event()` records the actor
and makes deliveries only for the webhooks whose creator may read the booking.

Revision ID: 0008
Revises: 0007
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "booking"
SQL = Path(__file__).resolve().parent / "0008_who_may_do_what.sql"

REASONS = ("user", "organizer", "seat_freed", "overlap", "offer_expired", "conference_started")
ACTOR_ROLES = ("attendee", "organizer", "admin", "system")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.add_column("users", sa.Column("subject", sa.Text), schema=SCHEMA)
    op.create_index(
        "users_by_subject",
        "users",
        ["subject"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("subject IS NOT NULL"),
    )
    op.add_column("conference_seats", sa.Column("owner_subject", sa.Text), schema=SCHEMA)
    op.add_column("webhooks", sa.Column("owner_subject", sa.Text), schema=SCHEMA)
    op.add_column(
        "webhooks", sa.Column("sees_everything", sa.Boolean, nullable=False, server_default=sa.false()), schema=SCHEMA
    )

    op.add_column("booking_events", sa.Column("actor_subject", sa.Text), schema=SCHEMA)
    op.add_column(
        "booking_events",
        sa.Column("actor_role", sa.Text, nullable=False, server_default=sa.text("'system'")),
        schema=SCHEMA,
    )
    op.execute(f"UPDATE {SCHEMA}.booking_events SET actor_role = 'attendee' WHERE reason = 'user'")
    op.create_check_constraint("known_actor_role", "booking_events", _one_of("actor_role", ACTOR_ROLES), schema=SCHEMA)
    op.drop_constraint("known_reason", "booking_events", schema=SCHEMA)
    op.create_check_constraint("known_reason", "booking_events", _one_of("reason", REASONS), schema=SCHEMA)

    # Each status of one conference in booking order (the line has its own index, `waitlist_line`).
    op.create_index("bookings_of_conference", "bookings", ["conference_id", "status", "booking_id"], schema=SCHEMA)
    op.execute(SQL.read_text())
