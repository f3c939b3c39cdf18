"""The events a booking's changes produce: their types and reasons, as receivers see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.booking.domain.model import BookingView, Status


class EventType(StrEnum):
    CONFIRMED = "booking.confirmed"
    WAITLISTED = "booking.waitlisted"
    OFFERED = "booking.offered"
    CANCELED = "booking.canceled"


# The type follows from the state a change leads to (the database's trigger says the same, migration 0004).
EVENT_TYPE_OF_STATUS = {
    Status.CONFIRMED: EventType.CONFIRMED,
    Status.WAITLISTED: EventType.WAITLISTED,
    Status.CONFIRMATION_PENDING: EventType.OFFERED,
    Status.CANCELED: EventType.CANCELED,
}


class ChangeReason(StrEnum):
    """Why a booking changed; every move states one (a CHECK in migration 0004 lists them too)."""

    USER = "user"  # the person's own request: booking, confirming, canceling
    SEAT_FREED = "seat_freed"  # a seat became free and this booking was at the head of the line
    OVERLAP = "overlap"  # the user confirmed an overlapping booking
    OFFER_EXPIRED = "offer_expired"  # the offer was not confirmed by its deadline
    CONFERENCE_STARTED = "conference_started"  # the line closes at the start


@dataclass(frozen=True)
class BookingEvent:
    """One change of a booking, with the booking as the change left it."""

    event_id: str
    sequence: int
    type: EventType
    reason: ChangeReason
    occurred_at: datetime
    view: BookingView
