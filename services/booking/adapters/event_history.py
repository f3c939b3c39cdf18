"""Reading each booking's history of events (written by the database with every change, migration 0004)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Row, bindparam, func, select

from services.booking.adapters.tables import booking_events, bookings, conference_seats
from services.booking.domain.events import ActorRole, BookingEvent, ChangeReason, EventType
from services.booking.domain.model import Booking, BookingView, Conference, Status

# Events name a booking by its id; every event is read with the booking and its conference.
_EVENTS = (
    select(
        booking_events.c.sequence,
        booking_events.c.event_id,
        booking_events.c.type,
        booking_events.c.reason,
        booking_events.c.occurred_at,
        booking_events.c.status,
        booking_events.c.offer_deadline,
        booking_events.c.waitlist_position,
        booking_events.c.actor_role,
        bookings.c.booking_id,
        bookings.c.user_id,
        bookings.c.created_at,
        conference_seats.c.conference_id,
        conference_seats.c.name,
        conference_seats.c.start_at,
        conference_seats.c.end_at,
        conference_seats.c.slots,
    )
    .join(bookings, bookings.c.booking_id == booking_events.c.booking_id)
    .join(conference_seats, conference_seats.c.conference_id == bookings.c.conference_id)
)

_EVENTS_AFTER = (
    _EVENTS.where(
        booking_events.c.booking_id == bindparam("booking_id"), booking_events.c.sequence > bindparam("after")
    )
    .order_by(booking_events.c.sequence)
    .limit(bindparam("limit"))
)

_LATEST_OF_EACH = (
    select(booking_events.c.booking_id, func.max(booking_events.c.sequence))
    .where(booking_events.c.booking_id.in_(bindparam("booking_ids", expanding=True)))
    .group_by(booking_events.c.booking_id)
)

_SEQUENCE_OF = select(booking_events.c.sequence).where(
    booking_events.c.booking_id == bindparam("booking_id"), booking_events.c.event_id == bindparam("event_id")
)

# The sequence and id of a booking's latest event, as columns of a query over bookings.
_LATEST = (
    select(booking_events)
    .where(booking_events.c.booking_id == bookings.c.booking_id)
    .order_by(booking_events.c.sequence.desc())
    .limit(1)
)
LATEST_SEQUENCE = func.coalesce(_LATEST.with_only_columns(booking_events.c.sequence).scalar_subquery(), 0)
LATEST_EVENT_ID = _LATEST.with_only_columns(booking_events.c.event_id).scalar_subquery()


def to_event(row: Row) -> BookingEvent:
    booking = Booking(
        booking_id=row.booking_id,
        user_id=row.user_id,
        conference=Conference(
            conference_id=row.conference_id, name=row.name, start=row.start_at, end=row.end_at, slots=row.slots
        ),
        status=Status(row.status),
        offer_deadline=row.offer_deadline,
        created_at=row.created_at,
        updated_at=row.occurred_at,
    )
    return BookingEvent(
        event_id=str(row.event_id),
        sequence=row.sequence,
        type=EventType(row.type),
        reason=ChangeReason(row.reason),
        occurred_at=row.occurred_at,
        view=BookingView(booking, row.waitlist_position),
        actor_role=ActorRole(row.actor_role),
    )


class EventHistory:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def after(self, booking_id: int, sequence: int, *, limit: int = 100) -> list[BookingEvent]:
        """The booking's events recorded after `sequence`, oldest first."""
        rows = self._connection.execute(_EVENTS_AFTER, {"booking_id": booking_id, "after": sequence, "limit": limit})
        return [to_event(row) for row in rows]

    def sequence_of(self, booking_id: int, event_id: str) -> int | None:
        """Where `event_id` is in the booking's history; None if it is not one of its events."""
        return self._connection.execute(_SEQUENCE_OF, {"booking_id": booking_id, "event_id": event_id}).scalar()

    def by_sequences(self, sequences: Sequence[int]) -> dict[int, BookingEvent]:
        rows = self._connection.execute(_EVENTS.where(booking_events.c.sequence.in_(list(sequences))))
        return {row.sequence: to_event(row) for row in rows}

    def of_bookings(self, booking_ids: Sequence[int]) -> dict[int, list[BookingEvent]]:
        """Each booking's whole history (as far as retention keeps it), oldest first."""
        rows = self._connection.execute(
            _EVENTS.where(booking_events.c.booking_id.in_(list(booking_ids))).order_by(booking_events.c.sequence)
        )
        histories: dict[int, list[BookingEvent]] = {booking_id: [] for booking_id in booking_ids}
        for row in rows:
            histories[row.booking_id].append(to_event(row))
        return histories

    def latest_sequences(self, booking_ids: Sequence[int]) -> dict[int, int]:
        """The sequence of each booking's latest event (bookings without one are left out)."""
        rows = self._connection.execute(_LATEST_OF_EACH, {"booking_ids": list(booking_ids)})
        return {booking_id: sequence for booking_id, sequence in rows}
