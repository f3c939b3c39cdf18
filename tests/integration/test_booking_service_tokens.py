"""The booking service's gRPC methods and the caller's token, on the real booking schema: every
method but the seat availabilities needs one; the answers carry who caused each change; an
idempotency key is its caller's."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from unittest.mock import ANY

import pytest

from confbook.booking.v1 import booking_pb2
from confbook_common.errors import Unauthenticated
from confbook_common.timestamps import utc_now
from services.booking.adapters.change_notices import ChangeNotices
from services.booking.domain.errors import BookingNotFound, NotYourUser
from services.booking.entrypoints.grpc_servicer import BookingServicer
from services.booking.entrypoints.webhook_sender import delivery_body
from services.booking.service_layer import handlers
from tests.fakes import CallContext
from tests.integration.callers import ADMIN, CALLERS, call_as

REPLAYED = ("idempotent-replayed", "true")


@pytest.fixture
def servicer(uow, directory, booking_engine):
    return BookingServicer(uow, directory, CALLERS, notices=ChangeNotices(booking_engine), watch_seconds=0.5)


@pytest.fixture
def conference(uow, directory):
    conference = directory.add(start=utc_now().replace(microsecond=0) + timedelta(days=2), slots=1)
    handlers.seat_availability(uow(), directory, conference.conference_id)
    return conference


NEED_A_TOKEN = {
    "CreateUser": booking_pb2.CreateUserRequest(user_id="someone"),
    "GetUser": booking_pb2.GetUserRequest(user_id="someone"),
    "Book": booking_pb2.BookRequest(conference_name="Any", user_id="someone"),
    "GetBooking": booking_pb2.GetBookingRequest(booking_id=1),
    "ConfirmBooking": booking_pb2.ConfirmBookingRequest(booking_id=1),
    "CancelBooking": booking_pb2.CancelBookingRequest(booking_id=1),
    "ListUserBookings": booking_pb2.ListUserBookingsRequest(user_id="someone"),
    "ChangeCapacity": booking_pb2.ChangeCapacityRequest(conference_name="Any", slots=3),
    "ListConferenceBookings": booking_pb2.ListConferenceBookingsRequest(conference_name="Any"),
    "RecommendConferences": booking_pb2.RecommendConferencesRequest(user_id="someone"),
    "CreateWebhook": booking_pb2.CreateWebhookRequest(url="http://receiver.invalid/"),
    "ListWebhooks": booking_pb2.ListWebhooksRequest(),
    "DeleteWebhook": booking_pb2.DeleteWebhookRequest(webhook_id=str(uuid.uuid4())),
}


@pytest.mark.parametrize("method", sorted(NEED_A_TOKEN))
@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer not-a-token"),), (("authorization", "Basic b2xnYTpzZWNyZXQ="),)],
    ids=["none", "malformed", "not-bearer"],
)
def test_every_method_needs_a_token(servicer, method, metadata):
    with pytest.raises(Unauthenticated):
        getattr(servicer, method)(NEED_A_TOKEN[method], CallContext(metadata))


def test_watching_needs_a_token_and_a_booking_one_may_see(servicer, uow, directory, conference, new_user):
    user = new_user()
    booking_id = handlers.book(
        uow(), directory, user_id=user, conference_name=conference.name, now=utc_now(), caller=ADMIN
    ).booking.booking_id

    async def first(context):
        updates = servicer.WatchBooking(booking_pb2.WatchBookingRequest(booking_id=booking_id), context)
        try:
            return await anext(updates)
        finally:
            await updates.aclose()

    with pytest.raises(Unauthenticated):
        asyncio.run(first(CallContext()))
    with pytest.raises(BookingNotFound):
        asyncio.run(first(call_as("a-stranger")))
    for context in (call_as(user), call_as("olga", "organizer"), call_as("root", "admin")):
        assert asyncio.run(first(context)).booking.booking_id == booking_id


def test_seat_availability_is_public(servicer, conference):
    one = servicer.GetSeatAvailability(
        booking_pb2.GetSeatAvailabilityRequest(conference_id=conference.conference_id), CallContext()
    )
    assert (one.slots, one.available_slots) == (1, 1)
    many = servicer.ListSeatAvailability(
        booking_pb2.ListSeatAvailabilityRequest(conference_ids=[conference.conference_id]), CallContext()
    )
    assert [each.conference_id for each in many.seats] == [conference.conference_id]


def test_a_user_is_its_creators_and_booked_for_by_it_alone(servicer, conference):
    subject, user_id = f"s{uuid.uuid4().hex[:10]}", f"u{uuid.uuid4().hex[:10]}"
    created = servicer.CreateUser(booking_pb2.CreateUserRequest(user_id=user_id, topics=["AI"]), call_as(subject))
    assert created.user_id == user_id
    assert servicer.GetUser(booking_pb2.GetUserRequest(user_id=user_id), call_as(subject)).user_id == user_id

    request = booking_pb2.BookRequest(conference_name=conference.name, user_id=user_id)
    with pytest.raises(NotYourUser):
        servicer.Book(request, call_as("a-stranger"))
    with pytest.raises(NotYourUser):  # with a key too: the refusal is the caller's answer
        servicer.Book(request, call_as("a-stranger", "attendee", ("idempotency-key", "k1")))
    booked = servicer.Book(request, call_as(subject))
    assert booked.booking.user_id == user_id
    listed = servicer.ListUserBookings(booking_pb2.ListUserBookingsRequest(user_id=user_id), call_as(subject))
    assert [booking.booking_id for booking in listed.bookings] == [booked.booking.booking_id]


def test_the_same_key_from_two_callers_is_two_keys(servicer):
    key = f"shared-{uuid.uuid4()}"
    answers = []
    for _ in range(2):
        subject, user_id = f"s{uuid.uuid4().hex[:10]}", f"u{uuid.uuid4().hex[:10]}"
        context = call_as(subject, "attendee", ("idempotency-key", key))
        answers.append(servicer.CreateUser(booking_pb2.CreateUserRequest(user_id=user_id), context))
        assert REPLAYED not in context.trailing
    assert answers[0].user_id != answers[1].user_id


def test_an_events_json_says_who_caused_it(servicer, uow, directory, conference, new_user):
    user = new_user()
    booked = servicer.Book(booking_pb2.BookRequest(conference_name=conference.name, user_id=user), call_as(user))
    booking_id = booked.booking.booking_id
    servicer.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=booking_id), call_as("olga", "organizer"))

    made, canceled = handlers.changes_after(uow(), booking_id, 0)
    assert [json.loads(delivery_body(event))["data"] for event in (made, canceled)] == [
        {"booking": ANY, "reason": "user", "by": "attendee"},
        {"booking": ANY, "reason": "organizer", "by": "organizer"},
    ]
