"""The waitlist schema, as SQLAlchemy Core tables."""

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Index, MetaData, Table, Text, func, text

from confbook_common.messaging.inbox import processed_messages_table
from confbook_common.messaging.outbox import outbox_table
from services.waitlist.config import SCHEMA

metadata = MetaData(schema=SCHEMA)

# One row per booking that has been offered a seat; a new offer to the same
# booking (after it went back to the line) reopens the row with its new deadline.
offers = Table(
    "offers",
    metadata,
    Column("booking_id", BigInteger, primary_key=True, autoincrement=False),
    Column("conference_id", BigInteger, nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("state", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("state IN ('OPEN', 'CLOSED')", name="known_offer_state"),
    Index("open_offers_by_deadline", "deadline", postgresql_where=text("state = 'OPEN'")),
    Index("offers_by_conference", "conference_id"),
    Index("closed_offers_by_age", "updated_at", postgresql_where=text("state = 'CLOSED'")),
)

outbox = outbox_table(metadata)
processed_messages = processed_messages_table(metadata)
