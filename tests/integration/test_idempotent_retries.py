"""Idempotency keys on the real booking schema: a crash right after the commit, or right before it,
and then the retry; expired keys; the key and its answer kept together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from confbook.booking.v1 import booking_pb2
from confbook_common.idempotency import IdempotentCalls, KeyReused
from confbook_common.retention import CommonLifetimes, enforce, idempotency_keys_rule
from confbook_common.timestamps import utc_now
from services.booking.adapters import tables
from services.booking.domain.errors import AlreadyBooked
from services.booking.entrypoints.grpc_servicer import BookingServicer
from services.booking.service_layer import handlers
from tests.conftest import ROOT
from tests.integration.callers import CALLERS, attendee, call_as

REPLAYED = ("idempotent-replayed", "true")

# A booking service process that books with a key and is killed the moment the call returns:
# after the commit, before any answer could leave.
_KILLED_AFTER_COMMIT = """
import os, signal, sys
from confbook.booking.v1 import booking_pb2
from confbook_common.db import create_engine
from services.booking.entrypoints.grpc_servicer import BookingServicer
from services.booking.service_layer.unit_of_work import BookingUnitOfWork
from tests.fakes import CallContext
from tests.integration.callers import attendee

url, conference, user, key = sys.argv[1:]
engine = create_engine(url, application_name="test-killed")


class TheUser:  # the caller: the user's own subject, as the retry's token says
    def of(self, context):
        return attendee(user)


servicer = BookingServicer(lambda: BookingUnitOfWork(engine), directory=None, callers=TheUser())
request = booking_pb2.BookRequest(conference_name=conference, user_id=user)
servicer.Book(request, CallContext((("idempotency-key", key),)))
os.kill(os.getpid(), signal.SIGKILL)
"""

# The same, killed inside the transaction, after the booking was written but before the commit.
_KILLED_BEFORE_COMMIT = """
import os, signal, sys
from confbook.booking.v1 import booking_pb2
from confbook_common.db import create_engine
from services.booking.entrypoints import grpc_servicer
from services.booking.service_layer import handlers
from services.booking.service_layer.unit_of_work import BookingUnitOfWork
from tests.fakes import CallContext
from tests.integration.callers import attendee

url, conference, user, key = sys.argv[1:]
engine = create_engine(url, application_name="test-killed")
booked = handlers.book


class TheUser:  # the caller: the user's own subject, as the retry's token says
    def of(self, context):
        return attendee(user)



def book_then_die(*args, **kwargs):
    booked(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)


