"""Bookings of one conference made together, on the real booking schema: each as if alone, in order, all or none."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from confbook.booking.v1 import booking_pb2
from confbook_common.errors import DomainError
from confbook_common.validation import conference_name_key
from services.booking.adapters.repository import BookOutcome
from services.booking.domain.errors import NotYourUser
from services.booking.domain.model import Status
from services.booking.entrypoints.grpc_servicer import BOOKINGS_TOGETHER_AT_MOST, BookingServicer
from services.booking.service_layer import handlers
from tests.integration.callers import ADMIN, CALLERS, attendee, call_as, own_booking
from tests.integration.test_booking_concurrency import ledger_matches_bookings
from tests.waiting import eventually

# The largest ticket a line may issue (the ledger's `tickets_in_range` check).
LAST_TICKET = 2**31 - 1


@pytest.fixture
def copied(uow, directory, tomorrow):
    """A conference this service has its copy of, with `slots` seats."""

    def add(slots: int):
        conference = directory.add(start=tomorrow, slots=slots)
        handlers.seat_availability(uow(), directory, conference.conference_id)
        return conference

    return add


def book_together(uow, users, conference, now):
    """Each booking of `users` by the user's own caller, or by the caller paired with it."""
    requests = [user if isinstance(user, tuple) else (user, attendee(user)) for user in users]
    return handlers.book_together(uow(), requests, conference_key=conference_name_key(conference.name), now=now)


def bookings_of_conference(uow, conference):
    with uow() as unit:
        return unit.connection.execute(
            text("SELECT count(*) FROM booking.bookings WHERE conference_id = :id"), {"id": conference.conference_id}
        ).scalar()


def issue_tickets_up_to(uow, conference, ticket):
    """Make the conference's line have issued every ticket up to `ticket`, as a very long-lived line would."""
    with uow() as unit:
        unit.connection.execute(
            text("UPDATE booking.conference_seats SET tickets_issued = :ticket WHERE conference_id = :id"),
            {"ticket": ticket, "id": conference.conference_id},
        )
        unit.commit()


def test_bookings_made_together_confirm_until_full_then_join_the_line_in_the_order_given(
    uow, copied, new_user, tomorrow
):
    conference = copied(slots=2)
    users = [new_user() for _ in range(5)]

    attempts = book_together(uow, users, conference, tomorrow - timedelta(days=1))

    assert [attempt.outcome for attempt in attempts] == [BookOutcome.BOOKED] * 5
    views = [attempt.view for attempt in attempts]
    assert [view.booking.user_id for view in views] == users
    assert [view.booking.status for view in views] == [Status.CONFIRMED] * 2 + [Status.WAITLISTED] * 3
    assert [view.waitlist_position for view in views] == [None, None, 1, 2, 3]
    assert ledger_matches_bookings(uow, conference.conference_id)


def test_each_user_of_a_batch_gets_their_own_refusal_and_the_others_are_booked(
    uow, directory, copied, new_user, tomorrow
):
    now = tomorrow - timedelta(days=1)
    conference = copied(slots=1)
    overlapping_full, overlapping_free = copied(slots=1), copied(slots=1)
    already, confirmed_elsewhere, waiting_elsewhere, fresh = (new_user() for _ in range(4))
    handlers.book(
        uow(), directory, user_id=already, conference_name=conference.name, now=now, caller=attendee(already)
    )  # takes the seat
    handlers.book(
        uow(),
        directory,
        user_id=confirmed_elsewhere,
        conference_name=overlapping_free.name,
        now=now,
        caller=attendee(confirmed_elsewhere),
    )
    own_booking(uow, directory, new_user(), overlapping_full, now)
    handlers.book(
        uow(),
        directory,
        user_id=waiting_elsewhere,
        conference_name=overlapping_full.name,
        now=now,
        caller=attendee(waiting_elsewhere),
    )

    users = [
        ("nobody-here", ADMIN),
        ("nobody-here", attendee("a-stranger")),
        (fresh, attendee("a-stranger")),
        already,
        confirmed_elsewhere,
        waiting_elsewhere,
        fresh,
        fresh,
    ]
    attempts = book_together(uow, users, conference, now)

    assert [attempt.outcome for attempt in attempts] == [
        BookOutcome.USER_NOT_FOUND,  # for an admin, who may book for any user
        BookOutcome.NOT_YOURS,  # for anyone else, whether the user exists or not
        BookOutcome.NOT_YOURS,
        BookOutcome.ALREADY_BOOKED,
        BookOutcome.OVERLAPPING_BOOKING,
        BookOutcome.HAS_NEIGHBOURS,  # left to its caller: a confirmation would cancel its other booking
        BookOutcome.BOOKED,
        BookOutcome.ALREADY_BOOKED,  # the same user twice in one batch: booked once
    ]
    assert attempts[4].other_conference == overlapping_free.name
    assert attempts[6].view.waitlist_position == 1
    assert bookings_of_conference(uow, conference) == 2

    view = handlers.finish_booking(
        uow(),
        directory,
        attempts[5],
        user_id=waiting_elsewhere,
        conference_name=conference.name,
        now=now,
        caller=attendee(waiting_elsewhere),
    )
    assert (view.booking.status, view.waitlist_position) == (Status.WAITLISTED, 2)


