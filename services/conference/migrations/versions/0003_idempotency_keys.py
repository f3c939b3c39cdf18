"""Idempotency keys of the conference service's write methods, each stored with its answer (docs/adr/0014).

Revision ID: 0003
Revises: 0002
"""

from confbook_common.db.migrations import create_idempotency_keys

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "conference"


def upgrade() -> None:
    create_idempotency_keys(SCHEMA)
