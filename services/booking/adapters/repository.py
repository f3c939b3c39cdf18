"""Reading and writing users, seat ledgers and bookings.

Locking order, kept by every use case so that none can deadlock another:
the user row, then seat ledger rows in ascending conference id, then booking rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Case,
    Connection,
    DateTime,
    Integer,
    Row,
    Text,
    bindparam,
    case,
    column,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from confbook_common.db import violated_constraint
from confbook_common.validation import conference_name_key
from services.booking.adapters.event_history import LATEST_EVENT_ID, LATEST_SEQUENCE
from services.booking.adapters.metrics import NEW, TransitionLog
from services.booking.adapters.tables import SCHEMA, bookings, conference_seats, users
from services.booking.domain.errors import AlreadyBooked, OverlappingBooking, SubjectHasUser, UserExists
from services.booking.domain.events import SYSTEM_ACTOR, Actor, ChangeReason
from services.booking.domain.listing import Position
from services.booking.domain.model import (
    Booking,
    BookingView,
    Conference,
    Seats,
    Status,
    User,
    seat_change,
)

# An erased user's pseudonym (migration 0009) is no one's user: it answers as unknown.
_USER_BY_ID = select(users).where(users.c.user_id == bindparam("user_id"), users.c.erased_at.is_(None))
_USER_BY_ID_LOCKED = _USER_BY_ID.with_for_update()
_USER_LOCK = select(users.c.user_id).where(users.c.user_id == bindparam("user_id")).with_for_update()


class UserRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, user_id: str, topics: Iterable[str], subject: str) -> User:
        """A new user, belonging to `subject`; one user per subject."""
        try:
            row = self._connection.execute(
                insert(users).values(user_id=user_id, topics=list(topics), subject=subject).returning(users)
            ).one()
        except IntegrityError as error:
            if violated_constraint(error) == "users_by_subject":
                raise SubjectHasUser() from error
            raise UserExists(user_id) from error
        return _to_user(row)

    def get(self, user_id: str, *, lock: bool = False) -> User | None:
        row = self._connection.execute(_USER_BY_ID_LOCKED if lock else _USER_BY_ID, {"user_id": user_id}).first()
        return _to_user(row) if row else None

    def lock(self, user_id: str) -> bool:
        """Serialize this user's bookings; False if there is no such user."""
        return self._connection.execute(_USER_LOCK, {"user_id": user_id}).first() is not None


def _to_user(row: Row) -> User:
    return User(user_id=row.user_id, topics=tuple(row.topics), created_at=row.created_at, subject=row.subject)


def _to_conference(row: Row) -> Conference:
    return Conference(
        conference_id=row.conference_id,
        name=row.name,
        start=row.start_at,
        end=row.end_at,
        slots=row.slots,
        owner_subject=row.owner_subject,
    )


def _to_seats(row: Row) -> Seats:
    return Seats(conference=_to_conference(row), held=row.seats_held, waiting=row.waiting)


_LEDGER_BY_ID = select(conference_seats).where(conference_seats.c.conference_id == bindparam("conference_id"))
_LEDGERS_LOCKED = (
    select(conference_seats)
    .where(conference_seats.c.conference_id.in_(bindparam("conference_ids", expanding=True)))
    .order_by(conference_seats.c.conference_id)
    .with_for_update()
)


