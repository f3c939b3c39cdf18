"""Several users' bookings of one conference in one call: `booking.book_together()`, in
`0007_bookings_of_one_conference_together.sql` beside this file (docs/adr/0019).

Revision ID: 0007
Revises: 0006
"""

from pathlib import Path

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SQL = Path(__file__).resolve().parent / "0007_bookings_of_one_conference_together.sql"


def upgrade() -> None:
    op.execute(SQL.read_text())
