"""The outbox keeps the trace each event was written in.

Revision ID: 0005
Revises: 0004
"""

from confbook_common.db.migrations import add_outbox_trace_context

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "booking"


def upgrade() -> None:
    add_outbox_trace_context(SCHEMA)
