"""The booking service's use cases. Each runs in one transaction and is re-run after a lost race.

Every change to a booking locks, in this order: the user (for the user's own
requests), then the seat ledgers of the conferences involved (ascending id), then
the bookings. A status read under those locks cannot change before the commit.

The use cases a person asks for take the verified `caller` and decide with domain.access
who may do what, with what they read anyway: no decision costs a round trip of its own.
Someone else's user or booking is refused exactly as an unknown one (UserNotFound,
BookingNotFound), so that ids cannot be probed. Each change records its caller as its actor;
the ones nobody asked for (offers, expiry, the start) record the system.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from confbook.events.v1 import events_pb2
from confbook_common.auth.caller import Caller
from confbook_common.db import retries_on_conflict
from confbook_common.timestamps import to_timestamp
from confbook_common.validation import conference_name_key
from services.booking.adapters.conference_directory import ConferenceDirectory
from services.booking.adapters.repository import BookAttempt, Booker, BookOutcome
from services.booking.domain import access
from services.booking.domain.erasure import new_pseudonym
from services.booking.domain.errors import (
    AlreadyBooked,
    BookingAlreadyCanceled,
    BookingNotFound,
    BookingNotPending,
    ConferenceNotStarted,
    ConferenceStarted,
    ConfirmationExpired,
    NotConferenceOwner,
    NotYourUser,
    OverlappingBooking,
    SlotsBelowHeld,
    UnknownEvent,
    UserNotFound,
)
from services.booking.domain.events import SYSTEM_ACTOR, Actor, BookingEvent, ChangeReason
from services.booking.domain.listing import Position, page_token, statuses_listed
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
from services.booking.domain.recommendations import Recommendation, recommend
from services.booking.domain.webhooks import Webhook
from services.booking.service_layer.unit_of_work import BookingUnitOfWork, UnitOfWorkFactory

Reason = events_pb2.SeatReleased.Reason


# --- users ---------------------------------------------------------------------


def create_user(uow: BookingUnitOfWork, user_id: str, topics: Sequence[str], caller: Caller) -> User:
    """A new user, belonging to the caller's subject; a subject has one user (SubjectHasUser)."""
    with uow:
        user = uow.users.add(user_id, topics, caller.subject)
        uow.commit()
    return user


@retries_on_conflict
def get_user(uow: BookingUnitOfWork, user_id: str, caller: Caller) -> User:
    with uow.autocommit():
        return _readable_user(uow, user_id, caller)


@retries_on_conflict
def list_user_bookings(uow: BookingUnitOfWork, user_id: str, caller: Caller) -> list[BookingView]:
    with uow.autocommit():
        _readable_user(uow, user_id, caller)
        return uow.bookings.views_of_user(user_id)


@retries_on_conflict
def recommend_conferences(
    uow: BookingUnitOfWork, directory: ConferenceDirectory, *, user_id: str, limit: int, now: datetime, caller: Caller
) -> list[Recommendation]:
    """Conferences sharing the user's interests that the user can still book, best first."""
    with uow.autocommit():
        user = _readable_user(uow, user_id, caller)
        if not user.topics:
            return []
        bookings = [view.booking for view in uow.bookings.views_of_user(user_id)]
    listings = directory.sharing_topics(user.topics)
    with uow.autocommit():
        ledgers = uow.seats.many(listing.conference.conference_id for listing in listings)
    # The ledger has the current capacity; a conference not copied here yet has its first one, and
    # nobody holding or waiting.
    current = {
        listing.conference.conference_id: ledgers.get(listing.conference.conference_id)
        or Seats(conference=listing.conference, held=0)
        for listing in listings
    }
    listings = [replace(each, conference=current[each.conference.conference_id].conference) for each in listings]
    seats = {conference_id: SeatAvailability.of(ledger) for conference_id, ledger in current.items()}
    return recommend(user_topics=user.topics, listings=listings, seats=seats, bookings=bookings, now=now, limit=limit)


@dataclass(frozen=True)
class UserData:
    """Everything the booking service holds about a user (an export)."""

    user: User
    bookings: list[tuple[BookingView, list[BookingEvent]]]  # each with its history, oldest first
    webhooks: list[Webhook]  # its subject's
    conferences_owned: list[str]  # its subject's, by name


