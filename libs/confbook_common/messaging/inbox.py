"""The inbox: ids of messages already handled, written in the same transaction as the effect."""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, Index, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import insert


def processed_messages_table(metadata: MetaData) -> Table:
    """The inbox in the schema of `metadata` (created by each consuming service's migration)."""
    return Table(
        "processed_messages",
        metadata,
        Column("queue", Text, primary_key=True),
        Column("message_id", Text, primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("processed_messages_by_age", "processed_at"),  # for retention (waitlist migration 0003)
    )


class Inbox:
    def __init__(self, connection: Connection, table: Table) -> None:
        self._connection = connection
        self._table = table

    def first_delivery(self, queue: str, message_id: str) -> bool:
        """Record the message as handled; False if it already was (a redelivery)."""
        inserted = self._connection.execute(
            insert(self._table)
            .values(queue=queue, message_id=message_id)
            .on_conflict_do_nothing()
            .returning(self._table.c.message_id)
        ).first()
        return inserted is not None
