"""The outbox keeps the trace each event was written in.

Revision ID: 0003
Revises: 0002
"""

from confbook_common.db.migrations import add_outbox_trace_context

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "booking"


def upgrade() -> None:
    add_outbox_trace_context(SCHEMA)