@retries_on_conflict
def export_user(uow: BookingUnitOfWork, user_id: str, caller: Caller) -> UserData:
    """The user, its bookings with their histories, its subject's webhooks and conferences, read
    in one transaction; for whoever may read the user (anyone else: UserNotFound)."""
    with uow:
        user = _readable_user(uow, user_id, caller)
        views = uow.bookings.views_of_user(user_id)
        histories = uow.events.of_bookings([view.booking.booking_id for view in views])
        subject = user.subject
        webhooks = uow.webhooks.of_owner(subject) if subject is not None else []
        conferences = uow.personal_data.conferences_owned(subject) if subject is not None else []
    return UserData(
        user=user,
        bookings=[(view, histories[view.booking.booking_id]) for view in views],
        webhooks=webhooks,
        conferences_owned=conferences,
    )


@dataclass(frozen=True)
class Erasure:
    bookings_canceled: int
    bookings_kept: int


def erase_user(
    uow: BookingUnitOfWork, user_id: str, now: datetime, caller: Caller, *, forget_owner: Callable[[str], object]
) -> Erasure:
    """Erase a user, for whoever may read it (anyone else: UserNotFound, as for an unknown user).

    First `forget_owner(subject)` releases the subject's conferences in the conference service
    (idempotent, so that a failure below is simply retried whole); then one transaction, under the
    user's lock (which every booking for the user takes first, so none can slip in), cancels its
    active bookings as a cancel does and moves the rest of what it holds to a pseudonym
    (adapters.personal_data). A second erasure finds no user: UserNotFound.
    """
    with uow.autocommit():
        user = _readable_user(uow, user_id, caller)
    if user.subject is not None:
        forget_owner(user.subject)
    return _erase(uow, user, now, caller)


@retries_on_conflict
def _erase(uow: BookingUnitOfWork, user: User, now: datetime, caller: Caller) -> Erasure:
    with uow:
        locked = uow.users.get(user.user_id, lock=True)
        if locked is None or locked.subject != user.subject:  # erased meanwhile (and maybe made again)
            raise UserNotFound(user.user_id)
        active = [
            view.booking
            for view in uow.bookings.views_of_user(user.user_id)
            if view.booking.status is not Status.CANCELED and not view.booking.conference.has_started(now)
        ]
        uow.seats.lock(sorted({booking.conference.conference_id for booking in active}))
        actor = Actor.of(caller)
        canceled = 0
        for each in active:
            booking = _find(uow, each.booking_id, None, lock=True)  # as it is under the ledger's lock
            if booking.status is not Status.CANCELED:
                _move(uow, booking, Status.CANCELED, now, reason=ChangeReason.USER_ERASED, actor=actor)
                canceled += 1
        kept = uow.personal_data.pseudonymize(user.user_id, user.subject, new_pseudonym())
        uow.commit()
    return Erasure(bookings_canceled=canceled, bookings_kept=kept)


# --- a user's bookings -------------------------------------------------------------


def _booker(user_id: str, caller: Caller) -> Booker:
    """A booking for `user_id` asked for by `caller`: booking.book() refuses (NOT_YOURS) a user
    the caller may not book for, in the statement that books (domain.access.booking_for_subject)."""
    return Booker(user_id, access.booking_for_subject(caller), Actor.of(caller))


@retries_on_conflict
def book(
    uow: BookingUnitOfWork,
    directory: ConferenceDirectory,
    *,
    user_id: str,
    conference_name: str,
    now: datetime,
    caller: Caller,
) -> BookingView:
    """CONFIRMED when a seat is open to newcomers, otherwise WAITLISTED at the end of the line.

    Usually one call of the database's booking.book(), which decides, writes and
    commits in a single round trip; what is left to do is finish_booking()'s.
    """
    with uow.autocommit():
        attempt = uow.bookings.book(
            _booker(user_id, caller), conference_key=conference_name_key(conference_name), now=now
        )
    return finish_booking(
        uow, directory, attempt, user_id=user_id, conference_name=conference_name, now=now, caller=caller
    )


