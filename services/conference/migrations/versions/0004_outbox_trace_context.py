"""The outbox keeps the trace each event was written in.

Revision ID: 0004
Revises: 0003
"""

from confbook_common.db.migrations import add_outbox_trace_context

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "conference"


def upgrade() -> None:
    add_outbox_trace_context(SCHEMA)