def test_a_conference_not_copied_yet_is_left_to_each_caller_to_copy_and_book(uow, directory, new_user, tomorrow):
    now = tomorrow - timedelta(days=1)
    conference = directory.add(start=tomorrow, slots=1)
    users = [new_user(), new_user()]

    attempts = book_together(uow, users, conference, now)
    assert [attempt.outcome for attempt in attempts] == [BookOutcome.CONFERENCE_UNKNOWN] * 2

    views = [
        handlers.finish_booking(
            uow(), directory, attempt, user_id=user, conference_name=conference.name, now=now, caller=attendee(user)
        )
        for user, attempt in zip(users, attempts, strict=True)
    ]
    assert [view.booking.status for view in views] == [Status.CONFIRMED, Status.WAITLISTED]


def test_a_started_conference_refuses_each_user_of_a_batch(uow, copied, new_user, tomorrow):
    conference = copied(slots=5)
    attempts = book_together(uow, [new_user(), new_user()], conference, tomorrow)
    assert [attempt.outcome for attempt in attempts] == [BookOutcome.CONFERENCE_STARTED] * 2
    assert bookings_of_conference(uow, conference) == 0


def test_an_error_in_one_booking_of_a_batch_undoes_them_all(uow, directory, copied, new_user, tomorrow):
    now = tomorrow - timedelta(days=1)
    conference = copied(slots=1)
    issue_tickets_up_to(uow, conference, LAST_TICKET - 1)  # room for one more in line, not two
    first, second, third = new_user(), new_user(), new_user()

    with pytest.raises(IntegrityError, match="tickets_in_range"):
        book_together(uow, [first, second, third], conference, now)

    assert bookings_of_conference(uow, conference) == 0
    with uow() as unit:
        assert unit.seats.get(conference.conference_id).held == 0
    alone = handlers.book(
        uow(), directory, user_id=first, conference_name=conference.name, now=now, caller=attendee(first)
    )
    assert alone.booking.status is Status.CONFIRMED


class HeldUser:
    """Another transaction holding a user's row, as that user's own booking elsewhere would: a batch with
    the user waits for it in the database, and the calls that come meanwhile wait for the next batch."""

    def __init__(self, engine, user_id):
        self._connection = engine.connect()
        self._transaction = self._connection.begin()
        self._connection.execute(
            text("SELECT 1 FROM booking.users WHERE user_id = :id FOR UPDATE"), {"id": user_id}
        ).one()

    def release(self):
        self._transaction.rollback()
        self._connection.close()