def book_together(
    uow: BookingUnitOfWork, requests: Sequence[tuple[str, Caller]], *, conference_key: str, now: datetime
) -> list[BookAttempt]:
    """Several bookings of one conference, each `(user_id, caller)` as book() makes it, in the
    order given, in one transaction (docs/adr/0019). Each attempt is then its caller's for
    finish_booking(); if the database raises, nothing was booked and each books on its own."""
    bookers = [_booker(user_id, caller) for user_id, caller in requests]
    with uow.autocommit():
        if len(bookers) == 1:  # alone: exactly as book() makes it, its errors its own
            return [uow.bookings.book(bookers[0], conference_key=conference_key, now=now)]
        return uow.bookings.book_together(bookers, conference_key=conference_key, now=now)


def finish_booking(
    uow: BookingUnitOfWork,
    directory: ConferenceDirectory,
    attempt: BookAttempt,
    *,
    user_id: str,
    conference_name: str,
    now: datetime,
    caller: Caller,
) -> BookingView:
    """The booking a first attempt made, or what is left to make it, or why there is none.

    The conference's copy is usually here already (see seat_availability); if not, it is
    copied from the conference service first (conferences never change). A user who waits
    for an overlapping conference books in a transaction that also cancels those bookings
    if this one is confirmed.
    """
    booker = _booker(user_id, caller)
    if attempt.outcome is BookOutcome.CONFERENCE_UNKNOWN:
        conference = directory.by_name(conference_name)
        with uow.autocommit():
            uow.seats.ensure(conference)
            attempt = uow.bookings.book(booker, conference_id=conference.conference_id, now=now)
    if attempt.outcome is BookOutcome.HAS_NEIGHBOURS:
        assert attempt.conference is not None
        return _book_beside_neighbours(uow, booker, attempt.conference, now)
    return _booked(attempt, user_id)


def _book_beside_neighbours(
    uow: BookingUnitOfWork, booker: Booker, conference: Conference, now: datetime
) -> BookingView:
    """Only for a user booking.book() found the booker may book for (it said HAS_NEIGHBOURS)."""
    with uow:
        _, neighbours = _lock_for_change(uow, booker.user_id, conference)
        attempt = uow.bookings.book(booker, conference_id=conference.conference_id, now=now, neighbours_locked=True)
        view = _booked(attempt, booker.user_id)
        if view.booking.status is Status.CONFIRMED:
            _cancel_overlapping(uow, view.booking, neighbours, now, booker.actor)
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
        case BookOutcome.NOT_YOURS:
            raise NotYourUser()
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
def confirm(uow: BookingUnitOfWork, booking_id: int, now: datetime, caller: Caller) -> BookingView:
    """Accept an offered seat before its deadline (whoever may see the booking may)."""
    with uow:
        found = _find(uow, booking_id, caller)
        _, neighbours = _lock_for_change(uow, found.user_id, found.conference)
        booking = _find(uow, booking_id, caller, lock=True)
        if booking.status is not Status.CONFIRMATION_PENDING:
            raise BookingNotPending(booking_id, booking.status)
        if booking.conference.has_started(now):
            raise ConferenceStarted(booking.conference.name)
        if not booking.can_confirm(now):
            raise ConfirmationExpired(booking_id)
        for other in neighbours:
            if other.status is Status.CONFIRMED:
                raise OverlappingBooking(booking.conference.name, other.conference.name)
        actor = Actor.of(caller)
        confirmed = _move(uow, booking, Status.CONFIRMED, now, reason=ChangeReason.USER, actor=actor)
        _cancel_overlapping(uow, confirmed, neighbours, now, actor)
        view = _view(uow, booking_id, caller)
        uow.commit()
    return view


@retries_on_conflict
def cancel(uow: BookingUnitOfWork, booking_id: int, now: datetime, caller: Caller) -> BookingView:
    """Cancel an active booking before the conference starts; a held seat goes to the line.

    By anyone but the booking's own user (the conference's owner, an admin) it is the
    organizer's cancellation, and its event says so."""
    with uow:
        found = _find(uow, booking_id, caller)
        uow.users.lock(found.user_id)
        uow.seats.lock([found.conference.conference_id])
        booking = _find(uow, booking_id, caller, lock=True)
        if booking.status is Status.CANCELED:
            raise BookingAlreadyCanceled(booking_id)
        if booking.conference.has_started(now):
            raise ConferenceStarted(booking.conference.name)
        organizers = access.is_organizers_cancellation(caller, user_subject=booking.user_subject)
        reason = ChangeReason.ORGANIZER if organizers else ChangeReason.USER
        _move(uow, booking, Status.CANCELED, now, reason=reason, actor=Actor.of(caller))
        view = _view(uow, booking_id, caller)
        uow.commit()
    return view