grpc_servicer.handlers.book = book_then_die
servicer = grpc_servicer.BookingServicer(lambda: BookingUnitOfWork(engine), directory=None, callers=TheUser())
request = booking_pb2.BookRequest(conference_name=conference, user_id=user)
servicer.Book(request, CallContext((("idempotency-key", key),)))
"""


def run_killed(script: str, url: str, *args: str) -> None:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("", "libs", "gen"))}
    finished = subprocess.run(
        [sys.executable, "-c", script, url, *args], cwd=ROOT, env=environment, capture_output=True, timeout=60
    )
    assert finished.returncode == -signal.SIGKILL, finished.stderr.decode()[-2000:]


@pytest.fixture
def conference(uow, directory, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    handlers.seat_availability(uow(), directory, conference.conference_id)  # copied: no directory needed later
    return conference


@pytest.fixture
def servicer(uow, directory):
    return BookingServicer(uow, directory, CALLERS)


def bookings_of(uow, user_id):
    return [view.booking for view in handlers.list_user_bookings(uow(), user_id, attendee(user_id))]


def keyed(key, subject="alice"):
    """A call with an idempotency key, by `subject` (a user's own subject is its id)."""
    return call_as(subject, "attendee", ("idempotency-key", key))


def stored(key, subject):
    """The key as stored: a key belongs to its caller."""
    return f"{key} {subject}"


def test_a_retry_after_a_crash_right_after_the_commit_replays_the_answer(
    infrastructure, uow, servicer, conference, new_user
):
    user, key = new_user(), f"crash-{uuid.uuid4()}"
    run_killed(_KILLED_AFTER_COMMIT, infrastructure.service_database_url("booking"), conference.name, user, key)
    [booked] = bookings_of(uow, user)  # the effect was committed

    context = keyed(key, user)
    reply = servicer.Book(booking_pb2.BookRequest(conference_name=conference.name, user_id=user), context)

    assert REPLAYED in context.trailing
    assert reply.booking.booking_id == booked.booking_id
    assert reply.booking.status == booking_pb2.BOOKING_STATUS_CONFIRMED
    assert len(bookings_of(uow, user)) == 1
    with pytest.raises(AlreadyBooked):  # without the key it is a second booking, refused
        servicer.Book(booking_pb2.BookRequest(conference_name=conference.name, user_id=user), call_as(user))


def test_a_crash_before_the_commit_leaves_neither_effect_nor_key(infrastructure, uow, servicer, conference, new_user):
    user, key = new_user(), f"crash-{uuid.uuid4()}"
    run_killed(_KILLED_BEFORE_COMMIT, infrastructure.service_database_url("booking"), conference.name, user, key)
    assert bookings_of(uow, user) == []

    context = keyed(key, user)
    reply = servicer.Book(booking_pb2.BookRequest(conference_name=conference.name, user_id=user), context)

    assert REPLAYED not in context.trailing
    assert [booking.booking_id for booking in bookings_of(uow, user)] == [reply.booking.booking_id]


def test_a_key_past_its_24_hours_is_a_new_request_and_is_purged(uow, servicer, conference, new_user, booking_engine):
    user, key = new_user(), f"old-{uuid.uuid4()}"
    subject = f"s{uuid.uuid4().hex[:10]}"  # a subject without a user yet, which makes one
    request = booking_pb2.CreateUserRequest(user_id=f"u{uuid.uuid4().hex[:10]}", topics=["AI"])
    servicer.CreateUser(request, keyed(key, subject))
    with booking_engine.begin() as connection:
        connection.execute(
            update(tables.idempotency_keys)
            .where(tables.idempotency_keys.c.key == stored(key, subject))
            .values(created_at=utc_now() - timedelta(hours=24, seconds=1))
        )
    # Another request of the same caller with the expired key is no reuse: it is simply processed.
    context = call_as(subject, "admin", ("idempotency-key", key))  # an admin books for any user
    servicer.Book(booking_pb2.BookRequest(conference_name=conference.name, user_id=user), context)
    assert REPLAYED not in context.trailing and len(bookings_of(uow, user)) == 1

    other_key, other_subject = f"old-{uuid.uuid4()}", f"s{uuid.uuid4().hex[:10]}"
    servicer.CreateUser(
        booking_pb2.CreateUserRequest(user_id=f"u{uuid.uuid4().hex[:10]}"), keyed(other_key, other_subject)
    )
    with booking_engine.begin() as connection:
        connection.execute(
            update(tables.idempotency_keys)
            .where(tables.idempotency_keys.c.key == stored(other_key, other_subject))
            .values(created_at=utc_now() - timedelta(hours=25))
        )
    assert enforce(booking_engine, [idempotency_keys_rule(tables.idempotency_keys, CommonLifetimes())], batch=500) >= 1
    with booking_engine.connect() as connection:
        left = connection.execute(
            text("SELECT key FROM booking.idempotency_keys WHERE key IN (:a, :b)"),
            {"a": stored(key, subject), "b": stored(other_key, other_subject)},
        ).scalars()
        assert list(left) == [stored(key, subject)]  # the renewed one stays


def test_the_key_and_its_answer_are_kept_together(uow, conference, new_user, booking_engine):
    calls = IdempotentCalls(tables.idempotency_keys)
    request = booking_pb2.GetUserRequest(user_id="x")
    key = f"together-{uuid.uuid4()}"

    def fails_after_writing():
        handlers.create_user(uow_once, f"u{uuid.uuid4().hex[:10]}", [], attendee(f"s{uuid.uuid4().hex[:10]}"))
        raise RuntimeError("the database went away")

    uow_once = uow()
    with pytest.raises(RuntimeError):
        calls.run(uow_once, keyed(key), "/test/Method", request, fails_after_writing, booking_pb2.User, caller="alice")
    with booking_engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM booking.idempotency_keys WHERE key = :k"), {"k": key}
            ).scalar()
            == 0
        )

    # And a key once used answers only the request it was used for.
    calls.run(
        uow(),
        keyed(key),
        "/test/Method",
        request,
        lambda: booking_pb2.User(user_id="x"),
        booking_pb2.User,
        caller="alice",
    )
    with pytest.raises(KeyReused):
        calls.run(
            uow(),
            keyed(key),
            "/test/Other",
            request,
            lambda: booking_pb2.User(user_id="x"),
            booking_pb2.User,
            caller="alice",
        )
