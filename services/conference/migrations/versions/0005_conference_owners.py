"""Each conference remembers the subject that created it: its owner.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for the conferences made before: only an admin may manage those.
    op.execute("ALTER TABLE conference.conferences ADD COLUMN owner_subject text")