@retries_on_conflict
def get_booking(uow: BookingUnitOfWork, booking_id: int, caller: Caller) -> BookingView:
    with uow.autocommit():
        return _view(uow, booking_id, caller)


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
    return SeatAvailability.of(seats)


@retries_on_conflict
def change_capacity(
    uow: BookingUnitOfWork,
    directory: ConferenceDirectory,
    *,
    conference_name: str,
    slots: int,
    now: datetime,
    caller: Caller,
) -> SeatAvailability:
    """Set a conference's capacity: never below the seats held; new seats go to the line at once.
    Only its owner or an admin may (NotConferenceOwner: the conference itself is public).

    Under the ledger's lock, which every booking and offer takes before it counts seats,
    so none of them can slip between the check and the change.
    """
    conference = _managed_conference(uow, directory, conference_name, caller, "change its capacity")
    conference_id = conference.conference_id
    with uow:
        seats = uow.seats.lock([conference_id])[conference_id]
        if seats.conference.has_started(now):
            raise ConferenceStarted(seats.conference.name)
        if slots < seats.held:
            raise SlotsBelowHeld(seats.conference.name, slots, seats.held)
        uow.seats.set_slots(conference_id, slots)
        changed = replace(seats, conference=replace(seats.conference, slots=slots))
        if changed.free > seats.free and seats.waiting:
            # The new seats belong to the line, like a freed one: the waitlist service offers them.
            uow.outbox.add(
                events_pb2.SeatReleased(
                    conference_id=conference_id, reason=Reason.REASON_CAPACITY_RAISED, released_at=to_timestamp(now)
                )
            )
        uow.commit()
    return SeatAvailability.of(changed)


@retries_on_conflict
def seats_of(uow: BookingUnitOfWork, conference_ids: Sequence[int]) -> list[SeatAvailability]:
    """The ledgers of those conferences copied here; the others still have their first capacity."""
    with uow.autocommit():
        ledgers = uow.seats.many(conference_ids)
    return [SeatAvailability.of(ledgers[each]) for each in conference_ids if each in ledgers]


@dataclass(frozen=True)
class ConferenceBookings:
    """A page of the organizer's view of a conference (domain.listing)."""

    conference: Conference
    views: list[BookingView]
    next_page_token: str  # empty on the last page


@retries_on_conflict
def list_conference_bookings(
    uow: BookingUnitOfWork,
    directory: ConferenceDirectory,
    *,
    conference_name: str,
    status: Status | None,
    after: Position | None,
    page_size: int,
    caller: Caller,
) -> ConferenceBookings:
    """The organizer's view of a conference, a page at a time: its owner or an admin only."""
    conference = _managed_conference(uow, directory, conference_name, caller, "list its bookings")
    with uow.autocommit():
        # One more than the page: whether another page follows.
        found = uow.bookings.of_conference(conference.conference_id, statuses_listed(status), after, page_size + 1)
    page = found[:page_size]
    next_token = page_token(page[-1][1]) if len(found) > page_size else ""
    return ConferenceBookings(conference, [view for view, _ in page], next_token)


def _managed_conference(
    uow: BookingUnitOfWork, directory: ConferenceDirectory, name: str, caller: Caller, what: str
) -> Conference:
    """The conference, copied from the conference service if this is the first time; only for its
    owner or an admin (NotConferenceOwner). ConferenceNotFound if there is no such conference."""
    with uow.autocommit():
        conference = uow.seats.find(name)
    if conference is None:
        conference = directory.by_name(name)
        with uow.autocommit():
            uow.seats.ensure(conference)
    if not access.may_manage_conference(caller, conference.owner_subject):
        raise NotConferenceOwner(conference.name, what)
    return conference


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
            _move(
                uow,
                booking,
                Status.CONFIRMATION_PENDING,
                now,
                reason=ChangeReason.SEAT_FREED,
                actor=SYSTEM_ACTOR,
                offer_deadline=deadline,
            )
            for booking in uow.bookings.line_head(conference_id, seats.free)
        ]
        uow.commit()
    return offers