class SeatLedger:
    """Per conference: the copy of its times and slots, and how many seats are held."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def ensure(self, conference: Conference) -> None:
        """Record a conference the first time it is seen (conferences never change)."""
        self._connection.execute(
            pg_insert(conference_seats)
            .values(
                conference_id=conference.conference_id,
                name=conference.name,
                name_key=conference_name_key(conference.name),
                start_at=conference.start,
                end_at=conference.end,
                slots=conference.slots,
                owner_subject=conference.owner_subject,
            )
            .on_conflict_do_nothing()
        )

    def get(self, conference_id: int) -> Seats | None:
        row = self._connection.execute(_LEDGER_BY_ID, {"conference_id": conference_id}).first()
        return _to_seats(row) if row else None

    def many(self, conference_ids: Iterable[int]) -> dict[int, Seats]:
        """The ledgers of those conferences this service has copied."""
        rows = self._connection.execute(
            select(conference_seats).where(conference_seats.c.conference_id.in_(list(conference_ids)))
        )
        return {row.conference_id: _to_seats(row) for row in rows}

    def lock(self, conference_ids: Iterable[int]) -> dict[int, Seats]:
        """Lock the ledgers in ascending id order (the deadlock-free order)."""
        rows = self._connection.execute(_LEDGERS_LOCKED, {"conference_ids": sorted(set(conference_ids))}).all()
        return {row.conference_id: _to_seats(row) for row in rows}

    def find(self, name: str) -> Conference | None:
        """The copy of the conference with this name (case ignored), if this service has one."""
        row = self._connection.execute(
            select(conference_seats).where(conference_seats.c.name_key == conference_name_key(name))
        ).first()
        return _to_conference(row) if row else None

    def owed_to_line(self, now: datetime) -> list[int]:
        """Conferences not started with a free seat while someone waits: a promotion that is still owed."""
        seats = conference_seats.c
        query = select(seats.conference_id).where(
            seats.slots > seats.seats_held, seats.waiting > 0, seats.start_at > now
        )
        return list(self._connection.execute(query.order_by(seats.conference_id)).scalars())

    def started_with_line(self, now: datetime) -> list[int]:
        """Conferences that have started while someone still waits or holds an offer: a line still to close."""
        line = select(bookings.c.booking_id).where(
            bookings.c.conference_id == conference_seats.c.conference_id,
            bookings.c.status.in_([Status.WAITLISTED.value, Status.CONFIRMATION_PENDING.value]),
        )
        query = select(conference_seats.c.conference_id).where(conference_seats.c.start_at <= now, line.exists())
        return list(self._connection.execute(query.order_by(conference_seats.c.conference_id)).scalars())

    def set_slots(self, conference_id: int, slots: int) -> None:
        """The caller holds the ledger's lock and has checked the seats held; the never_oversold
        CHECK (seats_held <= slots) is the last line should it not."""
        self._connection.execute(
            update(conference_seats).where(conference_seats.c.conference_id == conference_id).values(slots=slots)
        )

    def change_held(self, conference_id: int, delta: int) -> None:
        if delta:
            self._connection.execute(
                update(conference_seats)
                .where(conference_seats.c.conference_id == conference_id)
                .values(seats_held=conference_seats.c.seats_held + delta)
            )


def _waitlist_position() -> Case:
    """1-based place in line, from the line's tree (a cost that does not grow with the line)."""
    position = getattr(func, SCHEMA).waitlist_position(bookings.c.conference_id, bookings.c.join_order)
    return case((bookings.c.status == Status.WAITLISTED.value, position), else_=None)


class BookOutcome(StrEnum):
    """What the database's booking.book() did; anything but BOOKED changed nothing."""

    BOOKED = "BOOKED"
    CONFERENCE_UNKNOWN = "CONFERENCE_UNKNOWN"  # not copied from the conference service yet
    USER_NOT_FOUND = "USER_NOT_FOUND"
    CONFERENCE_STARTED = "CONFERENCE_STARTED"
    ALREADY_BOOKED = "ALREADY_BOOKED"
    OVERLAPPING_BOOKING = "OVERLAPPING_BOOKING"
    HAS_NEIGHBOURS = "HAS_NEIGHBOURS"  # a confirmation would cancel overlapping bookings: not in one call
    NOT_YOURS = "NOT_YOURS"  # a user the caller may not book for (existing or not)


@dataclass(frozen=True)
class Booker:
    """Who a booking is for, and who asks for it: see booking.book() (migration 0008)."""

    user_id: str
    # The subject the user must belong to (domain.access.booking_for_subject); None: any user.
    for_subject: str | None
    actor: Actor


@dataclass(frozen=True)
class BookAttempt:
    outcome: BookOutcome
    conference: Conference | None
    view: BookingView | None = None
    # OVERLAPPING_BOOKING: the name of the conference the user is confirmed for.
    other_conference: str | None = None


