"""The booking schema, as SQLAlchemy Core tables. The constraints are the invariants' last line."""

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSTZRANGE, UUID, ExcludeConstraint

from confbook_common.idempotency import idempotency_keys_table
from confbook_common.messaging.outbox import outbox_table
from services.booking.config import SCHEMA

metadata = MetaData(schema=SCHEMA)

users = Table(
    "users",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("topics", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The subject whose token created it, one user per subject; NULL: made before (migration 0008).
    Column("subject", Text),
    Index("users_by_subject", "subject", unique=True, postgresql_where=text("subject IS NOT NULL")),
    # Set on the pseudonymous user an erased user's bookings were moved to (migration 0009): no one's.
    Column("erased_at", DateTime(timezone=True)),
)

# The booking service's copy of each conference it has seen, and its seat ledger:
# the row every change to the conference's seats or line locks first.
# `waiting` and `tickets_issued` are kept by the database's triggers (migration 0002).
conference_seats = Table(
    "conference_seats",
    metadata,
    Column("conference_id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("name_key", Text, nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("slots", Integer, nullable=False),
    Column("seats_held", Integer, nullable=False, server_default=text("0")),
    Column("waiting", Integer, nullable=False, server_default=text("0")),
    Column("tickets_issued", BigInteger, nullable=False, server_default=text("0")),
    # The conference's owner, as the conference service says; NULL: copied before (migration 0008).
    Column("owner_subject", Text),
    CheckConstraint("seats_held >= 0 AND seats_held <= slots", name="never_oversold"),
    CheckConstraint("waiting >= 0", name="waiting_counted"),
    CheckConstraint("tickets_issued BETWEEN 0 AND 2147483647", name="tickets_in_range"),
    Index("conference_seats_by_name", "name_key", unique=True),
    Index("conference_seats_by_end", "end_at"),
)

bookings = Table(
    "bookings",
    metadata,
    Column("booking_id", BigInteger, Identity(), primary_key=True),
    Column("user_id", Text, ForeignKey("users.user_id"), nullable=False),
    Column("conference_id", BigInteger, ForeignKey("conference_seats.conference_id"), nullable=False),
    Column("status", Text, nullable=False),
    # The conference's time range, copied so that the database itself can forbid overlaps.
    Column("during", TSTZRANGE, nullable=False),
    # While WAITLISTED: its ticket in the conference's line (1, 2, 3...), issued by a trigger on joining.
    Column("join_order", BigInteger),
    Column("offer_deadline", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('CONFIRMED', 'WAITLISTED', 'CONFIRMATION_PENDING', 'CANCELED')", name="known_status"),
    CheckConstraint("(status = 'WAITLISTED') = (join_order IS NOT NULL)", name="in_line_iff_waitlisted"),
    CheckConstraint("(status = 'CONFIRMATION_PENDING') = (offer_deadline IS NOT NULL)", name="deadline_iff_pending"),
    ExcludeConstraint(
        ("user_id", "="),
        ("during", "&&"),
        using="gist",
        where=text("status = 'CONFIRMED'"),
        name="no_overlapping_confirmed_bookings",
    ),
    Index(
        "one_active_booking_per_conference",
        "user_id",
        "conference_id",
        unique=True,
        postgresql_where=text("status <> 'CANCELED'"),
    ),
    Index("waitlist_line", "conference_id", "join_order", postgresql_where=text("status = 'WAITLISTED'")),
    Index("pending_offers", "conference_id", postgresql_where=text("status = 'CONFIRMATION_PENDING'")),
    Index("bookings_by_user", "user_id", "booking_id"),
    Index("bookings_of_conference", "conference_id", "status", "booking_id"),
)

# Counts of waiting bookings as a Fenwick tree over each line's tickets, kept by triggers
# (migration 0002): a waitlist position is a sum of at most 31 of its rows.
waitlist_tree = Table(
    "waitlist_tree",
    metadata,
    Column("conference_id", BigInteger, primary_key=True),
    Column("node", BigInteger, primary_key=True),
    Column("waiting", Integer, nullable=False),
)

# One row per booking change, written by a trigger on `bookings` in the change's own transaction
# (migrations 0004, 0006, 0008): each booking's history, which streams resume from and webhooks deliver.
booking_events = Table(
    "booking_events",
    metadata,
    Column("sequence", BigInteger, Identity(), primary_key=True),
    Column("event_id", UUID(as_uuid=False), nullable=False, unique=True, server_default=text("gen_random_uuid()")),
    Column("booking_id", BigInteger, ForeignKey("bookings.booking_id"), nullable=False),
    Column("type", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("offer_deadline", DateTime(timezone=True)),
    Column("waitlist_position", Integer),
    # Who caused the change (migration 0008): the caller's subject (NULL: the system) and strongest role.
    Column("actor_subject", Text),
    Column("actor_role", Text, nullable=False, server_default=text("'system'")),
    Index("booking_history", "booking_id", "sequence"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("webhook_id", UUID(as_uuid=False), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(Text)),  # NULL: every type
    Column("conference_id", BigInteger, ForeignKey("conference_seats.conference_id")),  # NULL: every conference
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The receiver's failures in a row and when it may be tried again (it waits as a whole).
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("retry_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # While a sender sends to it (a lease): one sender at a time, so its events arrive in order.
    Column("held_until", DateTime(timezone=True)),
    # Its creator: only it sees the subscription, which delivers only what the creator may read:
    # everything if an admin created it (migration 0008).
    Column("owner_subject", Text),
    Column("sees_everything", Boolean, nullable=False, server_default=text("false")),
)

# What each receiver is still owed. `due_at` is also the lease: a sender moves it past its attempt.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", BigInteger, Identity(), primary_key=True),
    Column("webhook_id", UUID(as_uuid=False), ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), nullable=False),
    Column("event_sequence", BigInteger, ForeignKey("booking_events.sequence"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("due_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("gave_up_at", DateTime(timezone=True)),
    # For retention (migration 0009): an event is kept while a delivery needs it; abandoned ones expire.
    Index("deliveries_by_event", "event_sequence"),
    Index("abandoned_deliveries", "gave_up_at", postgresql_where=text("gave_up_at IS NOT NULL")),
)

outbox = outbox_table(metadata)
idempotency_keys = idempotency_keys_table(metadata)
