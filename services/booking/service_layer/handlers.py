"""The booking service's use cases. Each runs in one transaction and is re-run after a lost race.

Every change to a booking locks, in this order: the user (for the user's own
requests), then the seat ledgers of the conferences involved (ascending id), then
the bookings. A status read under those locks cannot change before the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from confbook.events.v1 import events_pb2
from confbook_common.db import retries_on_conflict
from confbook_common.timestamps import to_timestamp
from confbook_common.validation import conference_name_key
from services.booking.adapters.conference_directory import ConferenceDirectory
from services.booking.adapters.repository import BookAttempt, BookOutcome
from services.booking.domain.errors import (
    AlreadyBooked,
    BookingAlreadyCanceled,
    BookingNotFound,
    BookingNotPending,
    ConferenceNotStarted,
    ConferenceStarted,
    ConfirmationExpired,
    OverlappingBooking,
    UserNotFound,
)
from services.booking.domain.model import (
    Booking,
    BookingView,
    Conference,
    ExpiryOutcome,
    SeatAvailability,
    Seats,
    Status,
    User,
    expiry_outcome,
    offer_deadline,
    seat_change,
)
from services.booking.service_layer.unit_of_work import BookingUnitOfWork

Reason = events_pb2.SeatReleased.Reason


# --- users ---------------------------------------------------------------------


def create_user(uow: BookingUnitOfWork, user_id: str, topics: Sequence[str]) -> User:
    with uow:
        user = uow.users.add(user_id, topics)
        uow.commit()
    return user


@retries_on_conflict
def get_user(uow: BookingUnitOfWork, user_id: str) -> User:
    with uow.autocommit():
        user = uow.users.get(user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


@retries_on_conflict
def list_user_bookings(uow: BookingUnitOfWork, user_id: str) -> list[BookingView]:
    with uow.autocommit():
        if uow.users.get(user_id) is None:
            raise UserNotFound(user_id)
        return uow.bookings.views_of_user(user_id)


# --- a user's bookings -------------------------------------------------------------


@retries_on_conflict
def book(
    uow: BookingUnitOfWork, directory: ConferenceDirectory, *, user_id: str, conference_name: str, now: datetime
) -> BookingView:
    """CONFIRMED when a seat is open to newcomers, otherwise WAITLISTED at the end of the line.

    Usually one call of the database's booking.book(), which decides, writes and
    commits in a single round trip. The conference's copy is usually here already
    (see seat_availability); if not, it is copied from the conference service
    first (conferences never change). A user who waits for an
    overlapping conference books in a transaction that also cancels those bookings
    if this one is confirmed.
    """
    with uow.autocommit():
        attempt = uow.bookings.book(user_id, conference_key=conference_name_key(conference_name), now=now)
    if attempt.outcome is BookOutcome.CONFERENCE_UNKNOWN:
        conference = directory.by_name(conference_name)
        with uow.autocommit():
            uow.seats.ensure(conference)
            attempt = uow.bookings.book(user_id, conference_id=conference.conference_id, now=now)
    if attempt.outcome is BookOutcome.HAS_NEIGHBOURS:
        assert attempt.conference is not None
        return _book_beside_neighbours(uow, user_id, attempt.conference, now)
    return _booked(attempt, user_id)


def _book_beside_neighbours(uow: BookingUnitOfWork, user_id: str, conference: Conference, now: datetime) -> BookingView:
    with uow:
        _, neighbours = _lock_for_change(uow, user_id, conference)
        attempt = uow.bookings.book(user_id, conference_id=conference.conference_id, now=now, neighbours_locked=True)
        view = _booked(attempt, user_id)
        if view.booking.status is Status.CONFIRMED:
            _cancel_overlapping(uow, view.booking, neighbours, now)
        uow.commit()
    return view


def _booked(attempt: BookAttempt, user_id: str) -> BookingView:
    """The new booking, or the error that says why there is none."""
    if attempt.outcome is BookOutcome.BOOKED:
        assert attempt.view is not None
        return attempt.view
    assert attempt.conference is not None
    name = attempt.conference.name
    match attempt.outcome:
        case BookOutcome.USER_NOT_FOUND:
            raise UserNotFound(user_id)
        case BookOutcome.CONFERENCE_STARTED:
            raise ConferenceStarted(name)
        case BookOutcome.ALREADY_BOOKED:
            raise AlreadyBooked(user_id, name)
        case BookOutcome.OVERLAPPING_BOOKING:
            raise OverlappingBooking(name, attempt.other_conference or "another conference")
    raise AssertionError(f"unexpected outcome {attempt.outcome}")


@retries_on_conflict
def confirm(uow: BookingUnitOfWork, booking_id: int, now: datetime) -> BookingView:
    """Accept an offered seat before its deadline."""
    with uow:
        found = _find(uow, booking_id)
        _, neighbours = _lock_for_change(uow, found.user_id, found.conference)
        booking = _find(uow, booking_id, lock=True)
        if booking.status is not Status.CONFIRMATION_PENDING:
            raise BookingNotPending(booking_id, booking.status)
        if booking.conference.has_started(now):
            raise ConferenceStarted(booking.conference.name)
        if not booking.can_confirm(now):
            raise ConfirmationExpired(booking_id)
        for other in neighbours:
            if other.status is Status.CONFIRMED:
                raise OverlappingBooking(booking.conference.name, other.conference.name)
        confirmed = _move(uow, booking, Status.CONFIRMED, now)
        _cancel_overlapping(uow, confirmed, neighbours, now)
        view = _view(uow, booking_id)
        uow.commit()
    return view


@retries_on_conflict
def cancel(uow: BookingUnitOfWork, booking_id: int, now: datetime) -> BookingView:
    """Cancel an active booking before the conference starts; a held seat goes to the line."""
    with uow:
        found = _find(uow, booking_id)
        uow.users.lock(found.user_id)
        uow.seats.lock([found.conference.conference_id])
        booking = _find(uow, booking_id, lock=True)
        if booking.status is Status.CANCELED:
            raise BookingAlreadyCanceled(booking_id)
        if booking.conference.has_started(now):
            raise ConferenceStarted(booking.conference.name)
        _move(uow, booking, Status.CANCELED, now, reason=Reason.REASON_CANCELED)
        view = _view(uow, booking_id)
        uow.commit()
    return view


@retries_on_conflict
def get_booking(uow: BookingUnitOfWork, booking_id: int) -> BookingView:
    with uow.autocommit():
        return _view(uow, booking_id)


@retries_on_conflict
def seat_availability(uow: BookingUnitOfWork, directory: ConferenceDirectory, conference_id: int) -> SeatAvailability:
    with uow.autocommit():
        seats = uow.seats.get(conference_id)
        if seats is None:
            # The first time this service meets the conference (the gateway asks right after
            # creating it): copy it now, so that no booking has to ask the conference service.
            conference = directory.by_id(conference_id)
            uow.seats.ensure(conference)
            seats = Seats(conference=conference, held=0)
    return SeatAvailability(
        conference_id=conference_id,
        slots=seats.conference.slots,
        held=seats.held,
        open_to_newcomers=seats.open_to_newcomers,
        waiting=seats.waiting,
    )


# --- promotion (called by the waitlist service) ------------------------------------


@retries_on_conflict
def offer_free_seats(uow: BookingUnitOfWork, conference_id: int, now: datetime, window: timedelta) -> list[Booking]:
    """Offer every free seat to the head of the line, in order; idempotent."""
    with uow:
        seats = uow.seats.lock([conference_id]).get(conference_id)
        if seats is None or seats.conference.has_started(now) or seats.free <= 0:
            return []
        deadline = offer_deadline(now, window, seats.conference)
        offers = [
            _move(uow, booking, Status.CONFIRMATION_PENDING, now, offer_deadline=deadline)
            for booking in uow.bookings.line_head(conference_id, seats.free)
        ]
        uow.commit()
    return offers


@retries_on_conflict
def expire_offer(uow: BookingUnitOfWork, booking_id: int, now: datetime) -> ExpiryOutcome:
    """Send an offer past its deadline to the end of the line; a no-op in any other case."""
    with uow:
        found = _find(uow, booking_id)
        uow.seats.lock([found.conference.conference_id])
        booking = _find(uow, booking_id, lock=True)
        outcome = expiry_outcome(booking, now)
        if outcome is ExpiryOutcome.RETURNED_TO_LINE:
            _move(uow, booking, Status.WAITLISTED, now, reason=Reason.REASON_OFFER_EXPIRED)
        elif outcome is ExpiryOutcome.CANCELED:
            _move(uow, booking, Status.CANCELED, now, reason=Reason.REASON_OFFER_EXPIRED)
        uow.commit()
    return outcome


@retries_on_conflict
def close_waitlist(uow: BookingUnitOfWork, conference_id: int, now: datetime) -> int:
    """At the start, cancel every waiting and pending booking; returns how many (0 when repeated).

    One statement for the whole line; no events: nobody is owed a seat of a
    conference that has begun, and the waitlist closes its offers itself.
    """
    with uow:
        seats = uow.seats.lock([conference_id]).get(conference_id)
        if seats is None:
            return 0
        if not seats.conference.has_started(now):
            raise ConferenceNotStarted(seats.conference.name)
        canceled = uow.bookings.cancel_line(conference_id)
        uow.commit()
    return canceled


# --- shared steps ------------------------------------------------------------------


def _find(uow: BookingUnitOfWork, booking_id: int, *, lock: bool = False) -> Booking:
    booking = uow.bookings.get(booking_id, lock=lock)
    if booking is None:
        raise BookingNotFound(booking_id)
    return booking


def _view(uow: BookingUnitOfWork, booking_id: int) -> BookingView:
    view = uow.bookings.view(booking_id)
    if view is None:
        raise BookingNotFound(booking_id)
    return view


def _lock_for_change(
    uow: BookingUnitOfWork, user_id: str, conference: Conference
) -> tuple[dict[int, Seats], list[Booking]]:
    """Lock the user, then the ledgers of `conference` and of every conference the user
    has an active booking for that overlaps it; return those ledgers and bookings."""
    if not uow.users.lock(user_id):
        raise UserNotFound(user_id)
    overlapping = uow.bookings.active_overlapping(user_id, conference)
    seats = uow.seats.lock([conference.conference_id, *(b.conference.conference_id for b in overlapping)])
    # Read again under the ledger locks: an offer may have moved one in between.
    return seats, uow.bookings.active_overlapping(user_id, conference, lock=True)


def _cancel_overlapping(
    uow: BookingUnitOfWork, confirmed: Booking, neighbours: Sequence[Booking], now: datetime
) -> None:
    """A confirmed booking cancels the user's waiting and pending bookings that overlap it."""
    for other in neighbours:
        if other.booking_id != confirmed.booking_id:
            _move(uow, other, Status.CANCELED, now, reason=Reason.REASON_OVERLAP_REMOVED)


