"""Running a service's Alembic migrations inside its own schema."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import create_engine, pool


def upgrade(
    migrations_dir: Path, database_url: str, schema: str, revision: str = "head", *, role: str | None = None
) -> None:
    """Bring `schema` to `revision` (the newest by default) of `migrations_dir`, logged in with `database_url`
    and acting as `role` (the schema's owner) when given."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["schema"] = schema
    config.attributes["role"] = role
    command.upgrade(config, revision)


def run_migrations() -> None:
    """The body of each service's migrations/env.py: one version table per schema."""
    config = context.config
    schema = config.attributes["schema"]
    role = config.attributes.get("role")
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        if role:
            # What the steps create belongs to the owner; unqualified names mean the schema's own.
            quote = connection.dialect.identifier_preparer.quote
            connection.exec_driver_sql(f"SET ROLE {quote(role)}")
            connection.exec_driver_sql(f"SET search_path = {quote(schema)}")
            connection.commit()
        context.configure(connection=connection, version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


# The messaging tables as first created. These are migration steps, frozen: a
# later change to messaging/outbox.py or messaging/inbox.py needs a new step.


def create_outbox(schema: str) -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("message_id", sa.Text, nullable=False, unique=True),
        sa.Column("exchange", sa.Text, nullable=False),
        sa.Column("routing_key", sa.Text, nullable=False),
        sa.Column("message_type", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.create_index("outbox_pending", "outbox", ["id"], schema=schema, postgresql_where=sa.text("published_at IS NULL"))


def add_outbox_trace_context(schema: str) -> None:
    """The trace an event was written in, so that its publishing continues that trace (W3C headers as JSON)."""
    op.add_column("outbox", sa.Column("trace_context", sa.Text), schema=schema)


def create_inbox(schema: str) -> None:
    op.create_table(
        "processed_messages",
        sa.Column("queue", sa.Text, primary_key=True),
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )


def create_idempotency_keys(schema: str) -> None:
    """The table of confbook_common.idempotency, as first created."""
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("response", sa.LargeBinary),
        sa.Column("error_code", sa.Integer),
        sa.Column("error_status", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # Exactly one answer: a response, or a refusal's code and status.
        sa.CheckConstraint(
            "(response IS NULL) = (error_status IS NOT NULL AND error_code IS NOT NULL)", name="one_answer"
        ),
        schema=schema,
    )
    op.create_index("idempotency_keys_by_age", "idempotency_keys", ["created_at"], schema=schema)
