"""Reading and writing users, seat ledgers and bookings.

Locking order, kept by every use case so that none can deadlock another:
the user row, then seat ledger rows in ascending conference id, then booking rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Case, Connection, Row, case, func, insert, select, update
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from confbook_common.db import violated_constraint
from services.booking.adapters.tables import bookings, conference_seats, users, waitlist_join_order
from services.booking.domain.errors import AlreadyBooked, OverlappingBooking, UserExists
from services.booking.domain.model import (
    Booking,
    BookingView,
    Conference,
    Seats,
    Status,
    User,
    seat_change,
)


class UserRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, user_id: str, topics: Iterable[str]) -> User:
        try:
            row = self._connection.execute(
                insert(users).values(user_id=user_id, topics=list(topics)).returning(users)
            ).one()
        except IntegrityError as error:
            raise UserExists(user_id) from error
        return User(user_id=row.user_id, topics=tuple(row.topics), created_at=row.created_at)

    def get(self, user_id: str) -> User | None:
        row = self._connection.execute(select(users).where(users.c.user_id == user_id)).first()
        return User(user_id=row.user_id, topics=tuple(row.topics), created_at=row.created_at) if row else None

    def lock(self, user_id: str) -> bool:
        """Serialize this user's bookings; False if there is no such user."""
        row = self._connection.execute(
            select(users.c.user_id).where(users.c.user_id == user_id).with_for_update()
        ).first()
        return row is not None


def _to_conference(row: Row) -> Conference:
    return Conference(
        conference_id=row.conference_id, name=row.name, start=row.start_at, end=row.end_at, slots=row.slots
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
                start_at=conference.start,
                end_at=conference.end,
                slots=conference.slots,
            )
            .on_conflict_do_nothing()
        )

    def get(self, conference_id: int) -> Seats | None:
        row = self._connection.execute(
            select(conference_seats).where(conference_seats.c.conference_id == conference_id)
        ).first()
        return Seats(conference=_to_conference(row), held=row.seats_held) if row else None

    def lock(self, conference_ids: Iterable[int]) -> dict[int, Seats]:
        """Lock the ledgers in ascending id order (the deadlock-free order)."""
        rows = self._connection.execute(
            select(conference_seats)
            .where(conference_seats.c.conference_id.in_(sorted(set(conference_ids))))
            .order_by(conference_seats.c.conference_id)
            .with_for_update()
        ).all()
        return {row.conference_id: Seats(conference=_to_conference(row), held=row.seats_held) for row in rows}

    def change_held(self, conference_id: int, delta: int) -> None:
        if delta:
            self._connection.execute(
                update(conference_seats)
                .where(conference_seats.c.conference_id == conference_id)
                .values(seats_held=conference_seats.c.seats_held + delta)
            )


def _waitlist_position() -> Case:
    """1-based place in line: waiting bookings of the same conference that joined no later."""
    ahead = bookings.alias("ahead")
    count_ahead = (
        select(func.count())
        .where(
            ahead.c.conference_id == bookings.c.conference_id,
            ahead.c.status == Status.WAITLISTED.value,
            ahead.c.join_order <= bookings.c.join_order,
        )
        .scalar_subquery()
    )
    return case((bookings.c.status == Status.WAITLISTED.value, count_ahead), else_=None)


def _booking_query() -> Select:
    return select(
        bookings,
        conference_seats.c.name,
        conference_seats.c.start_at,
        conference_seats.c.end_at,
        conference_seats.c.slots,
    ).join(conference_seats, conference_seats.c.conference_id == bookings.c.conference_id)


def _to_booking(row: Row) -> Booking:
    return Booking(
        booking_id=row.booking_id,
        user_id=row.user_id,
        conference=_to_conference(row),
        status=Status(row.status),
        offer_deadline=row.offer_deadline,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class BookingRepository:
    def __init__(self, connection: Connection, ledger: SeatLedger) -> None:
        self._connection = connection
        self._ledger = ledger

    def get(self, booking_id: int, *, lock: bool = False) -> Booking | None:
        query = _booking_query().where(bookings.c.booking_id == booking_id)
        if lock:
            query = query.with_for_update(of=bookings)
        row = self._connection.execute(query).first()
        return _to_booking(row) if row else None

    def view(self, booking_id: int) -> BookingView | None:
        row = self._connection.execute(
            _booking_query()
            .add_columns(_waitlist_position().label("position"))
            .where(bookings.c.booking_id == booking_id)
        ).first()
        return BookingView(_to_booking(row), row.position) if row else None

    def views_of_user(self, user_id: str) -> list[BookingView]:
        rows = self._connection.execute(
            _booking_query()
            .add_columns(_waitlist_position().label("position"))
            .where(bookings.c.user_id == user_id)
            .order_by(bookings.c.booking_id)
        )
        return [BookingView(_to_booking(row), row.position) for row in rows]

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

    def line_length(self, conference_id: int) -> int:
        return self._connection.execute(
            select(func.count()).where(
                bookings.c.conference_id == conference_id, bookings.c.status == Status.WAITLISTED.value
            )
        ).scalar_one()

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

    def add(self, user_id: str, conference: Conference, status: Status) -> Booking:
        """A new CONFIRMED or WAITLISTED booking; the caller holds the conference's ledger lock."""
        try:
            row = self._connection.execute(
                insert(bookings)
                .values(
                    user_id=user_id,
                    conference_id=conference.conference_id,
                    status=status.value,
                    during=Range(conference.start, conference.end),
                    join_order=waitlist_join_order.next_value() if status is Status.WAITLISTED else None,
                )
                .returning(bookings.c.booking_id)
            ).one()
        except IntegrityError as error:
            raise self._as_domain_error(error, user_id, conference) from error
        self._ledger.change_held(conference.conference_id, seat_change(None, status))
        booking = self.get(row.booking_id)
        assert booking is not None
        return booking

    def move(self, booking: Booking, target: Status, *, offer_deadline: datetime | None = None) -> Booking:
        """Change a booking's state, keeping its place in line and the seat count consistent.

        Joining the line (again) takes a new place at its end. The caller holds the
        ledger lock of the booking's conference.
        """
        booking.require_move(target)
        try:
            self._connection.execute(
                update(bookings)
                .where(bookings.c.booking_id == booking.booking_id)
                .values(
                    status=target.value,
                    join_order=waitlist_join_order.next_value() if target is Status.WAITLISTED else None,
                    offer_deadline=offer_deadline if target is Status.CONFIRMATION_PENDING else None,
                    updated_at=func.statement_timestamp(),
                )
            )
        except IntegrityError as error:
            raise self._as_domain_error(error, booking.user_id, booking.conference) from error
        self._ledger.change_held(booking.conference.conference_id, seat_change(booking.status, target))
        moved = self.get(booking.booking_id)
        assert moved is not None
        return moved

    def cancel_line(self, conference_id: int) -> int:
        """Cancel every waiting and pending booking of a conference; returns how many."""
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
        released = sum(seat_change(Status(status), Status.CANCELED) for status in previous)
        self._ledger.change_held(conference_id, released)
        return len(previous)

    @staticmethod
    def _as_domain_error(error: IntegrityError, user_id: str, conference: Conference) -> Exception:
        constraint = violated_constraint(error)
        if constraint == "one_active_booking_per_conference":
            return AlreadyBooked(user_id, conference.name)
        if constraint == "no_overlapping_confirmed_bookings":
            return OverlappingBooking(conference.name, "another conference")
        return error
