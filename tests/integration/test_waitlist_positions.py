"""The database's line bookkeeping (tickets, counts, the position tree) against a plain count of the rows."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import text

from services.booking.domain.model import Status
from services.booking.service_layer import handlers
from tests.integration.callers import ADMIN, attendee, own_booking
from tests.integration.test_booking_concurrency import race

WINDOW = timedelta(minutes=30)


def counted_positions(uow, conference_id):
    """{booking_id: position} as the definition says: waiting bookings that joined no later."""
    with uow() as unit:
        rows = unit.connection.execute(
            text(
                "SELECT booking_id, row_number() OVER (ORDER BY join_order) FROM booking.bookings"
                " WHERE conference_id = :id AND status = 'WAITLISTED'"
            ),
            {"id": conference_id},
        )
        return dict(rows.tuples().all())


def shown_positions(uow, booking_ids):
    """{booking_id: position} as GET /booking shows it, for the waiting ones."""
    with uow().autocommit() as unit:
        views = [unit.bookings.view(booking_id) for booking_id in booking_ids]
    return {v.booking.booking_id: v.waitlist_position for v in views if v and v.booking.status is Status.WAITLISTED}


def current(uow, booking_ids):
    with uow().autocommit() as unit:
        return {booking_id: unit.bookings.get(booking_id) for booking_id in booking_ids}


def ledger_line(uow, conference_id):
    with uow() as unit:
        return unit.connection.execute(
            text(
                "SELECT waiting, (SELECT count(*) FROM booking.bookings b WHERE b.conference_id = s.conference_id"
                " AND b.status = 'WAITLISTED') FROM booking.conference_seats s WHERE conference_id = :id"
            ),
            {"id": conference_id},
        ).one()


@pytest.mark.parametrize("seed", [1, 2])
def test_positions_follow_every_kind_of_move(uow, directory, new_user, tomorrow, seed):
    """Joins, cancels from anywhere in line, offers from the head, expiries back to the end."""
    rng = random.Random(seed)
    conference = directory.add(start=tomorrow, slots=3)
    now = tomorrow - timedelta(days=1)
    bookings = [own_booking(uow, directory, new_user(), conference, now).booking for _ in range(30)]
    ids = [booking.booking_id for booking in bookings]
    for _ in range(50):
        move = rng.choice(["cancel", "offer", "expire", "join"])
        views = current(uow, ids)
        if move == "cancel":
            active = [i for i, b in views.items() if b.status is not Status.CANCELED]
            handlers.cancel(uow(), rng.choice(active), now, ADMIN)
        elif move == "offer":
            handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)
        elif move == "expire":
            pending = [i for i, b in views.items() if b.status is Status.CONFIRMATION_PENDING]
            if pending:
                handlers.expire_offer(uow(), rng.choice(pending), now + WINDOW)
        else:
            user = new_user()
            ids.append(own_booking(uow, directory, user, conference, now).booking.booking_id)
        expected = counted_positions(uow, conference.conference_id)
        assert shown_positions(uow, ids) == expected, f"after {move}"
        waiting, counted = ledger_line(uow, conference.conference_id)
        assert waiting == counted == len(expected)


def test_racing_joins_and_leaves_keep_the_count(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    first = [new_user() for _ in range(30)]
    booked = race(
        [
            lambda user=user: handlers.book(
                uow(), directory, user_id=user, conference_name=conference.name, now=now, caller=attendee(user)
            )
            for user in first
        ]
    )
    waiting = [view.booking.booking_id for view in booked if view.booking.status is Status.WAITLISTED]
    later = [new_user() for _ in range(20)]
    race(
        [lambda i=i: handlers.cancel(uow(), i, now, ADMIN) for i in waiting[::2]]
        + [
            lambda user=user: handlers.book(
                uow(), directory, user_id=user, conference_name=conference.name, now=now, caller=attendee(user)
            )
            for user in later
        ]
    )
    expected = counted_positions(uow, conference.conference_id)
    assert sorted(expected.values()) == list(range(1, len(expected) + 1))
    assert shown_positions(uow, expected) == expected
    assert ledger_line(uow, conference.conference_id) == (len(expected), len(expected))


def test_closing_a_line_at_the_start_empties_its_tree(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    before = tomorrow - timedelta(days=1)
    for _ in range(6):
        own_booking(uow, directory, new_user(), conference, before)

    assert handlers.close_waitlist(uow(), conference.conference_id, tomorrow) == 5

    with uow() as unit:
        nodes = unit.connection.execute(
            text("SELECT count(*) FROM booking.waitlist_tree WHERE conference_id = :id"),
            {"id": conference.conference_id},
        ).scalar_one()
    assert nodes == 0
    assert ledger_line(uow, conference.conference_id) == (0, 0)


def _lowbit(value: int) -> int:
    return value & -value


def _summing(ticket: int) -> set[int]:
    nodes = set()
    while ticket:
        nodes.add(ticket)
        ticket -= _lowbit(ticket)
    return nodes


def _covering(ticket: int) -> set[int]:
    nodes = set()
    while ticket < 2**31:
        nodes.add(ticket)
        ticket += _lowbit(ticket)
    return nodes


def _within(ticket: int) -> set[int]:
    nodes, node = set(), ticket - 1
    while node > ticket - _lowbit(ticket):
        nodes.add(node)
        node -= _lowbit(node)
    return nodes


@pytest.mark.parametrize("ticket", [1, 2, 3, 6, 7, 8, 12, 1000, 1024, 2**20 + 5, 2**30, 2**31 - 1])
def test_the_tree_functions_walk_the_nodes_a_fenwick_tree_walks(uow, ticket):
    """The SQL functions, written without loops, against the textbook loops."""
    with uow().autocommit() as unit:

        def nodes(function: str) -> set[int]:
            query = text(f"SELECT booking.{function}(:ticket)")
            return set(unit.connection.execute(query, {"ticket": ticket}).scalar_one())

        assert nodes("waitlist_tree_nodes_summing") == _summing(ticket)
        assert nodes("waitlist_tree_nodes_covering") == _covering(ticket)
        assert nodes("waitlist_tree_nodes_within") == _within(ticket)
