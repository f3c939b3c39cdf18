"""The outbox keeps the trace each event was written in.

Revision ID: 0002
Revises: 0001
"""

from confbook_common.db.migrations import add_outbox_trace_context

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "waitlist"


def upgrade() -> None:
    add_outbox_trace_context(SCHEMA)
