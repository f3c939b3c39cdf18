"""A booking in one call, lines numbered per conference, and a waitlist position that costs the same at any length.

- `conference_seats` gains `name_key` (the copy is found by name without asking the
  conference service), `waiting` (the length of the line) and `tickets_issued`.
- `join_order` becomes the booking's ticket in its conference's line, issued by a
  trigger from `tickets_issued` whenever a booking joins a line; the global
  sequence goes.
- `waitlist_tree`, kept by triggers, counts the waiting bookings as a Fenwick
  tree over each line's tickets: a position is a sum of at most 31 rows.

- `booking.book()` is the booking transaction: one statement, one round trip.

The functions and triggers are in `0002_booking_in_one_call.sql` beside this file.

Revision ID: 0002
Revises: 0001
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import op

from confbook_common.validation import conference_name_key

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "booking"
SQL = Path(__file__).resolve().parent / "0002_booking_in_one_call.sql"


def upgrade() -> None:
    op.add_column("conference_seats", sa.Column("name_key", sa.Text), schema=SCHEMA)
    op.add_column(
        "conference_seats", sa.Column("waiting", sa.Integer, nullable=False, server_default="0"), schema=SCHEMA
    )
    op.add_column(
        "conference_seats",
        sa.Column("tickets_issued", sa.BigInteger, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    connection = op.get_bind()
    # The key is Python's casefold(), as in the conference service: computed here, not by SQL's lower().
    copies = connection.execute(sa.text(f"SELECT conference_id, name FROM {SCHEMA}.conference_seats")).all()
    for conference_id, name in copies:
        connection.execute(
            sa.text(f"UPDATE {SCHEMA}.conference_seats SET name_key = :key WHERE conference_id = :id"),
            {"key": conference_name_key(name), "id": conference_id},
        )
    op.alter_column("conference_seats", "name_key", nullable=False, schema=SCHEMA)
    op.create_index("conference_seats_by_name", "conference_seats", ["name_key"], unique=True, schema=SCHEMA)
    op.create_check_constraint("waiting_counted", "conference_seats", "waiting >= 0", schema=SCHEMA)
    # A ticket and every tree node stay below 2^31 (see waitlist_tree_nodes_covering).
    op.create_check_constraint(
        "tickets_in_range", "conference_seats", "tickets_issued BETWEEN 0 AND 2147483647", schema=SCHEMA
    )

    # Number each line 1, 2, 3... in its present order, and count it.
    op.execute(f"""
        UPDATE {SCHEMA}.bookings AS b SET join_order = numbered.ticket
        FROM (
            SELECT booking_id, row_number() OVER (PARTITION BY conference_id ORDER BY join_order) AS ticket
            FROM {SCHEMA}.bookings WHERE status = 'WAITLISTED'
        ) AS numbered
        WHERE b.booking_id = numbered.booking_id
    """)
    op.execute(f"""
        UPDATE {SCHEMA}.conference_seats AS s SET waiting = line.waiting, tickets_issued = line.waiting
        FROM (
            SELECT conference_id, count(*) AS waiting FROM {SCHEMA}.bookings
            WHERE status = 'WAITLISTED' GROUP BY conference_id
        ) AS line
        WHERE s.conference_id = line.conference_id
    """)
    op.execute(f"DROP SEQUENCE {SCHEMA}.waitlist_join_order")
    op.create_table(
        "waitlist_tree",
        sa.Column("conference_id", sa.BigInteger, primary_key=True),
        sa.Column("node", sa.BigInteger, primary_key=True),
        sa.Column("waiting", sa.Integer, nullable=False),
        # No foreign key: only the triggers write it, under the ledger row's lock, and a key
        # check would cost a lookup on every join.
        schema=SCHEMA,
    )
    op.execute(SQL.read_text())
    # The tree of the lines as they are now. Every ticket 1..n of a renumbered line is waiting,
    # so node k, counting the tickets in (k - lowbit(k), k], holds lowbit(k).
    op.execute(f"""
        INSERT INTO {SCHEMA}.waitlist_tree (conference_id, node, waiting)
        SELECT conference_id, join_order, join_order & -join_order
        FROM {SCHEMA}.bookings WHERE status = 'WAITLISTED'
    """)