# What booking.book() returns (its OUT parameters, migrations 0002 and 0008), in order. Declared, so that
# SQLAlchemy takes each result's shape from the statement once instead of from every cursor.
_BOOK_RESULT = (
    column("outcome", Text),
    column("detail", Text),
    column("conference_id", BigInteger),
    column("conference_name", Text),
    column("start_at", DateTime(timezone=True)),
    column("end_at", DateTime(timezone=True)),
    column("slots", Integer),
    column("booking_id", BigInteger),
    column("status", Text),
    column("created_at", DateTime(timezone=True)),
    column("updated_at", DateTime(timezone=True)),
    column("waitlist_position", Integer),
)
_BOOK = text(
    f"SELECT * FROM {SCHEMA}.book(:user_id, :conference_key, :conference_id, :now, :neighbours_locked,"
    " :for_subject, :actor_subject, :actor_role)"
).columns(*_BOOK_RESULT)
# booking.book_together() returns the user's id, then what booking.book() does (migrations 0007, 0008).
_BOOK_TOGETHER = text(
    f"SELECT * FROM {SCHEMA}.book_together(CAST(:user_ids AS text[]), CAST(:for_subjects AS text[]),"
    " CAST(:actor_subjects AS text[]), CAST(:actor_roles AS text[]), :conference_key, :now)"
).columns(column("user_id", Text), *_BOOK_RESULT)
# Why a change is made and who makes it, read by the trigger that records its event (migrations
# 0004, 0008): one statement, local to the transaction.
_CHANGE_CONTEXT = text(
    "SELECT set_config('booking.change_reason', :reason, true),"
    " set_config('booking.actor_subject', :actor_subject, true),"
    " set_config('booking.actor_role', :actor_role, true)"
)


def _change_context(reason: ChangeReason, actor: Actor) -> dict[str, str]:
    return {"reason": reason.value, "actor_subject": actor.subject or "", "actor_role": actor.role.value}


def _booking_query() -> Select:
    """A booking with its conference, and the subjects that decide who may see it (domain.access)."""
    return (
        select(
            bookings.c.booking_id,
            bookings.c.user_id,
            bookings.c.conference_id,
            bookings.c.status,
            bookings.c.offer_deadline,
            bookings.c.created_at,
            bookings.c.updated_at,
            conference_seats.c.name,
            conference_seats.c.start_at,
            conference_seats.c.end_at,
            conference_seats.c.slots,
            conference_seats.c.owner_subject,
            users.c.subject.label("user_subject"),
        )
        .join(conference_seats, conference_seats.c.conference_id == bookings.c.conference_id)
        .join(users, users.c.user_id == bookings.c.user_id)
    )


# The hot reads, built once: SQLAlchemy then reuses their compiled form and cache key,
# which per request would cost more than the database does.
_BOOKING_BY_ID = _booking_query().where(bookings.c.booking_id == bindparam("booking_id"))
_BOOKING_BY_ID_LOCKED = _BOOKING_BY_ID.with_for_update(of=bookings)
_VIEW_BY_ID = _BOOKING_BY_ID.add_columns(_waitlist_position().label("position"))
_VIEW_AND_LATEST_EVENT = _VIEW_BY_ID.add_columns(
    LATEST_SEQUENCE.label("latest_sequence"), LATEST_EVENT_ID.label("latest_event_id")
)


def _to_booking(row: Row) -> Booking:
    return Booking(
        booking_id=row.booking_id,
        user_id=row.user_id,
        conference=_to_conference(row),
        status=Status(row.status),
        offer_deadline=row.offer_deadline,
        created_at=row.created_at,
        updated_at=row.updated_at,
        user_subject=row.user_subject,
    )


