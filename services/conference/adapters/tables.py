"""The conference schema, as SQLAlchemy Core tables."""

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects import postgresql

from confbook_common.idempotency import idempotency_keys_table
from confbook_common.messaging.outbox import outbox_table
from services.conference.config import SCHEMA

metadata = MetaData(schema=SCHEMA)

conferences = Table(
    "conferences",
    metadata,
    Column("conference_id", BigInteger, Identity(), primary_key=True),
    Column("name", Text, nullable=False),
    Column("name_key", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("slots", Integer, nullable=False),
    Column("topics", ARRAY(Text), nullable=False),
    # The topics casefolded (validation.topic_key), for finding conferences by interest.
    Column("topic_keys", postgresql.ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Set once the ConferenceStarted event is in the outbox.
    Column("start_announced_at", DateTime(timezone=True)),
    # The subject of the access token that created it (NULL: created before conferences had owners).
    Column("owner_subject", Text),
    UniqueConstraint("name_key", name="conference_name_unique"),
    CheckConstraint("end_at > start_at", name="conference_ends_after_start"),
    CheckConstraint("end_at - start_at <= interval '12 hours'", name="conference_at_most_12_hours"),
    CheckConstraint("slots > 0", name="conference_has_slots"),
    Index("conferences_by_start", "start_at", "conference_id"),
    Index("conferences_to_announce", "start_at", postgresql_where=text("start_announced_at IS NULL")),
    Index("conferences_by_topic", "topic_keys", postgresql_using="gin"),
)

outbox = outbox_table(metadata)
idempotency_keys = idempotency_keys_table(metadata)
