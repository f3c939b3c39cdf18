"""Every HTTP route against generated hostile input: a 4xx with the contract's error body, a short
message, nothing stored, and the stack still answering afterwards."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scripts.sandbox import Stack
from tests import hostile
from tests.e2e.conftest import Api, assert_error

# An error message never repeats much of an input: at most 100 characters of it, quoted.
MESSAGE_MAX_LENGTH = 1200


def send_json(http: httpx.Client, path: str, body: Any, content_type: str = "application/json") -> httpx.Response:
    # ensure_ascii writes a lone surrogate as the escape "\ud800", as a hostile client would.
    return http.post(path, content=json.dumps(body, ensure_ascii=True), headers={"content-type": content_type})


def assert_refused(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    error = assert_error(response, response.status_code)
    assert len(error["message"]) <= MESSAGE_MAX_LENGTH, error["message"][:200]
    assert response.headers["x-request-id"]


def assert_still_answering(http: httpx.Client) -> None:
    assert http.get("/readyz").status_code == 200


def a_conference_body(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "location": "Berlin",
        "start": "2040-06-15 09:00:00",
        "end": "2040-06-15 17:00:00",
        "slots": 5,
        "topics": ["Python"],
    }


CONFERENCE_FIELDS = {
    "name": hostile.bad_text | hostile.not_a_string,
    "location": hostile.bad_text | hostile.not_a_string,
    "start": hostile.bad_text
    | hostile.not_a_string
    | st.sampled_from(
        ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1969-12-31 23:59:59", "2040-13-01 09:00"]
    ),
    "end": hostile.bad_text | hostile.not_a_string | st.just("9999-12-31T23:30:00-23:59"),
    "slots": hostile.beyond_int64 | hostile.not_an_int | st.integers(max_value=0) | st.integers(min_value=1_000_001),
    "topics": st.lists(hostile.bad_text | hostile.not_a_string, min_size=1, max_size=3)
    | hostile.not_a_string
    | st.just(["x"] * 11),
}


@given(field=st.sampled_from(sorted(CONFERENCE_FIELDS)), data=st.data())
def test_a_hostile_conference_field_is_a_400_and_nothing_is_created(http, field, data):
    name = f"Hostile {uuid.uuid4().hex[:12]}"
    body = {**a_conference_body(name), field: data.draw(CONFERENCE_FIELDS[field])}
    assert_refused(send_json(http, "/conference", body), 400)
    assert_refused(http.get(f"/conference/{name}"), 404)


USER_FIELDS = {
    "user_id": hostile.bad_text | hostile.not_a_string,
    "topics": st.lists(hostile.bad_text, min_size=1, max_size=3) | hostile.not_a_string | st.just(["x"] * 51),
}


@given(field=st.sampled_from(sorted(USER_FIELDS)), data=st.data())
def test_a_hostile_user_field_is_a_400_and_nothing_is_created(http, field, data):
    user_id = f"hostile{uuid.uuid4().hex[:12]}"
    body = {"user_id": user_id, "topics": ["AI"], field: data.draw(USER_FIELDS[field])}
    assert_refused(send_json(http, "/user", body), 400)
    assert_refused(http.get(f"/user/{user_id}"), 404)


@pytest.fixture(scope="module")
def booked(http: httpx.Client, stack: Stack) -> dict[str, Any]:
    """A conference with one seat, held by one user's booking: what hostile requests must not change."""
    api = Api(http, stack)
    conference = api.create_conference(slots=1)
    user_id = api.create_user()
    booking = api.book(conference, user_id)
    return {"conference": conference, "user_id": user_id, "booking": api.booking(booking["booking_id"])}


@given(field=st.sampled_from(["name", "user_id"]), value=hostile.bad_text | hostile.not_a_string)
def test_a_hostile_booking_request_is_a_400_and_books_nothing(http, booked, field, value):
    body = {"name": booked["conference"]["name"], "user_id": booked["user_id"], field: value}
    assert_refused(send_json(http, "/book", body), 400)
    bookings = http.get(f"/user/{booked['user_id']}/bookings").json()["bookings"]
    assert [booking["booking_id"] for booking in bookings] == [booked["booking"]["booking_id"]]


@given(
    path=st.sampled_from(["/confirm", "/cancel"]),
    value=hostile.beyond_int64 | hostile.not_an_int | st.integers(max_value=0),
)
def test_a_hostile_booking_id_is_a_400_and_changes_nothing(http, api, booked, path, value):
    assert_refused(send_json(http, path, {"booking_id": value}), 400)
    assert api.booking(booked["booking"]["booking_id"]) == booked["booking"]


WEBHOOK_FIELDS = {
    "url": hostile.bad_text
    | hostile.not_a_string
    | st.sampled_from(["ftp://example.com/x", "javascript:alert(1)", "http://", "//example.com", "http://h:99999/"]),
    "events": st.lists(hostile.bad_text | hostile.not_a_string | st.just("booking.lost"), min_size=1, max_size=3)
    | hostile.not_a_string.filter(lambda value: value is not None),
    "conference": hostile.bad_text | hostile.not_a_string.filter(lambda value: value is not None),
}


def webhook_ids(http: httpx.Client) -> set[str]:
    return {webhook["webhook_id"] for webhook in http.get("/webhooks").json()["webhooks"]}


