"""GET /user/{user_id}/recommendations and BookingService.RecommendConferences on the whole stack."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from tests.e2e.conftest import assert_error, grpc_channel, subject_of

START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)


def unique_topic() -> str:
    # Other tests share the stack: topics of this test's own make its recommendations its own.
    return f"Topic {uuid.uuid4().hex[:10]}"


def new_user(api, topics):
    return api.create_user(topics)


@pytest.fixture
def world(api, http):
    """A user interested in A, B and C, and conferences around those interests."""
    a, b, c, other = unique_topic(), unique_topic(), unique_topic(), unique_topic()
    user = new_user(api, [a.lower(), b, c])
    make = api.create_conference
    conferences = {
        "two matches": make(start=START + timedelta(days=9), topics=[a, b, "Extra"], slots=5),
        "one match": make(start=START + timedelta(days=5), topics=[b], slots=5),
        "one match full": make(start=START + timedelta(days=1), topics=[c], slots=1),
        "one match later": make(start=START + timedelta(days=6), topics=[c], slots=5),
        "no match": make(start=START + timedelta(days=2), topics=[other], slots=5),
        "booked": make(start=START + timedelta(days=3), topics=[a], slots=5),
        "confirmed elsewhere": make(start=START + timedelta(days=12), topics=[other], slots=5),
        "overlapping": make(start=START + timedelta(days=12, hours=1), topics=[a], slots=5),
        "started": make(start=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2), topics=[a]),
    }
    api.book(conferences["one match full"], api.create_user())
    api.book(conferences["booked"], user)
    api.book(conferences["confirmed elsewhere"], user)
    started = datetime.fromisoformat(conferences["started"]["start"])
    time.sleep(max(0.0, (started - datetime.now(UTC)).total_seconds()))
    return user, conferences, a


def test_recommendations_are_the_bookable_matches_in_the_contracts_order(http, world):
    user, conferences, a = world
    response = http.get(f"/user/{user}/recommendations")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == user
    keys = {conference["name"]: key for key, conference in conferences.items()}
    names = [keys.get(entry["name"], entry["name"]) for entry in body["conferences"]]
    assert names == ["two matches", "one match", "one match later", "one match full"]
    first = body["conferences"][0]
    assert first["matching_topics"] == [a, conferences["two matches"]["topics"][1]]
    assert first["available_slots"] == 5 and first["waitlist_length"] == 0
    assert {key: first[key] for key in conferences["two matches"]} == conferences["two matches"]
    assert body["conferences"][-1]["available_slots"] == 0


def test_the_limit_cuts_the_list(http, world):
    user, conferences, _ = world
    names = [entry["name"] for entry in http.get(f"/user/{user}/recommendations?limit=1").json()["conferences"]]
    assert names == [conferences["two matches"]["name"]]


def test_a_user_without_matches_gets_an_empty_list(http, api):
    user = new_user(api, [unique_topic()])
    assert http.get(f"/user/{user}/recommendations").json() == {"user_id": user, "conferences": []}


def test_an_unknown_user_is_a_404(http):
    assert_error(http.get(f"/user/nobody{uuid.uuid4().hex[:8]}/recommendations"), 404, "USER_NOT_FOUND")


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5", ""])
def test_a_bad_limit_is_a_400(http, api, limit):
    user = new_user(api, [unique_topic()])
    assert_error(http.get(f"/user/{user}/recommendations?limit={limit}"), 400)


def test_grpc_callers_get_the_same_recommendations(stack, http, api, world):
    user, conferences, _ = world
    with grpc_channel(stack, "booking", api.token(subject_of(user))) as channel:
        reply = booking_pb2_grpc.BookingServiceStub(channel).RecommendConferences(
            booking_pb2.RecommendConferencesRequest(user_id=user, limit=2), timeout=10
        )
        with pytest.raises(grpc.RpcError) as refused:
            booking_pb2_grpc.BookingServiceStub(channel).RecommendConferences(
                booking_pb2.RecommendConferencesRequest(user_id=user, limit=101), timeout=10
            )
    assert reply.recommendations[0].conference.name == conferences["two matches"]["name"]
    assert len(reply.recommendations) == 2
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
