"""The restore drill: book, back up, book and cancel more, restore to a moment between, and see through
the API that exactly that moment came back and that the waitlist carries on from it by itself.

A stack of its own on a PostgreSQL and RabbitMQ of its own (its state dir under .run/, its ports
TEST_RESTORE_DATABASE_URL and TEST_RESTORE_AMQP_URL, by default one above the test URLs' ports),
so that restoring it never touches the database the other tests share.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from confbook_common.settings import Env
from scripts import backup, infra, sandbox
from scripts.migrate import empty_queues
from tests.conftest import DEFAULT_TEST_DATABASE_URL, ROOT, amqp_url_for_tests
from tests.e2e.conftest import Api, admin_token, bearer
from tests.waiting import eventually

# Longer than `make test` should wait: its own target, `make test-restore`.
pytestmark = pytest.mark.restore

STATE_DIR = ROOT / ".run" / "restore-drill"
# Short, so that an offer made just before the target time expires while the stack is being restored.
WINDOW_SECONDS = 5
SETTINGS = {"GATEWAY_RATE_LIMIT_WRITES": "100000/second", "GATEWAY_RATE_LIMIT_FAILED_AUTHENTICATIONS": "100000/second"}


def _beside(url: str, variable: str) -> str:
    """`variable`, or `url` with its port one higher."""
    if given := os.environ.get(variable):
        return given
    parts = urlsplit(url)
    host = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{host}:{(parts.port or 0) + 1}"))


DATABASE_URL = _beside(os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL, "TEST_RESTORE_DATABASE_URL")
AMQP_URL = _beside(amqp_url_for_tests(), "TEST_RESTORE_AMQP_URL")


@pytest.fixture(scope="module")
def drill() -> Iterator[tuple[sandbox.Stack, backup.BackupSettings]]:
    infra.down(STATE_DIR)  # whatever an interrupted run left behind
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    (STATE_DIR / "logs").mkdir(parents=True)
    settings = backup.BackupSettings.from_env(Env({}))
    superuser = make_url(DATABASE_URL).username or ""
    infrastructure = sandbox.prepare(
        STATE_DIR,
        DATABASE_URL,
        AMQP_URL,
        window_seconds=WINDOW_SECONDS,
        postgres_settings=backup.archiving(settings, superuser),
    )
    stack = sandbox.Stack(infrastructure, window_seconds=WINDOW_SECONDS, log_dir=STATE_DIR / "logs", settings=SETTINGS)
    try:
        stack.start()
        stack.wait_ready()
        yield stack, settings
    finally:
        stack.stop()
        sandbox.release(infrastructure)


def test_a_restore_brings_back_exactly_the_moment_asked_for_and_the_waitlist_carries_on(drill):
    stack, settings = drill
    client = httpx.Client(base_url=stack.base_url, headers=bearer(admin_token(stack)), timeout=10)
    api = Api(client, stack)

    # Before the backup: a full conference with two in line, and a roomy one.
    full = api.create_conference(slots=1)
    holder, first, second = (api.book(full, api.create_user())["booking_id"] for _ in range(3))
    roomy = api.create_conference(slots=100)
    backup.Repository.of(STATE_DIR, settings).backup("full")

    # After the backup, before the target time (so from the WAL): a conference that starts in the
    # gap, with one in line; bookings acknowledged; a seat freed, offered to the head of the line.
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    starting = api.create_conference(slots=1, start=starts)
    seated, left_waiting = (api.book(starting, api.create_user())["booking_id"] for _ in range(2))
    acknowledged = [api.book(roomy, api.create_user())["booking_id"] for _ in range(5)]
    assert api.cancel(holder).status_code == 200
    eventually(lambda: api.status(first) == "CONFIRMATION_PENDING")
    time.sleep(0.5)  # the waitlist service records the offer
    target = datetime.now(UTC)
    time.sleep(0.2)

    # After the target time: more bookings, the offer confirmed, one more in line.
    later = [api.book(roomy, api.create_user())["booking_id"] for _ in range(5)]
    assert api.confirm(first).status_code == 200
    latecomer = api.book(full, api.create_user())["booking_id"]
    assert datetime.now(UTC) < target + timedelta(seconds=WINDOW_SECONDS)  # the offer was confirmed in time
    while datetime.now(UTC) < starts + timedelta(seconds=1):  # the conference starts in the gap
        time.sleep(0.2)
    assert api.status(left_waiting) == "CANCELED"

    backup.restore(
        STATE_DIR,
        target,
        settings,
        stop_services=stack.stop,
        empty_broker=lambda: empty_queues(AMQP_URL, WINDOW_SECONDS),
        start_services=lambda: (stack.start(), stack.wait_ready()),
    )

    # Exactly what was acknowledged before the target time, and nothing after it.
    assert [api.status(booking) for booking in acknowledged] == ["CONFIRMED"] * 5
    for booking in [*later, latecomer]:
        assert client.get(f"/booking/{booking}").status_code == 404
    assert api.status(holder) == "CANCELED"
    assert api.status(seated) == "CONFIRMED"

    # The offer expired during the gap: back to the end of the line, and the seat moves to the next.
    eventually(lambda: api.status(second) == "CONFIRMATION_PENDING", timeout=15)
    returned = api.booking(first)
    assert (returned["status"], returned["waitlist_position"]) == ("WAITLISTED", 1)
    # The conference that started in the gap has closed its line.
    eventually(lambda: api.status(left_waiting) == "CANCELED", timeout=15)

    # And it carries on: the new offer is confirmed, a newcomer joins the line behind.
    assert api.confirm(second).status_code == 200
    assert api.status(second) == "CONFIRMED"
    newcomer = api.book(full, api.create_user())
    assert (newcomer["status"], newcomer["waitlist_position"]) == ("WAITLISTED", 2)