@given(field=st.sampled_from(sorted(WEBHOOK_FIELDS)), data=st.data())
def test_a_hostile_webhook_field_is_a_400_and_subscribes_nothing(http, field, data):
    before = webhook_ids(http)
    body = {"url": "https://example.com/hooks", field: data.draw(WEBHOOK_FIELDS[field])}
    assert_refused(send_json(http, "/webhooks", body), 400)
    assert webhook_ids(http) == before


# What a header can carry: visible Latin-1 and spaces (no CR, LF or NUL, which HTTP itself refuses), and no
# space at either end, which is not part of the value (RFC 9110, 5.5) and which the client refuses to send.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
).map(lambda text: text.strip(" "))


@given(last_event_id=header_text.filter(lambda text: len(text.strip()) != 36) | st.just("x" * 5000))
def test_a_hostile_last_event_id_is_a_400(http, booked, last_event_id):
    headers = {"Last-Event-ID": last_event_id.encode("latin-1")}  # bytes: httpx sends them as they are
    response = http.get(f"/booking/{booked['booking']['booking_id']}/events", headers=headers)
    assert_refused(response, 400)


@given(
    route=st.sampled_from(
        [
            ("GET", "/conference/{}"),
            ("GET", "/user/{}"),
            ("GET", "/user/{}/bookings"),
            ("GET", "/user/{}/recommendations"),
            ("GET", "/user/{}/export"),
            ("DELETE", "/user/{}"),
            ("GET", "/booking/{}"),
            ("GET", "/booking/{}/events"),
            ("DELETE", "/webhooks/{}"),
        ]
    ),
    segment=hostile.bad_path_bytes,
)
def test_a_hostile_path_segment_is_a_4xx(http, route, segment):
    method, template = route
    assert_refused(http.request(method, template.format(quote(segment, safe=""))), 400, 404)


@given(
    page_size=st.one_of(st.integers(), st.integers(-(2**70), 2**70), st.floats()).map(str) | hostile.bad_path_bytes,
    page_token=st.binary(max_size=300) | hostile.bad_path_bytes,
)
def test_hostile_paging_is_a_400_or_a_page(http, page_size, page_token):
    response = http.get(f"/conferences?page_size={quote(page_size, safe='')}&page_token={quote(page_token, safe='')}")
    if response.status_code != 200:
        assert_refused(response, 400)


@given(slots=CONFERENCE_FIELDS["slots"])
def test_a_hostile_capacity_is_a_400_and_changes_nothing(http, booked, slots):
    name = booked["conference"]["name"]
    response = http.patch(
        f"/conference/{quote(name)}", content=json.dumps({"slots": slots}), headers={"content-type": "application/json"}
    )
    assert_refused(response, 400)
    assert http.get(f"/conference/{quote(name)}").json()["slots"] == booked["conference"]["slots"]


@given(segment=hostile.bad_path_bytes)
def test_a_hostile_conference_to_change_is_a_4xx(http, segment):
    assert_refused(http.patch(f"/conference/{quote(segment, safe='')}", json={"slots": 3}), 400, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/conference/a%2F"), ("GET", "/conference/a%2F"), ("GET", "/conference/%00%2F"), ("GET", "/booking/1/")],
)
def test_a_path_ending_in_a_slash_is_refused_not_redirected(http, method, path):
    response = http.request(method, path, json={"slots": 3} if method == "PATCH" else None)

    assert_refused(response, 400, 404)
    assert "location" not in response.headers


@given(limit=st.one_of(st.integers(), st.integers(-(2**70), 2**70), st.floats()).map(str) | hostile.bad_path_bytes)
def test_a_hostile_recommendation_limit_is_a_400_or_a_list(http, booked, limit):
    response = http.get(f"/user/{booked['user_id']}/recommendations?limit={quote(limit, safe='')}")
    if response.status_code != 200:
        assert_refused(response, 400)


@given(
    key=hostile.bad_idempotency_keys,
    path=st.sampled_from(["/conference", "/user", "/book", "/confirm", "/cancel"]),
)
def test_a_hostile_idempotency_key_is_a_400_and_changes_nothing(http, api, booked, key, path):
    bodies = {
        "/conference": a_conference_body(f"Keyed {uuid.uuid4().hex[:12]}"),
        "/user": {"user_id": f"keyed{uuid.uuid4().hex[:12]}", "topics": []},
        "/book": {"name": booked["conference"]["name"], "user_id": booked["user_id"]},
        "/confirm": {"booking_id": booked["booking"]["booking_id"]},
        "/cancel": {"booking_id": booked["booking"]["booking_id"]},
    }
    response = http.post(path, json=bodies[path], headers={"Idempotency-Key": key.encode("latin-1")})
    assert_refused(response, 400)
    assert api.booking(booked["booking"]["booking_id"]) == booked["booking"]


@given(
    body=st.one_of(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5), lambda inner: st.lists(inner, max_size=3)
        ),
        st.integers(2, 3000).map(lambda depth: "[" * depth + "]" * depth),
    ),
    path=st.sampled_from(["/conference", "/user", "/book", "/confirm", "/cancel", "/webhooks"]),
    content_type=st.sampled_from(["application/json", "text/plain", "application/xml", "multipart/form-data", ""]),
)
def test_a_body_that_is_no_json_object_is_a_400(http, body, path, content_type):
    content = body if isinstance(body, str) else json.dumps(body)
    response = http.post(path, content=content, headers={"content-type": content_type})
    assert_refused(response, 400)


def test_the_stack_still_answers_and_works_after_the_hostile_requests(http, api):
    assert_still_answering(http)
    conference = api.create_conference()
    assert api.book(conference, api.create_user())["status"] == "CONFIRMED"
