"""The events a booking's changes produce: their types and reasons, as receivers see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from confbook_common.auth.caller import SYSTEM, Caller
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
    """Why a booking changed; every move states one (a CHECK in migrations 0004, 0008 and 0009 lists them too)."""

    USER = "user"  # the person's own request: booking, confirming, canceling
    ORGANIZER = "organizer"  # canceled by the conference's owner or an admin, not by its user
    SEAT_FREED = "seat_freed"  # a seat became free and this booking was at the head of the line
    OVERLAP = "overlap"  # the user confirmed an overlapping booking
    OFFER_EXPIRED = "offer_expired"  # the offer was not confirmed by its deadline
    CONFERENCE_STARTED = "conference_started"  # the line closes at the start
    USER_ERASED = "user_erased"  # canceled because its user was erased (migration 0009)


class ActorRole(StrEnum):
    """Who caused a change: the caller's strongest role, or the system (a CHECK in migration 0008 lists them)."""

    ATTENDEE = "attendee"
    ORGANIZER = "organizer"
    ADMIN = "admin"
    SYSTEM = SYSTEM  # nobody asked for it: an offer, an expiry, the start


@dataclass(frozen=True)
class Actor:
    """Who caused a change, as its event records it."""

    subject: str | None  # None: the system
    role: ActorRole

    @classmethod
    def of(cls, caller: Caller) -> Actor:
        return cls(caller.subject, ActorRole(caller.role.value))


SYSTEM_ACTOR = Actor(None, ActorRole.SYSTEM)


@dataclass(frozen=True)
class BookingEvent:
    """One change of a booking, with the booking as the change left it."""

    event_id: str
    sequence: int
    type: EventType
    reason: ChangeReason
    occurred_at: datetime
    view: BookingView
    actor_role: ActorRole