def _move(
    uow: BookingUnitOfWork,
    booking: Booking,
    target: Status,
    now: datetime,
    *,
    reason: events_pb2.SeatReleased.Reason.ValueType = Reason.REASON_UNSPECIFIED,
    offer_deadline: datetime | None = None,
) -> Booking:
    """Move one booking, and record in the outbox what the move means to others.

    Every single-booking move goes through here, so that no path can forget an
    event: a seat released before the start is owed to the line (`reason` says
    why it was released), a new offer must be watched, an ended one no longer.
    """
    moved = uow.bookings.move(booking, target, offer_deadline=offer_deadline)
    conference_id = booking.conference.conference_id
    if seat_change(booking.status, target) < 0 and not booking.conference.has_started(now):
        uow.outbox.add(
            events_pb2.SeatReleased(
                conference_id=conference_id, booking_id=booking.booking_id, reason=reason, released_at=to_timestamp(now)
            )
        )
    if booking.status is Status.CONFIRMATION_PENDING and booking.offer_deadline is not None:
        uow.outbox.add(
            events_pb2.OfferEnded(
                booking_id=booking.booking_id,
                conference_id=conference_id,
                deadline=to_timestamp(booking.offer_deadline),
                outcome=_OFFER_OUTCOMES[target],
            )
        )
    if target is Status.CONFIRMATION_PENDING and moved.offer_deadline is not None:
        uow.outbox.add(
            events_pb2.OfferMade(
                booking_id=booking.booking_id,
                conference_id=conference_id,
                user_id=booking.user_id,
                deadline=to_timestamp(moved.offer_deadline),
            )
        )
    return moved


_OFFER_OUTCOMES = {
    Status.CONFIRMED: events_pb2.OfferEnded.OUTCOME_CONFIRMED,
    Status.CANCELED: events_pb2.OfferEnded.OUTCOME_CANCELED,
    Status.WAITLISTED: events_pb2.OfferEnded.OUTCOME_EXPIRED,
}
