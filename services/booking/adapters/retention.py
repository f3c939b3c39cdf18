"""The booking schema's lifetimes (docs/adr/0024): what expires, and what is kept past its lifetime."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, exists, text

from confbook_common.retention import (
    CommonLifetimes,
    RetentionRule,
    delete_expired,
    idempotency_keys_rule,
    oldest_by,
    outbox_rule,
)
from services.booking.adapters import tables
from services.booking.config import BookingLifetimes


def rules(lifetimes: BookingLifetimes, common: CommonLifetimes) -> list[RetentionRule]:
    """In order: abandoned deliveries free their events, expired events and canceled bookings go next."""
    events, deliveries, bookings = tables.booking_events, tables.webhook_deliveries, tables.bookings
    later = tables.booking_events.alias("later")
    return [
        RetentionRule(
            deliveries,
            lifetimes.webhook_deliveries,
            delete_expired(deliveries, lambda cutoff: deliveries.c.gave_up_at < cutoff),
            oldest_by(deliveries.c.created_at, deliveries.c.delivery_id),
        ),
        RetentionRule(
            events,
            lifetimes.booking_events,
            delete_expired(
                events,
                lambda cutoff: and_(
                    events.c.occurred_at < cutoff,
                    # A booking's latest event stays: the point a stream of it starts or resumes from.
                    exists().where(later.c.booking_id == events.c.booking_id, later.c.sequence > events.c.sequence),
                    # A receiver still owed the event gets it first (delivered ones are deleted on delivery).
                    ~exists().where(deliveries.c.event_sequence == events.c.sequence),
                ),
                oldest_first=events.c.sequence,
            ),
            oldest_by(events.c.occurred_at, events.c.sequence),
        ),
        RetentionRule(
            bookings,
            lifetimes.canceled_bookings,
            _purge_canceled_bookings,
            oldest_by(bookings.c.created_at, bookings.c.booking_id),
        ),
        outbox_rule(tables.outbox, common),
        idempotency_keys_rule(tables.idempotency_keys, common),
    ]


# Canceled bookings of conferences that ended before the cutoff, with their events, unless a
# receiver is still owed one of those. One statement: the events go with their booking.
_CANCELED_BOOKINGS = text(
    """
    WITH doomed AS (
        SELECT b.booking_id
        FROM booking.conference_seats AS s
        JOIN booking.bookings AS b ON b.conference_id = s.conference_id AND b.status = 'CANCELED'
        WHERE s.end_at < :cutoff
          AND NOT EXISTS (
              SELECT 1 FROM booking.booking_events AS e
              JOIN booking.webhook_deliveries AS d ON d.event_sequence = e.sequence
              WHERE e.booking_id = b.booking_id
          )
        LIMIT :batch
        FOR UPDATE OF b SKIP LOCKED
    ), history AS (
        DELETE FROM booking.booking_events AS e USING doomed WHERE e.booking_id = doomed.booking_id
    )
    DELETE FROM booking.bookings AS b USING doomed WHERE b.booking_id = doomed.booking_id
    """
)


def _purge_canceled_bookings(connection: Connection, cutoff: datetime, batch: int) -> int:
    return connection.execute(_CANCELED_BOOKINGS, {"cutoff": cutoff, "batch": batch}).rowcount or 0
