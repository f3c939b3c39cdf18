"""PATCH /conference/{name} and BookingService.ChangeCapacity on the whole stack, racing bookings."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from confbook_common.rpc.errors import error_reason
from tests.e2e.conftest import ORGANIZER, assert_error, grpc_channel
from tests.waiting import eventually


def patch(http, conference, slots):
    return http.patch(f"/conference/{conference['name']}", json={"slots": slots})


def held(api, booking_ids):
    """Seats held, counted from the bookings themselves."""
    return sum(1 for booking in booking_ids if api.status(booking) in ("CONFIRMED", "CONFIRMATION_PENDING"))


def test_raising_the_capacity_offers_the_new_seats_to_the_line_in_order(api, http):
    conference = api.create_conference(slots=1)
    api.book(conference, api.create_user())
    line = [api.book(conference, api.create_user())["booking_id"] for _ in range(3)]

    response = patch(http, conference, 3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["slots"], body["available_slots"]) == (conference["name"], 3, 0)

    eventually(lambda: [api.status(each) for each in line[:2]] == ["CONFIRMATION_PENDING"] * 2, timeout=1.5)
    assert api.booking(line[2])["waitlist_position"] == 1
    assert api.conference(conference["name"])["slots"] == 3


def test_the_conference_list_shows_the_changed_capacity(api, http):
    conference = api.create_conference(
        slots=2, start=datetime(2039, 1, 1, 9, tzinfo=UTC) + timedelta(seconds=time.time() % 10**6)
    )
    patch(http, conference, 9)
    listed: list[dict] = []
    token = ""
    while not listed:
        page = http.get(f"/conferences?page_size=100&page_token={token}").json()
        listed = [each for each in page["conferences"] if each["name"] == conference["name"]]
        token = page["next_page_token"]
        assert listed or token
    assert listed[0]["slots"] == 9


def test_raising_the_capacity_with_nobody_waiting_opens_seats_to_newcomers(api, http):
    conference = api.create_conference(slots=1)
    api.book(conference, api.create_user())
    assert patch(http, conference, 2).json()["available_slots"] == 1
    assert api.book(conference, api.create_user())["status"] == "CONFIRMED"


def test_lowering_is_allowed_down_to_the_seats_held_and_refused_below(api, http):
    conference = api.create_conference(slots=4)
    for _ in range(2):
        api.book(conference, api.create_user())
    assert_error(patch(http, conference, 1), 409, "SLOTS_BELOW_HELD")
    assert api.conference(conference["name"])["slots"] == 4

    response = patch(http, conference, 2)
    assert response.status_code == 200, response.text
    assert (response.json()["slots"], response.json()["available_slots"]) == (2, 0)
    assert api.book(conference, api.create_user())["status"] == "WAITLISTED"


def test_a_lowered_capacity_and_racing_bookings_never_oversell(api, http):
    conference = api.create_conference(slots=20)
    users = [api.create_user() for _ in range(20)]
    with ThreadPoolExecutor(max_workers=21) as pool:
        bookings = [pool.submit(api.book, conference, user) for user in users]
        change = pool.submit(patch, http, conference, 10)
        statuses = [booking.result()["status"] for booking in bookings]
        changed = change.result()

    slots = api.conference(conference["name"])["slots"]
    if changed.status_code == 200:
        assert slots == 10
    else:  # more than 10 seats were held by the time it ran
        assert_error(changed, 409, "SLOTS_BELOW_HELD")
        assert slots == 20
    assert statuses.count("CONFIRMED") == slots
    assert statuses.count("WAITLISTED") == 20 - slots


def test_capacity_changes_racing_each_other_and_bookings_leave_every_seat_accounted_for(api, http):
    conference = api.create_conference(slots=6)
    users = [api.create_user() for _ in range(12)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        changes = [pool.submit(patch, http, conference, slots) for slots in (3, 8, 2, 6)]
        bookings = [pool.submit(api.book, conference, user) for user in users]
        ids = [booking.result()["booking_id"] for booking in bookings]
        answers = [change.result() for change in changes]
    assert all(answer.status_code in (200, 409) for answer in answers), [answer.text for answer in answers]

    slots = api.conference(conference["name"])["slots"]
    # Once the offers of any new seats are made (well under a second), every seat is held.
    assert eventually(lambda: held(api, ids) == min(slots, len(ids)), timeout=2)


def test_an_unknown_conference_is_a_404(http):
    assert_error(http.patch(f"/conference/Nothing {uuid.uuid4().hex[:8]}", json={"slots": 3}), 404)


def test_after_the_start_the_capacity_is_fixed(api, http):
    conference = api.create_conference(start=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2))
    time.sleep(max(0.0, (datetime.fromisoformat(conference["start"]) - datetime.now(UTC)).total_seconds()))
    assert_error(patch(http, conference, 5), 409, "CONFERENCE_STARTED")


@pytest.mark.parametrize("body", [{"slots": 0}, {"slots": 1_000_001}, {"slots": "5"}, {"slots": 2.5}, {}, []])
def test_a_bad_capacity_is_a_400(api, http, body):
    conference = api.create_conference(slots=2)
    assert_error(http.patch(f"/conference/{conference['name']}", json=body), 400)
    assert api.conference(conference["name"])["slots"] == 2


def test_grpc_callers_change_the_capacity_too(stack, api):
    conference = api.create_conference(slots=2)
    api.book(conference, api.create_user())
    with grpc_channel(stack, "booking", api.token(ORGANIZER, "organizer")) as channel:
        stub = booking_pb2_grpc.BookingServiceStub(channel)
        seats = stub.ChangeCapacity(booking_pb2.ChangeCapacityRequest(conference_name=conference["name"], slots=7))
        with pytest.raises(grpc.RpcError) as below:
            stub.ChangeCapacity(booking_pb2.ChangeCapacityRequest(conference_name=conference["name"], slots=0))
    assert (seats.slots, seats.seats_held, seats.available_slots) == (7, 1, 6)
    assert below.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(below.value) == "VALIDATION_ERROR"
