"""Each conference's topics as lookup keys (casefolded), indexed, to find conferences by interest.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from confbook_common.validation import topic_key

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "conference"


def upgrade() -> None:
    op.add_column("conferences", sa.Column("topic_keys", sa.ARRAY(sa.Text)), schema=SCHEMA)
    connection = op.get_bind()
    # The keys are Python's casefold(), as everywhere: computed here, not by SQL's lower().
    rows = connection.execute(sa.text(f"SELECT conference_id, topics FROM {SCHEMA}.conferences")).all()
    for conference_id, topics in rows:
        connection.execute(
            sa.text(f"UPDATE {SCHEMA}.conferences SET topic_keys = :keys WHERE conference_id = :id"),
            {"keys": [topic_key(topic) for topic in topics], "id": conference_id},
        )
    op.alter_column("conferences", "topic_keys", nullable=False, schema=SCHEMA)
    op.create_index("conferences_by_topic", "conferences", ["topic_keys"], schema=SCHEMA, postgresql_using="gin")