@retries_on_conflict
def expire_offer(uow: BookingUnitOfWork, booking_id: int, now: datetime) -> ExpiryOutcome:
    """Send an offer past its deadline to the end of the line; a no-op in any other case."""
    with uow:
        found = _find(uow, booking_id, None)
        uow.seats.lock([found.conference.conference_id])
        booking = _find(uow, booking_id, None, lock=True)
        outcome = expiry_outcome(booking, now)
        if outcome is ExpiryOutcome.RETURNED_TO_LINE:
            _move(uow, booking, Status.WAITLISTED, now, reason=ChangeReason.OFFER_EXPIRED, actor=SYSTEM_ACTOR)
        elif outcome is ExpiryOutcome.CANCELED:
            _move(uow, booking, Status.CANCELED, now, reason=ChangeReason.OFFER_EXPIRED, actor=SYSTEM_ACTOR)
        uow.commit()
    return outcome


@retries_on_conflict
def close_waitlist(uow: BookingUnitOfWork, conference_id: int, now: datetime) -> int:
    """At the start, cancel every waiting and pending booking; returns how many (0 when repeated).

    One statement for the whole line; no outbox events: nobody is owed a seat of a
    conference that has begun, and the waitlist closes its offers itself. Each
    booking still gets its `booking.canceled` in the history (the database's trigger).
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


@dataclass(frozen=True)
class Reconciled:
    seats_owed: int  # conferences whose free seats were announced again
    offers: int  # pending offers announced again
    lines_closed: int  # started conferences whose line was still open


def reconcile(uow_factory: UnitOfWorkFactory, now: datetime) -> Reconciled:
    """Announce again, from this service's data alone, what the waitlist service must act on, and close
    the lines of conferences that have started; whatever event about them was lost on the way.

    Run as the service starts. The broker may have lost events, or a restore may have purged them
    (docs/adr/0025): free seats while people wait are owed to the line (SeatReleased), each pending
    offer must be watched for its deadline (OfferMade), and a conference that has started owes its
    line nothing. Each of these is idempotent where it lands, so running it again changes nothing.
    """
    uow = uow_factory()
    with uow:
        owed = uow.seats.owed_to_line(now)
        for conference_id in owed:
            uow.outbox.add(events_pb2.SeatReleased(conference_id=conference_id, reason=Reason.REASON_RECONCILED))
        offers = uow.bookings.pending_offers()
        for offer in offers:
            assert offer.offer_deadline is not None  # the deadline_iff_pending constraint
            uow.outbox.add(
                events_pb2.OfferMade(
                    booking_id=offer.booking_id,
                    conference_id=offer.conference.conference_id,
                    user_id=offer.user_id,
                    deadline=to_timestamp(offer.offer_deadline),
                )
            )
        started = uow.seats.started_with_line(now)
        uow.commit()
    for conference_id in started:
        close_waitlist(uow_factory(), conference_id, now)
    return Reconciled(seats_owed=len(owed), offers=len(offers), lines_closed=len(started))


# --- shared steps ------------------------------------------------------------------


def _readable_user(uow: BookingUnitOfWork, user_id: str, caller: Caller) -> User:
    """The user, if the caller may read it; anyone else's answers as an unknown one."""
    user = uow.users.get(user_id)
    if user is None or not access.may_read_user(caller, user.subject):
        raise UserNotFound(user_id)
    return user


def _visible(booking: Booking | None, booking_id: int, caller: Caller | None) -> Booking:
    """The booking, if `caller` may see it (None: the system, which sees every booking); anyone
    else's answers exactly as an unknown one."""
    if booking is None or (
        caller is not None
        and not access.may_see_booking(
            caller, user_subject=booking.user_subject, owner_subject=booking.conference.owner_subject
        )
    ):
        raise BookingNotFound(booking_id)
    return booking


def _find(uow: BookingUnitOfWork, booking_id: int, caller: Caller | None, *, lock: bool = False) -> Booking:
    return _visible(uow.bookings.get(booking_id, lock=lock), booking_id, caller)


