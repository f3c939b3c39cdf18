"""Bookings, the seats of a conference, and the rules that move a booking between states."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from confbook_common import validation
from confbook_common.errors import Conflict


class Status(StrEnum):
    CONFIRMED = "CONFIRMED"  # holds a seat
    WAITLISTED = "WAITLISTED"  # in line
    CONFIRMATION_PENDING = "CONFIRMATION_PENDING"  # offered a seat, holds it until its deadline
    CANCELED = "CANCELED"  # final


HOLDS_SEAT = frozenset({Status.CONFIRMED, Status.CONFIRMATION_PENDING})

# Every move a booking may make; anything else is a bug, refused before it reaches the database.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.WAITLISTED: frozenset({Status.CONFIRMATION_PENDING, Status.CANCELED}),
    Status.CONFIRMATION_PENDING: frozenset({Status.CONFIRMED, Status.WAITLISTED, Status.CANCELED}),
    Status.CONFIRMED: frozenset({Status.CANCELED}),
    Status.CANCELED: frozenset(),
}


class IllegalTransition(Conflict):
    code = "ILLEGAL_TRANSITION"

    def __init__(self, booking_id: int, source: Status, target: Status) -> None:
        super().__init__(f"booking {booking_id} cannot go from {source} to {target}")


def seat_change(source: Status | None, target: Status) -> int:
    """How a move changes the number of seats held: +1, 0 or -1 (`None`: a new booking)."""
    return int(target in HOLDS_SEAT) - int(source in HOLDS_SEAT)


@dataclass(frozen=True)
class Conference:
    """What the booking service copies of a conference: its times never change; `slots` is the
    current capacity, which this service owns once the copy exists (docs/adr/0014)."""

    conference_id: int
    name: str
    start: datetime
    end: datetime
    slots: int
    # The subject whose token created it (the conference service says): who may change it and see
    # its bookings, besides admins. None for a conference created before conferences had owners.
    owner_subject: str | None = None

    def has_started(self, now: datetime) -> bool:
        return now >= self.start

    def overlaps(self, other: Conference) -> bool:
        # Back to back (one ends as the other starts) is not an overlap.
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class Seats:
    """A conference's seat ledger: seats held and the length of its line."""

    conference: Conference
    held: int
    waiting: int = 0

    @property
    def free(self) -> int:
        return self.conference.slots - self.held

    @property
    def open_to_newcomers(self) -> int:
        """Seats a new booking could take: none while anyone waits, as a freed seat belongs to the
        head of the line. The database's booking.book() decides each booking by the same rule."""
        return self.free if self.waiting == 0 else 0


@dataclass(frozen=True)
class Booking:
    booking_id: int
    user_id: str
    conference: Conference
    status: Status
    offer_deadline: datetime | None
    created_at: datetime
    updated_at: datetime
    # The subject the booking's user belongs to (None: a user made before users had one). Read with
    # the booking, for domain.access to decide who may see it; None where it was not read.
    user_subject: str | None = None

    def require_move(self, target: Status) -> None:
        if target not in TRANSITIONS[self.status]:
            raise IllegalTransition(self.booking_id, self.status, target)

    def can_confirm(self, now: datetime) -> bool:
        return (
            self.status is Status.CONFIRMATION_PENDING and self.offer_deadline is not None and now < self.offer_deadline
        )


@dataclass(frozen=True)
class BookingView:
    """A booking as its owner sees it: with its current place in line."""

    booking: Booking
    waitlist_position: int | None


@dataclass(frozen=True)
class User:
    user_id: str
    topics: tuple[str, ...]
    created_at: datetime
    # The subject whose token created it: the user a token with that subject acts as (one per
    # subject). None for a user made before users belonged to a subject.
    subject: str | None = None


def new_user_id(user_id: str) -> str:
    return validation.USER_ID("user_id", user_id)


def new_user_topics(topics: Sequence[str]) -> tuple[str, ...]:
    return tuple(validation.topics("topics", topics, max_count=validation.USER_TOPICS_MAX))


def user_id_to_find(user_id: str) -> str:
    # Any id that is not a user's is simply not found (404); only a missing or unsafe one is invalid.
    return validation.USER_ID_LOOKUP("user_id", user_id)


def conference_name_to_find(name: str) -> str:
    return validation.NAME_LOOKUP("name", name)


@dataclass(frozen=True)
class SeatAvailability:
    conference_id: int
    slots: int
    held: int
    open_to_newcomers: int
    waiting: int

    @classmethod
    def of(cls, seats: Seats) -> SeatAvailability:
        return cls(
            conference_id=seats.conference.conference_id,
            slots=seats.conference.slots,
            held=seats.held,
            open_to_newcomers=seats.open_to_newcomers,
            waiting=seats.waiting,
        )


def offer_deadline(now: datetime, window: timedelta, conference: Conference) -> datetime:
    """An offer lasts the confirmation window, but never past the conference start.

    Exact, not rounded: the offer's timer fires one window after the offer, so a
    deadline any later would find the timer early (see docs/adr/0007).
    """
    return min(now + window, conference.start)


class ExpiryOutcome(StrEnum):
    RETURNED_TO_LINE = "RETURNED_TO_LINE"
    CANCELED = "CANCELED"
    NOT_DUE = "NOT_DUE"
    NOT_PENDING = "NOT_PENDING"


def expiry_outcome(booking: Booking, now: datetime) -> ExpiryOutcome:
    """What an expiry timer firing now does to the booking; it may fire late, early or twice."""
    if booking.status is not Status.CONFIRMATION_PENDING or booking.offer_deadline is None:
        return ExpiryOutcome.NOT_PENDING
    if now < booking.offer_deadline:
        return ExpiryOutcome.NOT_DUE
    if booking.conference.has_started(now):
        return ExpiryOutcome.CANCELED  # nobody is waiting for a conference that has begun
    return ExpiryOutcome.RETURNED_TO_LINE