class BookingRepository:
    def __init__(self, connection: Connection, ledger: SeatLedger, transitions: TransitionLog | None = None) -> None:
        self._connection = connection
        self._ledger = ledger
        # Every write of a status is noted here, to be counted once its transaction commits.
        self._transitions = transitions or TransitionLog()

    def get(self, booking_id: int, *, lock: bool = False) -> Booking | None:
        query = _BOOKING_BY_ID_LOCKED if lock else _BOOKING_BY_ID
        row = self._connection.execute(query, {"booking_id": booking_id}).first()
        return _to_booking(row) if row else None

    def view(self, booking_id: int) -> BookingView | None:
        row = self._connection.execute(_VIEW_BY_ID, {"booking_id": booking_id}).first()
        return BookingView(_to_booking(row), row.position) if row else None

    def view_and_latest_event(self, booking_id: int) -> tuple[BookingView, int, str | None] | None:
        """The booking now, and the sequence and id of the last event it reflects (0, None: no event
        recorded), read in one snapshot."""
        row = self._connection.execute(_VIEW_AND_LATEST_EVENT, {"booking_id": booking_id}).first()
        if row is None:
            return None
        latest_id = str(row.latest_event_id) if row.latest_event_id is not None else None
        return BookingView(_to_booking(row), row.position), row.latest_sequence, latest_id

    def views_of_user(self, user_id: str) -> list[BookingView]:
        rows = self._connection.execute(
            _booking_query()
            .add_columns(_waitlist_position().label("position"))
            .where(bookings.c.user_id == user_id)
            .order_by(bookings.c.booking_id)
        )
        return [BookingView(_to_booking(row), row.position) for row in rows]

    def of_conference(
        self, conference_id: int, statuses: Sequence[Status], after: Position | None, limit: int
    ) -> list[tuple[BookingView, Position]]:
        """The organizer's view (domain.listing): the first `limit` bookings of the conference after
        `after`, the statuses in the order given, each in its own order; in one statement."""
        parts = []
        for rank, status in enumerate(statuses):
            if after is not None and rank < statuses.index(after.status):
                continue
            key = bookings.c.join_order if status is Status.WAITLISTED else bookings.c.booking_id
            part = (
                _booking_query()
                .add_columns(
                    _waitlist_position().label("position"), literal(rank).label("rank"), key.label("position_key")
                )
                .where(bookings.c.conference_id == conference_id, bookings.c.status == status.value)
                .order_by(key)
                .limit(limit)
            )
            if after is not None and status is after.status:
                part = part.where(key > after.key)
            parts.append(part)
        if not parts:
            return []
        page = union_all(*parts).subquery("page") if len(parts) > 1 else parts[0].subquery("page")
        rows = self._connection.execute(select(page).order_by(page.c.rank, page.c.position_key).limit(limit))
        return [
            (BookingView(_to_booking(row), row.position), Position(statuses[row.rank], row.position_key))
            for row in rows
        ]

    def active_overlapping(self, user_id: str, conference: Conference, *, lock: bool = False) -> list[Booking]:
        """The user's active bookings whose conference overlaps `conference` (its own included)."""
        query = _booking_query().where(
            bookings.c.user_id == user_id,
            bookings.c.status != Status.CANCELED.value,
            bookings.c.during.overlaps(Range(conference.start, conference.end)),
        )
        if lock:
            query = query.with_for_update(of=bookings)
        return [_to_booking(row) for row in self._connection.execute(query.order_by(bookings.c.booking_id))]

    def pending_offers(self) -> list[Booking]:
        """Every booking holding an offer now (pending, with its deadline)."""
        rows = self._connection.execute(
            _booking_query()
            .where(bookings.c.status == Status.CONFIRMATION_PENDING.value)
            .order_by(bookings.c.booking_id)
        )
        return [_to_booking(row) for row in rows]

    def line_head(self, conference_id: int, limit: int) -> list[Booking]:
        """The first `limit` bookings in line, locked."""
        rows = self._connection.execute(
            _booking_query()
            .where(bookings.c.conference_id == conference_id, bookings.c.status == Status.WAITLISTED.value)
            .order_by(bookings.c.join_order)
            .limit(limit)
            .with_for_update(of=bookings)
        )
        return [_to_booking(row) for row in rows]

    def book(
        self,
        booker: Booker,
        *,
        conference_key: str | None = None,
        conference_id: int | None = None,
        now: datetime,
        neighbours_locked: bool = False,
    ) -> BookAttempt:
        """A new CONFIRMED or WAITLISTED booking, decided and written by the database's booking.book()."""
        try:
            row = self._connection.execute(
                _BOOK,
                {
                    "user_id": booker.user_id,
                    "conference_key": conference_key,
                    "conference_id": conference_id,
                    "now": now,
                    "neighbours_locked": neighbours_locked,
                    "for_subject": booker.for_subject,
                    "actor_subject": booker.actor.subject,
                    "actor_role": booker.actor.role.value,
                },
            ).one()
        except IntegrityError as error:  # the constraints' last line, should a rule above them fail
            raise self._as_domain_error(error, booker.user_id, conference_key or str(conference_id)) from error
        return self._attempt(booker.user_id, row)

    def book_together(self, bookers: Sequence[Booker], *, conference_key: str, now: datetime) -> list[BookAttempt]:
        """Each booking of one conference as book() makes it, in the order given, all in one
        statement (the database's booking.book_together()); one attempt per booker, in order.

        A refusal is that booker's attempt; an error undoes every booking of the call and is
        raised as the database gives it, for the callers to book one by one."""
        rows = self._connection.execute(
            _BOOK_TOGETHER,
            {
                "user_ids": [booker.user_id for booker in bookers],
                "for_subjects": [booker.for_subject for booker in bookers],
                "actor_subjects": [booker.actor.subject for booker in bookers],
                "actor_roles": [booker.actor.role.value for booker in bookers],
                "conference_key": conference_key,
                "now": now,
            },
        ).all()
        return [self._attempt(row.user_id, row) for row in rows]

    def _attempt(self, user_id: str, row: Row) -> BookAttempt:
        outcome = BookOutcome(row.outcome)
        if outcome is BookOutcome.CONFERENCE_UNKNOWN:
            return BookAttempt(outcome, None)
        conference = Conference(
            conference_id=row.conference_id,
            name=row.conference_name,
            start=row.start_at,
            end=row.end_at,
            slots=row.slots,
        )
        if outcome is not BookOutcome.BOOKED:
            return BookAttempt(outcome, conference, other_conference=row.detail)
        booking = Booking(
            booking_id=row.booking_id,
            user_id=user_id,
            conference=conference,
            status=Status(row.status),
            offer_deadline=None,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        self._transitions.add(NEW, booking.status)
        return BookAttempt(outcome, conference, BookingView(booking, row.waitlist_position))

    def move(
        self,
        booking: Booking,
        target: Status,
        *,
        reason: ChangeReason,
        actor: Actor,
        offer_deadline: datetime | None = None,
    ) -> Booking:
        """Change a booking's state, keeping its place in line and the seat count consistent.

        Joining the line (again) takes a new ticket at its end: the database issues it
        (and counts the line) whenever a booking becomes WAITLISTED. The caller holds the
        ledger lock of the booking's conference. The database records the change's event,
        with `reason` and `actor`.
        """
        booking.require_move(target)
        self._connection.execute(_CHANGE_CONTEXT, _change_context(reason, actor))
        try:
            self._connection.execute(
                update(bookings)
                .where(bookings.c.booking_id == booking.booking_id)
                .values(
                    status=target.value,
                    join_order=None,  # a ticket, from the trigger, if it joins the line
                    offer_deadline=offer_deadline if target is Status.CONFIRMATION_PENDING else None,
                    updated_at=func.statement_timestamp(),
                )
            )
        except IntegrityError as error:
            raise self._as_domain_error(error, booking.user_id, booking.conference.name) from error
        self._ledger.change_held(booking.conference.conference_id, seat_change(booking.status, target))
        self._transitions.add(booking.status, target)
        moved = self.get(booking.booking_id)
        assert moved is not None
        return moved

    def cancel_line(self, conference_id: int) -> int:
        """Cancel every waiting and pending booking of a conference; returns how many."""
        self._connection.execute(_CHANGE_CONTEXT, _change_context(ChangeReason.CONFERENCE_STARTED, SYSTEM_ACTOR))
        line = (
            select(bookings.c.booking_id, bookings.c.status)
            .where(
                bookings.c.conference_id == conference_id,
                bookings.c.status.in_([Status.WAITLISTED.value, Status.CONFIRMATION_PENDING.value]),
            )
            .with_for_update()
            .cte("line")
        )
        previous = (
            self._connection.execute(
                update(bookings)
                .where(bookings.c.booking_id == line.c.booking_id)
                .values(
                    status=Status.CANCELED.value,
                    join_order=None,
                    offer_deadline=None,
                    updated_at=func.statement_timestamp(),
                )
                .returning(line.c.status)
            )
            .scalars()
            .all()
        )
        for status in previous:
            self._transitions.add(status, Status.CANCELED)
        released = sum(seat_change(Status(status), Status.CANCELED) for status in previous)
        self._ledger.change_held(conference_id, released)
        return len(previous)

    @staticmethod
    def _as_domain_error(error: IntegrityError, user_id: str, conference: str) -> Exception:
        constraint = violated_constraint(error)
        if constraint == "one_active_booking_per_conference":
            return AlreadyBooked(user_id, conference)
        if constraint == "no_overlapping_confirmed_bookings":
            return OverlappingBooking(conference, "another conference")
        return error