def book_in_threads(servicer, conference, users, callers=None):
    """Book each user in a thread of its own, as the server would, by its own subject or the
    (subject, role) `callers` names for it; each user's reply or the error raised."""
    replies: dict[str, object] = {}
    contexts = {user: call_as(*(callers or {}).get(user, (user,))) for user in users}

    def book(user):
        try:
            request = booking_pb2.BookRequest(user_id=user, conference_name=conference.name)
            replies[user] = servicer.Book(request, contexts[user])
        except (DomainError, IntegrityError) as error:
            replies[user] = error

    threads = [threading.Thread(target=book, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    return threads, replies


def made_together() -> tuple[float, float]:
    """The statements that booked together, and the bookings they made, as the metric counts them."""
    count = REGISTRY.get_sample_value("confbook_bookings_made_together_count") or 0.0
    return count, REGISTRY.get_sample_value("confbook_bookings_made_together_sum") or 0.0


def record_batches(monkeypatch) -> list[int]:
    sizes: list[int] = []
    book_together = handlers.book_together

    def recorded(uow, user_ids, **kwargs):
        sizes.append(len(user_ids))
        return book_together(uow, user_ids, **kwargs)

    monkeypatch.setattr(handlers, "book_together", recorded)
    return sizes


def run_behind_held_first(booking_engine, servicer, conference, users, batch_sizes, callers=None):
    """The first user's batch waits in the database while every other call comes; then it goes on."""
    held = HeldUser(booking_engine, users[0])
    try:
        threads, replies = book_in_threads(servicer, conference, users[:1], callers)
        eventually(lambda: batch_sizes == [1])  # under way
        more, replies_of_more = book_in_threads(servicer, conference, users[1:], callers)
        threads += more
        eventually(lambda: servicer._bookings_together.callers() == len(users))
    finally:
        held.release()
    for thread in threads:
        thread.join(30)
    return {**replies, **replies_of_more}


def test_book_calls_that_come_while_a_batch_runs_are_booked_together_each_as_if_alone(
    uow, directory, booking_engine, copied, new_user, monkeypatch
):
    conference = copied(slots=5)
    users = [new_user() for _ in range(BOOKINGS_TOGETHER_AT_MOST + 8)]
    sizes = record_batches(monkeypatch)
    servicer = BookingServicer(uow, directory, CALLERS)
    statements_before, bookings_before = made_together()

    replies = run_behind_held_first(booking_engine, servicer, conference, users, sizes)

    assert sizes == [1, BOOKINGS_TOGETHER_AT_MOST, 7]
    statements, made = made_together()
    assert (statements - statements_before, made - bookings_before) == (3, len(users))  # what operators see
    bookings = [replies[user].booking for user in users]
    assert bookings[0].status == booking_pb2.BOOKING_STATUS_CONFIRMED
    statuses = [booking.status for booking in bookings]
    assert statuses.count(booking_pb2.BOOKING_STATUS_CONFIRMED) == 5
    positions = sorted(booking.waitlist_position for booking in bookings if booking.waitlist_position)
    assert positions == list(range(1, len(users) - 4))
    assert all(replies[user].booking.user_id == user for user in users)  # each caller its own booking
    assert ledger_matches_bookings(uow, conference.conference_id)


def test_the_calls_of_a_failed_batch_are_each_booked_alone(
    uow, directory, booking_engine, copied, new_user, monkeypatch
):
    conference = copied(slots=1)
    issue_tickets_up_to(uow, conference, LAST_TICKET - 2)  # room for two more in line, not three
    users = [new_user() for _ in range(4)]
    sizes = record_batches(monkeypatch)
    servicer = BookingServicer(uow, directory, CALLERS)

    replies = run_behind_held_first(booking_engine, servicer, conference, users, sizes)

    assert sizes == [1, 3]
    assert replies[users[0]].booking.status == booking_pb2.BOOKING_STATUS_CONFIRMED
    rest = [replies[user] for user in users[1:]]
    waiting = [reply for reply in rest if isinstance(reply, booking_pb2.BookResponse)]
    assert sorted(reply.booking.waitlist_position for reply in waiting) == [1, 2]  # the two that fit
    [refused] = [reply for reply in rest if isinstance(reply, Exception)]
    assert "tickets_in_range" in str(refused)
    assert bookings_of_conference(uow, conference) == 3


def test_each_call_of_a_batch_books_as_its_own_caller(uow, directory, booking_engine, copied, new_user, monkeypatch):
    conference = copied(slots=5)
    users = [new_user() for _ in range(6)]
    # The fourth names a user whose subject is not its caller's; the fifth is an admin's, for any user.
    callers = {users[3]: ("a-stranger",), users[4]: ("root", "admin")}
    sizes = record_batches(monkeypatch)
    servicer = BookingServicer(uow, directory, CALLERS)

    replies = run_behind_held_first(booking_engine, servicer, conference, users, sizes, callers)

    assert sizes == [1, 5]
    assert isinstance(replies[users[3]], NotYourUser)
    booked = [user for user in users if user != users[3]]
    assert all(replies[user].booking.user_id == user for user in booked)
    with uow() as unit:
        actors = dict(
            unit.connection.execute(
                text(
                    "SELECT b.user_id, e.actor_subject || ':' || e.actor_role FROM booking.booking_events e"
                    " JOIN booking.bookings b USING (booking_id) WHERE b.conference_id = :id"
                ),
                {"id": conference.conference_id},
            ).all()
        )
    assert actors == {user: (f"{user}:attendee" if user != users[4] else "root:admin") for user in booked}