def _view(uow: BookingUnitOfWork, booking_id: int, caller: Caller | None) -> BookingView:
    view = uow.bookings.view(booking_id)
    _visible(view.booking if view else None, booking_id, caller)
    assert view is not None
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
    uow: BookingUnitOfWork, confirmed: Booking, neighbours: Sequence[Booking], now: datetime, actor: Actor
) -> None:
    """A confirmed booking cancels the user's waiting and pending bookings that overlap it; the
    one who confirmed (or booked) caused that too."""
    for other in neighbours:
        if other.booking_id != confirmed.booking_id:
            _move(uow, other, Status.CANCELED, now, reason=ChangeReason.OVERLAP, actor=actor)


def _move(
    uow: BookingUnitOfWork,
    booking: Booking,
    target: Status,
    now: datetime,
    *,
    reason: ChangeReason,
    actor: Actor,
    offer_deadline: datetime | None = None,
) -> Booking:
    """Move one booking, and record in the outbox what the move means to others.

    Every single-booking move goes through here, so that no path can forget an
    event: a seat released before the start is owed to the line (`reason` says
    why it was released), a new offer must be watched, an ended one no longer.
    The booking's own event (its history, webhooks, streams) is written by the
    database with the move, carrying `reason` and `actor`.
    """
    moved = uow.bookings.move(booking, target, reason=reason, actor=actor, offer_deadline=offer_deadline)
    conference_id = booking.conference.conference_id
    if seat_change(booking.status, target) < 0 and not booking.conference.has_started(now):
        uow.outbox.add(
            events_pb2.SeatReleased(
                conference_id=conference_id,
                booking_id=booking.booking_id,
                reason=_RELEASE_REASONS[reason],
                released_at=to_timestamp(now),
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


# Why a seat was released, as the waitlist service is told (a confirmation releases none).
_RELEASE_REASONS = {
    ChangeReason.USER: Reason.REASON_CANCELED,
    ChangeReason.ORGANIZER: Reason.REASON_CANCELED,
    ChangeReason.OFFER_EXPIRED: Reason.REASON_OFFER_EXPIRED,
    ChangeReason.OVERLAP: Reason.REASON_OVERLAP_REMOVED,
    ChangeReason.SEAT_FREED: Reason.REASON_UNSPECIFIED,
    ChangeReason.CONFERENCE_STARTED: Reason.REASON_UNSPECIFIED,
    ChangeReason.USER_ERASED: Reason.REASON_CANCELED,
}

_OFFER_OUTCOMES = {
    Status.CONFIRMED: events_pb2.OfferEnded.OUTCOME_CONFIRMED,
    Status.CANCELED: events_pb2.OfferEnded.OUTCOME_CANCELED,
    Status.WAITLISTED: events_pb2.OfferEnded.OUTCOME_EXPIRED,
}


# --- watching a booking --------------------------------------------------------------


@dataclass(frozen=True)
class WatchStart:
    view: BookingView  # the booking now
    latest_event_id: str | None  # the last change it reflects (None: none recorded)
    after_sequence: int  # the changes to send are those recorded after this point


@retries_on_conflict
def watch_from(uow: BookingUnitOfWork, booking_id: int, after_event_id: str | None, caller: Caller) -> WatchStart:
    """The booking now, and the point in its history the changes to send start after.

    Without `after_event_id`, that is the last event the booking now reflects;
    with it, that event, which must be one of the booking's. Only for whoever may see the booking:
    the changes that follow (changes_after) are read for the booking this allowed.
    """
    with uow.autocommit():
        found = uow.bookings.view_and_latest_event(booking_id)
        _visible(found[0].booking if found else None, booking_id, caller)
        assert found is not None
        view, latest_sequence, latest_id = found
        if after_event_id is None:
            return WatchStart(view, latest_id, latest_sequence)
        sequence = uow.events.sequence_of(booking_id, after_event_id)
        if sequence is None:
            raise UnknownEvent(booking_id, after_event_id)
        return WatchStart(view, latest_id, sequence)


@retries_on_conflict
def changes_after(uow: BookingUnitOfWork, booking_id: int, sequence: int, limit: int = 100) -> list[BookingEvent]:
    with uow.autocommit():
        return uow.events.after(booking_id, sequence, limit=limit)
