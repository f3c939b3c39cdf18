"""Idempotency-Key on every write, through the gateway and over gRPC: a retry gets the first answer
and has no second effect; another request with the key is a 422; one while the first runs, a 409."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy
from sqlalchemy import text

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from confbook_common.rpc.errors import error_reason
from tests.e2e.conftest import assert_error, grpc_channel, wire_time
from tests.waiting import eventually

REPLAYED = "Idempotent-Replayed"


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def bookings_of(http, user_id):
    return http.get(f"/user/{user_id}/bookings").json()["bookings"]


def test_a_retried_booking_gets_the_first_answer_and_books_once(api, http):
    conference, user = api.create_conference(slots=1), api.create_user()
    key = new_key()
    first = http.post("/book", json={"name": conference["name"], "user_id": user}, headers=keyed(key))
    again = http.post("/book", json={"user_id": user, "name": conference["name"]}, headers=keyed(key))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"
    assert [each["booking_id"] for each in bookings_of(http, user)] == [first.json()["booking_id"]]


def test_without_a_key_a_second_booking_is_refused_as_before(api, http):
    conference, user = api.create_conference(slots=1), api.create_user()
    api.book(conference, user)
    assert_error(http.post("/book", json={"name": conference["name"], "user_id": user}), 409, "ALREADY_BOOKED")


def test_every_write_replays_its_first_answer(api, http):
    key_of = {name: new_key() for name in ("conference", "user", "book", "cancel", "patch", "webhook")}
    name = f"Retried {uuid.uuid4().hex[:10]}"
    conference_body = {**_conference_body(name), "slots": 2}
    user_id = f"retry{uuid.uuid4().hex[:10]}"
    writes = [
        ("POST", "/conference", conference_body, key_of["conference"], 201),
        ("POST", "/user", {"user_id": user_id, "topics": ["AI"]}, key_of["user"], 201),
        ("POST", "/book", {"name": name, "user_id": user_id}, key_of["book"], 201),
        ("PATCH", f"/conference/{name}", {"slots": 5}, key_of["patch"], 200),
        ("POST", "/webhooks", {"url": "http://receiver.example/hook", "conference": name}, key_of["webhook"], 201),
    ]
    # The user is created, and books, as its own subject; the rest is done by the suite's admin.
    as_user = {"/user": api.as_user(user_id), "/book": api.as_user(user_id)}
    for method, path, body, key, status in writes:
        headers = {**keyed(key), **as_user.get(path, {})}
        first = http.request(method, path, json=body, headers=headers)
        assert first.status_code == status, first.text
        again = http.request(method, path, json=body, headers=headers)
        assert (again.status_code, again.json(), again.headers.get(REPLAYED)) == (status, first.json(), "true")

    booking_id = bookings_of(http, user_id)[0]["booking_id"]
    canceled = http.post("/cancel", json={"booking_id": booking_id}, headers=keyed(key_of["cancel"]))
    assert canceled.status_code == 200
    again = http.post("/cancel", json={"booking_id": booking_id}, headers=keyed(key_of["cancel"]))
    assert (again.status_code, again.json(), again.headers[REPLAYED]) == (200, canceled.json(), "true")

    # No second effect: one conference, one user, one booking, the capacity set once, one webhook.
    assert http.get(f"/conference/{name}").json()["slots"] == 5
    assert len(bookings_of(http, user_id)) == 1
    assert [hook["conference"] for hook in http.get("/webhooks").json()["webhooks"]].count(name) == 1


def test_a_replayed_capacity_change_does_not_undo_a_later_one(api, http):
    conference = api.create_conference(slots=2)
    key = new_key()
    path = f"/conference/{conference['name']}"
    assert http.patch(path, json={"slots": 5}, headers=keyed(key)).json()["slots"] == 5
    assert http.patch(path, json={"slots": 7}).json()["slots"] == 7
    replay = http.patch(path, json={"slots": 5}, headers=keyed(key))
    assert (replay.json()["slots"], replay.headers[REPLAYED]) == (5, "true")
    assert api.conference(conference["name"])["slots"] == 7


def test_confirm_is_retried_safely(api, http):
    conference = api.create_conference(slots=1)
    holder, waiter = api.create_user(), api.create_user()
    first = api.book(conference, holder)
    waiting = api.book(conference, waiter)
    api.cancel(first["booking_id"])
    eventually(lambda: api.status(waiting["booking_id"]) == "CONFIRMATION_PENDING")
    key = new_key()
    confirmed = http.post("/confirm", json={"booking_id": waiting["booking_id"]}, headers=keyed(key))
    again = http.post("/confirm", json={"booking_id": waiting["booking_id"]}, headers=keyed(key))
    assert confirmed.status_code == again.status_code == 200, (confirmed.text, again.text)
    assert again.json() == confirmed.json() and again.headers[REPLAYED] == "true"


def test_a_refusal_is_replayed_too(api, http):
    conference = api.create_conference()
    user_id = f"later{uuid.uuid4().hex[:10]}"
    key = new_key()
    body = {"name": conference["name"], "user_id": user_id}
    refused = http.post("/book", json=body, headers=keyed(key))
    assert_error(refused, 404, "USER_NOT_FOUND")
    assert http.post("/user", json={"user_id": user_id, "topics": []}, headers=api.as_user(user_id)).status_code == 201
    again = http.post("/book", json=body, headers=keyed(key))
    assert (again.status_code, again.json(), again.headers[REPLAYED]) == (404, refused.json(), "true")
    assert bookings_of(http, user_id) == []


@pytest.mark.parametrize("change", ["body", "path", "method"])
def test_the_same_key_for_another_request_is_a_422(api, http, change):
    conference, user = api.create_conference(slots=3), api.create_user()
    key = new_key()
    assert http.post("/book", json={"name": conference["name"], "user_id": user}, headers=keyed(key)).status_code == 201
    if change == "body":
        other = http.post("/book", json={"name": conference["name"], "user_id": api.create_user()}, headers=keyed(key))
    elif change == "path":
        other = http.post("/cancel", json={"booking_id": 1}, headers=keyed(key))
    else:
        other = http.patch(f"/conference/{conference['name']}", json={"slots": 4}, headers=keyed(key))
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert api.conference(conference["name"])["slots"] == 3


def test_bodies_that_are_equal_as_json_are_the_same_request(api, http):
    conference, user = api.create_conference(), api.create_user()
    key = new_key()
    first = http.post("/book", content=f'{{"name": "{conference["name"]}", "user_id": "{user}"}}', headers=keyed(key))
    again = http.post("/book", content=f'{{ "user_id":"{user}",\n "name":"{conference["name"]}" }}', headers=keyed(key))
    assert (again.status_code, again.json(), again.headers[REPLAYED]) == (201, first.json(), "true")


def test_a_body_that_differs_only_in_what_the_gateway_ignores_is_still_another_request(api, http):
    # "X" and " X " name the same conference, but the client sent different bodies.
    conference, user = api.create_conference(), api.create_user()
    key = new_key()
    assert http.post("/book", json={"name": conference["name"], "user_id": user}, headers=keyed(key)).status_code == 201
    padded = http.post("/book", json={"name": f" {conference['name']} ", "user_id": user}, headers=keyed(key))
    assert_error(padded, 422, "IDEMPOTENCY_KEY_REUSED")


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "tab\tkey", "schlüssel"])
def test_a_bad_key_is_a_400_and_nothing_happens(api, http, key):
    conference, user = api.create_conference(), api.create_user()
    response = http.post(
        "/book", json={"name": conference["name"], "user_id": user}, headers={"Idempotency-Key": key.encode()}
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert bookings_of(http, user) == []


def test_the_longest_key_is_fine(api, http):
    conference, user = api.create_conference(), api.create_user()
    key = "~" * 255
    body = {"name": conference["name"], "user_id": user}
    assert http.post("/book", json=body, headers=keyed(key)).status_code == 201
    assert http.post("/book", json=body, headers=keyed(key)).headers[REPLAYED] == "true"


def test_a_duplicate_while_the_first_is_still_running_is_a_409(stack, api, http):
    conference, user = api.create_conference(slots=1), api.create_user()
    api.conference(conference["name"])  # the booking service has its copy: the booking waits only for the user
    key = new_key()
    body = {"name": conference["name"], "user_id": user}
    engine = sqlalchemy.create_engine(stack.infrastructure.service_database_url("booking"))
    try:
        with ThreadPoolExecutor(max_workers=2) as pool, engine.connect() as holder:
            # Holding the user's row keeps the first request inside its transaction, key locked.
            with holder.begin():
                holder.execute(text("SELECT 1 FROM booking.users WHERE user_id = :u FOR UPDATE"), {"u": user})
                racing = [pool.submit(http.post, "/book", json=body, headers=keyed(key)) for _ in range(2)]
                busy = eventually(lambda: [each for each in racing if each.done()], timeout=4)[0]
                assert_error(busy.result(), 409, "REQUEST_IN_PROGRESS")
            first = next(each for each in racing if each is not busy).result()
    finally:
        engine.dispose()
    assert first.status_code == 201, first.text
    retried = http.post("/book", json=body, headers=keyed(key))
    assert (retried.status_code, retried.json(), retried.headers[REPLAYED]) == (201, first.json(), "true")
    assert len(bookings_of(http, user)) == 1


def test_grpc_callers_send_the_key_as_metadata(stack, api):
    conference, user = api.create_conference(slots=1), api.create_user()
    key = new_key()
    request = booking_pb2.BookRequest(conference_name=conference["name"], user_id=user)
    with grpc_channel(stack, "booking") as channel:
        book = booking_pb2_grpc.BookingServiceStub(channel).Book
        first, first_call = book.with_call(request, metadata=(("idempotency-key", key),), timeout=10)
        again, again_call = book.with_call(request, metadata=(("idempotency-key", key),), timeout=10)
        with pytest.raises(grpc.RpcError) as reused:
            book(
                booking_pb2.BookRequest(conference_name=conference["name"], user_id=api.create_user()),
                metadata=(("idempotency-key", key),),
                timeout=10,
            )
        with pytest.raises(grpc.RpcError) as bad:
            book(request, metadata=(("idempotency-key", "no spaces allowed"),), timeout=10)
    assert again == first
    assert ("idempotent-replayed", "true") not in tuple(first_call.trailing_metadata())
    assert ("idempotent-replayed", "true") in tuple(again_call.trailing_metadata())
    assert (reused.value.code(), error_reason(reused.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def _conference_body(name: str) -> dict:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)
    return {
        "name": name,
        "location": "Berlin",
        "start": wire_time(start),
        "end": wire_time(start + timedelta(hours=3)),
        "topics": ["Python"],
    }
