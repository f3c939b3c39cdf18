"""Every endpoint of the contract through the gateway: shapes, rules and status codes."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import assert_error, wire_time

FUTURE = datetime.now(UTC).replace(microsecond=0) + timedelta(days=60)


def conference_body(**changes):
    body = {
        "name": f"Contract {time.time_ns()}",
        "location": "San Francisco",
        "start": wire_time(FUTURE),
        "end": wire_time(FUTURE + timedelta(hours=8)),
        "slots": 100,
        "topics": ["AI", "Machine Learning", "Web Development"],
    }
    body.update(changes)
    return body


# --- POST /conference ------------------------------------------------------------


def test_creating_a_conference_returns_it_with_its_free_seats(http):
    body = conference_body(start="2031-06-15 09:00:00", end="2031-06-15 17:00:00")
    response = http.post("/conference", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == body["name"]
    assert created["location"] == "San Francisco"
    assert created["start"] == "2031-06-15T09:00:00Z"
    assert created["end"] == "2031-06-15T17:00:00Z"
    assert created["slots"] == 100
    assert created["available_slots"] == 100
    assert created["waitlist_length"] == 0
    assert created["topics"] == ["AI", "Machine Learning", "Web Development"]


@pytest.mark.parametrize(
    ("start", "end", "expected_start"),
    [
        ("2031-07-01T09:00:00", "2031-07-01T10:00:00", "2031-07-01T09:00:00Z"),
        ("2031-07-01T09:00:00Z", "2031-07-01T10:00:00Z", "2031-07-01T09:00:00Z"),
        ("2031-07-01T11:00:00+02:00", "2031-07-01T12:00:00+02:00", "2031-07-01T09:00:00Z"),
    ],
)
def test_times_may_be_iso_8601_and_come_back_in_utc(http, start, end, expected_start):
    response = http.post("/conference", json=conference_body(start=start, end=end))
    assert response.status_code == 201, response.text
    assert response.json()["start"] == expected_start


def test_a_conference_of_exactly_twelve_hours_is_fine(http):
    body = conference_body(end=wire_time(FUTURE + timedelta(hours=12)))
    assert http.post("/conference", json=body).status_code == 201


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "Tech-Conf 2024"},
        {"name": "Tech Conf!"},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"location": "San Francisco, CA"},
        {"location": ""},
        {"start": wire_time(datetime.now(UTC) - timedelta(hours=1))},
        {"end": wire_time(FUTURE)},
        {"end": wire_time(FUTURE - timedelta(hours=1))},
        {"end": wire_time(FUTURE + timedelta(hours=12, seconds=1))},
        {"start": "next tuesday"},
        {"start": "2031-06-15"},
        {"start": 1_900_000_000},
        {"topics": [f"Topic {i}" for i in range(11)]},
        {"topics": ["C++"]},
        {"topics": [""]},
        {"topics": "AI"},
        {"slots": 0},
        {"slots": -5},
        {"slots": "10"},
        {"slots": 10.5},
        {"slots": True},
        {"slots": 2**40},
        {"slots": None},
    ],
)
def test_a_conference_breaking_a_rule_is_refused_with_400(http, changes):
    assert_error(http.post("/conference", json=conference_body(**changes)), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("missing", ["name", "location", "start", "end", "slots", "topics"])
def test_every_conference_field_is_required(http, missing):
    body = conference_body()
    del body[missing]
    error = assert_error(http.post("/conference", json=body), 400, "VALIDATION_ERROR")
    assert missing in error["message"]


def test_ten_topics_and_a_hundred_character_name_are_allowed(http):
    body = conference_body(name="N" * 90 + str(time.time_ns())[-10:], topics=[f"Topic {i}" for i in range(10)])
    assert len(body["name"]) == 100
    assert http.post("/conference", json=body).status_code == 201


def test_conference_names_are_unique_ignoring_case(http):
    body = conference_body()
    assert http.post("/conference", json=body).status_code == 201
    assert_error(http.post("/conference", json={**body, "name": body["name"].upper()}), 409, "CONFERENCE_EXISTS")


def test_malformed_json_is_a_400(http):
    response = http.post("/conference", content=b'{"name": "x",', headers={"content-type": "application/json"})
    assert_error(response, 400, "INVALID_JSON")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b""])
def test_a_body_that_is_not_an_object_is_a_400(http, body):
    response = http.post("/conference", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400)


def test_json_is_read_even_without_a_content_type(http):
    response = http.post("/conference", content=json.dumps(conference_body()).encode())
    assert response.status_code == 201, response.text


def test_a_body_over_the_limit_is_a_413(http):
    body = conference_body(topics=["x" * 1000] * 100)
    assert_error(http.post("/conference", json=body), 413, "BODY_TOO_LARGE")


# --- GET /conference/{name} --------------------------------------------------------


def test_a_conference_is_read_back_by_name_ignoring_case(api):
    created = api.create_conference(slots=3)
    found = api.conference(created["name"].lower())
    assert found == created


def test_an_unknown_conference_is_a_404(http):
    assert_error(http.get("/conference/No Such Conference"), 404, "CONFERENCE_NOT_FOUND")


def test_available_seats_and_the_waitlist_length_follow_bookings(api):
    conference = api.create_conference(slots=2)
    for _ in range(3):
        api.book(conference, api.create_user())
    found = api.conference(conference["name"])
    assert (found["available_slots"], found["waitlist_length"]) == (0, 1)


def test_conferences_are_listed_by_start_a_page_at_a_time(api, http):
    api.create_conference()
    api.create_conference()
    first = http.get("/conferences", params={"page_size": 1}).json()
    assert len(first["conferences"]) == 1 and first["next_page_token"]
    second = http.get("/conferences", params={"page_size": 1, "page_token": first["next_page_token"]}).json()
    assert second["conferences"][0]["start"] >= first["conferences"][0]["start"]
    assert second["conferences"][0]["name"] != first["conferences"][0]["name"]
    assert_error(http.get("/conferences", params={"page_token": "garbage!"}), 400)


# --- POST /user, GET /user ---------------------------------------------------------


def test_a_user_is_created_and_read_back(http, api):
    user_id = f"john{time.time_ns()}"
    response = http.post(
        "/user", json={"user_id": user_id, "topics": ["AI", "Data Science"]}, headers=api.as_user(user_id)
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"user_id": user_id, "topics": ["AI", "Data Science"]}
    assert http.get(f"/user/{user_id}").json() == {"user_id": user_id, "topics": ["AI", "Data Science"]}


def test_user_ids_are_unique(http, api):
    user_id = f"jane{time.time_ns()}"
    body = {"user_id": user_id, "topics": []}
    assert http.post("/user", json=body, headers=api.as_user(user_id)).status_code == 201
    assert_error(http.post("/user", json=body, headers=api.as_user(f"other{user_id}")), 409, "USER_EXISTS")


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "john doe", "topics": []},
        {"user_id": "john_doe", "topics": []},
        {"user_id": "john@example", "topics": []},
        {"user_id": "", "topics": []},
        {"user_id": "a" * 65, "topics": []},
        {"user_id": 123, "topics": []},
        {"user_id": "valid1", "topics": [f"Topic {i}" for i in range(51)]},
        {"user_id": "valid2", "topics": ["Data-Science"]},
        {"user_id": "valid3", "topics": [7]},
        {"user_id": "valid4"},
        {"topics": ["AI"]},
    ],
)
def test_a_user_breaking_a_rule_is_refused_with_400(http, body):
    assert_error(http.post("/user", json=body), 400, "VALIDATION_ERROR")


def test_fifty_topics_and_sixty_four_characters_are_allowed(http, api):
    user_id = ("u" * 44 + str(time.time_ns()))[:64]
    body = {"user_id": user_id, "topics": [f"Topic {i}" for i in range(50)]}
    assert http.post("/user", json=body, headers=api.as_user(user_id)).status_code == 201


def test_an_unknown_user_is_a_404(http):
    assert_error(http.get("/user/nobody0"), 404, "USER_NOT_FOUND")
    assert_error(http.get("/user/nobody0/bookings"), 404, "USER_NOT_FOUND")


# --- POST /book, GET /booking --------------------------------------------------------


def test_a_free_seat_is_confirmed_and_a_full_conference_waitlists(api, http):
    conference = api.create_conference(slots=1)
    first = api.book(conference, api.create_user())
    assert set(first) == {"booking_id", "status", "message", "waitlist_position"}
    assert first["status"] == "CONFIRMED" and first["waitlist_position"] is None
    second = api.book(conference, api.create_user())
    third = api.book(conference, api.create_user())
    assert (second["status"], second["waitlist_position"]) == ("WAITLISTED", 1)
    assert (third["status"], third["waitlist_position"]) == ("WAITLISTED", 2)
    assert isinstance(first["booking_id"], int) and first["message"]


def test_a_booking_reads_back_with_the_contract_fields(api):
    conference = api.create_conference(slots=1)
    user = api.create_user()
    booked = api.book(conference, user)
    assert api.booking(booked["booking_id"]) == {
        "booking_id": booked["booking_id"],
        "status": "CONFIRMED",
        "conference_name": conference["name"],
        "user_id": user,
        "can_confirm": False,
        "confirmation_deadline": None,
        "waitlist_position": None,
    }


def test_a_users_bookings_are_listed(api, http):
    user = api.create_user()
    first, second = api.create_conference(), api.create_conference(start=FUTURE + timedelta(days=2))
    ids = [api.book(first, user)["booking_id"], api.book(second, user)["booking_id"]]
    listed = http.get(f"/user/{user}/bookings").json()
    assert listed["user_id"] == user
    assert [b["booking_id"] for b in listed["bookings"]] == ids


def test_booking_needs_a_known_user_and_conference(api, http):
    conference = api.create_conference()
    user = api.create_user()
    assert_error(http.post("/book", json={"name": conference["name"], "user_id": "ghost0"}), 404, "USER_NOT_FOUND")
    assert_error(http.post("/book", json={"name": "Never Announced", "user_id": user}), 404, "CONFERENCE_NOT_FOUND")


@pytest.mark.parametrize(
    "body", [{"name": "x"}, {"user_id": "x"}, {"name": 1, "user_id": "x"}, {"name": "", "user_id": "a"}]
)
def test_a_malformed_booking_request_is_a_400(http, body):
    assert_error(http.post("/book", json=body), 400)


def test_one_active_booking_per_user_and_conference(api, http):
    conference = api.create_conference(slots=1)
    user = api.create_user()
    booked = api.book(conference, user)
    assert_error(http.post("/book", json={"name": conference["name"], "user_id": user}), 409, "ALREADY_BOOKED")
    assert api.cancel(booked["booking_id"]).status_code == 200
    assert api.book(conference, user)["status"] == "CONFIRMED"


def test_a_booking_may_not_overlap_a_confirmed_one_but_back_to_back_is_fine(api, http):
    user = api.create_user()
    morning = api.create_conference(start=FUTURE, hours=4)
    overlapping = api.create_conference(start=FUTURE + timedelta(hours=3))
    afternoon = api.create_conference(start=FUTURE + timedelta(hours=4))
    api.book(morning, user)
    response = http.post("/book", json={"name": overlapping["name"], "user_id": user})
    assert_error(response, 409, "OVERLAPPING_BOOKING")
    assert api.book(afternoon, user)["status"] == "CONFIRMED"


def test_nothing_can_be_booked_once_the_conference_has_started(api, http):
    starts = datetime.now(UTC) + timedelta(seconds=2)
    conference = api.create_conference(start=starts)
    user = api.create_user()
    time.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.1)
    assert_error(http.post("/book", json={"name": conference["name"], "user_id": user}), 409, "CONFERENCE_STARTED")


@pytest.mark.parametrize("path", ["/booking/abc", "/booking/1.5", "/booking/1e3", f"/booking/{2**64}"])
def test_a_booking_id_that_is_not_an_integer_is_a_400(http, path):
    assert_error(http.get(path), 400)


def test_an_unknown_booking_is_a_404(http):
    assert_error(http.get("/booking/987654321"), 404, "BOOKING_NOT_FOUND")
    assert_error(http.post("/confirm", json={"booking_id": 987654321}), 404, "BOOKING_NOT_FOUND")
    assert_error(http.post("/cancel", json={"booking_id": 987654321}), 404, "BOOKING_NOT_FOUND")


# --- POST /confirm, POST /cancel -------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"booking_id": "1"}, {"booking_id": 1.5}, {"booking_id": None}, {"id": 1}])
def test_confirm_and_cancel_need_an_integer_booking_id(http, body):
    assert_error(http.post("/confirm", json=body), 400)
    assert_error(http.post("/cancel", json=body), 400)


def test_only_a_pending_offer_can_be_confirmed(api):
    conference = api.create_conference(slots=1)
    confirmed = api.book(conference, api.create_user())
    waiting = api.book(conference, api.create_user())
    assert_error(api.confirm(confirmed["booking_id"]), 409, "BOOKING_NOT_PENDING")
    assert_error(api.confirm(waiting["booking_id"]), 409, "BOOKING_NOT_PENDING")


def test_canceling_an_active_booking_and_then_again(api):
    conference = api.create_conference(slots=1)
    confirmed = api.book(conference, api.create_user())
    waiting = api.book(conference, api.create_user())
    response = api.cancel(waiting["booking_id"])
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELED"
    assert api.cancel(confirmed["booking_id"]).json()["status"] == "CANCELED"
    assert_error(api.cancel(confirmed["booking_id"]), 409, "BOOKING_ALREADY_CANCELED")
    assert_error(api.confirm(confirmed["booking_id"]), 409, "BOOKING_NOT_PENDING")


def test_nothing_can_be_canceled_once_the_conference_has_started(api):
    starts = datetime.now(UTC) + timedelta(seconds=2)
    conference = api.create_conference(start=starts)
    booked = api.book(conference, api.create_user())
    time.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.1)
    assert_error(api.cancel(booked["booking_id"]), 409, "CONFERENCE_STARTED")
    assert api.status(booked["booking_id"]) == "CONFIRMED"


# --- the rest of the surface ----------------------------------------------------------


def test_health_readiness_and_documentation(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["services"] == {"conference": "SERVING", "booking": "SERVING", "waitlist": "SERVING"}
    schema = http.get("/openapi.json").json()
    assert {"/conference", "/user", "/book", "/booking/{booking_id}", "/confirm", "/cancel"} <= set(schema["paths"])
    assert "400" in schema["paths"]["/book"]["post"]["responses"]
    docs = http.get("/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    # Swagger UI from the gateway itself: the docs work offline, and nothing else is allowed to load.
    assert "/static/swagger-ui/swagger-ui-bundle.js" in docs.text and "://" not in docs.text
    assert "script-src 'self';" in docs.headers["content-security-policy"]
    for asset in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css", "/static/docs.js"):
        assert http.get(asset).status_code == 200, asset


def test_the_web_page_is_served_with_what_it_needs_to_sign_in(anonymous, stack):
    page = anonymous.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="/static/app.js">' in page.text
    assert "<script>" not in page.text  # no inline script: the policy forbids it
    assert f"connect-src 'self' {stack.issuer_url};" in page.headers["content-security-policy"]
    assert anonymous.get("/static/app.js").status_code == 200
    config = anonymous.get("/config.json").json()
    assert config == {"issuer": stack.issuer_url, "client_id": "confbook-dev", "scope": "openid"}


def test_unknown_routes_and_methods_answer_in_the_error_shape(http):
    assert_error(http.get("/nowhere"), 404)
    assert_error(http.delete("/book"), 405)
