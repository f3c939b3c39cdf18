"""Racing requests on the real database: no oversell, no overlapping confirmations, distinct places."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import text

from confbook_common.errors import DomainError
from services.booking.domain.model import Status
from services.booking.service_layer import handlers
from tests.integration.callers import ADMIN, attendee, own_booking

WINDOW = timedelta(minutes=30)


def race(calls):
    """Run all calls at once; return each result or the domain error it raised."""

    def attempt(call):
        try:
            return call()
        except DomainError as error:
            return error

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(attempt, calls))


def ledger_matches_bookings(uow, conference_id):
    with uow() as unit:
        held, counted = unit.connection.execute(
            text(
                "SELECT s.seats_held, (SELECT count(*) FROM booking.bookings b WHERE b.conference_id = s.conference_id"
                " AND b.status IN ('CONFIRMED', 'CONFIRMATION_PENDING')) FROM booking.conference_seats s"
                " WHERE s.conference_id = :id"
            ),
            {"id": conference_id},
        ).one()
    return held == counted


def test_many_bookers_racing_for_few_seats_never_oversell(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=5)
    users = [new_user() for _ in range(40)]
    now = tomorrow - timedelta(days=1)

    views = race(
        [
            lambda user=user: handlers.book(
                uow(), directory, user_id=user, conference_name=conference.name, now=now, caller=attendee(user)
            )
            for user in users
        ]
    )

    statuses = [view.booking.status for view in views]
    assert statuses.count(Status.CONFIRMED) == 5
    assert statuses.count(Status.WAITLISTED) == 35
    positions = sorted(v.waitlist_position for v in views if v.booking.status is Status.WAITLISTED)
    assert positions == list(range(1, 36)), "every waiting booking has its own place"
    assert ledger_matches_bookings(uow, conference.conference_id)


def test_one_user_racing_into_overlapping_conferences_gets_one_confirmation(uow, directory, new_user, tomorrow):
    conferences = [directory.add(start=tomorrow + timedelta(minutes=10 * i), slots=5) for i in range(6)]
    user = new_user()
    now = tomorrow - timedelta(days=1)

    results = race(
        [
            lambda c=c: handlers.book(
                uow(), directory, user_id=user, conference_name=c.name, now=now, caller=attendee(user)
            )
            for c in conferences
        ]
    )

    confirmed = [r for r in results if not isinstance(r, DomainError)]
    assert len(confirmed) == 1
    assert all(getattr(r, "code", None) == "OVERLAPPING_BOOKING" for r in results if isinstance(r, DomainError))


def test_cancels_confirms_and_offers_racing_keep_the_seat_count_true(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=3)
    now = tomorrow - timedelta(days=1)
    holders = [own_booking(uow, directory, new_user(), conference, now) for _ in range(3)]
    line = [own_booking(uow, directory, new_user(), conference, now) for _ in range(6)]

    race(
        [lambda h=h: handlers.cancel(uow(), h.booking.booking_id, now, attendee(h.booking.user_id)) for h in holders]
        + [lambda: handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW) for _ in range(6)]
    )
    handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)
    pending = [
        v
        for v in (handlers.get_booking(uow(), b.booking.booking_id, ADMIN) for b in line)
        if v.booking.status is Status.CONFIRMATION_PENDING
    ]
    race(
        [lambda v=v: handlers.confirm(uow(), v.booking.booking_id, now, attendee(v.booking.user_id)) for v in pending]
        + [
            lambda v=v: handlers.cancel(uow(), v.booking.booking_id, now, attendee(v.booking.user_id))
            for v in pending[:1]
        ]
        + [lambda: handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW) for _ in range(3)]
    )

    assert [v.booking.booking_id for v in pending] == [b.booking.booking_id for b in line[:3]], "first come"
    assert ledger_matches_bookings(uow, conference.conference_id)
    with uow() as unit:
        assert unit.seats.get(conference.conference_id).held <= conference.slots


def test_the_same_cancel_sent_three_times_at_once_succeeds_once(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    booked = own_booking(uow, directory, new_user(), conference, now)
    results = race(
        [lambda: handlers.cancel(uow(), booked.booking.booking_id, now, attendee(booked.booking.user_id))] * 3
    )
    assert sum(not isinstance(r, DomainError) for r in results) == 1
    assert ledger_matches_bookings(uow, conference.conference_id)
