"""The transactional outbox: an event is a row written in the same transaction as its cause."""

from __future__ import annotations

import uuid

from google.protobuf.message import Message
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)

from confbook_common import tracing
from confbook_common.messaging.topology import EVENTS_EXCHANGE, routing_key


def outbox_table(metadata: MetaData) -> Table:
    """The outbox in the schema of `metadata`.

    Services' migrations create it from this definition; changing its columns
    therefore needs a new migration in every service.
    """
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("message_id", Text, nullable=False, unique=True),
        Column("exchange", Text, nullable=False),
        Column("routing_key", Text, nullable=False),
        Column("message_type", Text, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # Unroutable messages wait before the next try instead of blocking the rest.
        Column("available_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("published_at", DateTime(timezone=True)),
        # The W3C trace context the row was written in (JSON), when tracing is on.
        Column("trace_context", Text),
        Index("outbox_pending", "id", postgresql_where=text("published_at IS NULL")),
    )


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a schema's relay."""
    return f"confbook_outbox_{schema}"


class Outbox:
    """Adds events to the outbox inside the caller's transaction."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self._connection = connection
        self._table = table
        self._channel = notify_channel(str(table.schema))

    def add(self, message: Message, *, exchange: str = EVENTS_EXCHANGE, to: str | None = None) -> str:
        """Queue `message` for publishing once this transaction commits; returns its message id.

        Events go to the events exchange routed by type; `exchange="", to=queue`
        sends straight to one queue (the waitlist's timers do that).
        """
        message_id = str(uuid.uuid4())
        self._connection.execute(
            insert(self._table).values(
                message_id=message_id,
                exchange=exchange,
                routing_key=to or routing_key(message),
                message_type=message.DESCRIPTOR.full_name,
                payload=message.SerializeToString(),
                trace_context=tracing.carrier_text(),
            )
        )
        # Delivered on commit only; the relay also polls, so a lost wake-up costs a moment, not a message.
        self._connection.execute(select(func.pg_notify(self._channel, "")))
        return message_id
