"""Nothing acknowledged is lost when a service is killed or the broker restarts."""

from __future__ import annotations

import signal

import pytest

from scripts import infra
from tests.conftest import E2E_WINDOW_SECONDS, STATE_DIR
from tests.waiting import eventually


def full_conference_with_line(api, waiting):
    conference = api.create_conference(slots=1)
    holder = api.book(conference, api.create_user())["booking_id"]
    line = [api.book(conference, api.create_user())["booking_id"] for _ in range(waiting)]
    return holder, line


def test_a_pending_offer_still_expires_and_moves_on_after_the_waitlist_service_is_killed(api, stack):
    holder, [first, second] = full_conference_with_line(api, waiting=2)
    api.cancel(holder)
    eventually(lambda: api.status(first) == "CONFIRMATION_PENDING")

    assert stack.kill("waitlist", signal.SIGKILL) == -signal.SIGKILL
    stack.start("waitlist")
    stack.wait_ready()

    eventually(lambda: api.status(first) == "WAITLISTED", timeout=E2E_WINDOW_SECONDS + 15)
    eventually(lambda: api.status(second) == "CONFIRMATION_PENDING")


def test_a_seat_freed_while_the_waitlist_service_is_down_is_offered_when_it_returns(api, stack):
    holder, [first] = full_conference_with_line(api, waiting=1)
    stack.kill("waitlist", signal.SIGKILL)
    try:
        assert api.cancel(holder).status_code == 200
        assert api.status(first) == "WAITLISTED"
    finally:
        stack.start("waitlist")
    stack.wait_ready()
    eventually(lambda: api.status(first) == "CONFIRMATION_PENDING", timeout=15)


def test_a_promotion_survives_a_broker_restart_between_the_cancel_and_the_offer(api, stack, infrastructure):
    if not infrastructure.broker_is_ours:
        pytest.skip("the broker at TEST_AMQP_URL was not started by the tests, so they may not restart it")
    holder, [first] = full_conference_with_line(api, waiting=1)
    infra.stop_rabbitmq(STATE_DIR)
    try:
        # The cancel commits with its SeatReleased event in the outbox; nothing can be published yet.
        assert api.cancel(holder).status_code == 200
        assert api.status(first) == "WAITLISTED"
    finally:
        infra.start_rabbitmq(STATE_DIR)
    eventually(lambda: api.status(first) == "CONFIRMATION_PENDING", timeout=30)
    stack.wait_ready()


def test_the_booking_service_restarting_loses_no_booking(api, stack):
    conference = api.create_conference(slots=2)
    booked = api.book(conference, api.create_user())["booking_id"]
    stack.kill("booking", signal.SIGTERM)
    stack.start("booking")
    stack.wait_ready()
    assert api.status(booked) == "CONFIRMED"
    assert api.conference(conference["name"])["available_slots"] == 1
