"""Nothing acknowledged is lost when a service is killed or the broker restarts."""

from __future__ import annotations

import os
import signal
from pathlib import Path

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


def worker_pids(stack, name):
    """The worker processes of a service's first replica: its supervisor's children."""
    supervisor = stack.processes[name].pid
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def test_a_worker_process_that_dies_is_replaced_and_the_service_keeps_answering(api, stack):
    before = worker_pids(stack, "booking")
    if len(before) < 2:
        pytest.skip("the booking service runs a single process (WORKERS=1)")
    os.kill(before[0], signal.SIGKILL)

    # Meanwhile the other workers answer; the supervisor starts a new one in place of the dead.
    conference = api.create_conference(slots=1)
    assert api.status(api.book(conference, api.create_user())["booking_id"]) == "CONFIRMED"
    eventually(
        lambda: len(worker_pids(stack, "booking")) == len(before) and before[0] not in worker_pids(stack, "booking")
    )
    stack.wait_ready()
