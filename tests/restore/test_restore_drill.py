"""The restore drill: book, back up, book and cancel more, restore to a moment between, and see through
the API that exactly that moment came back and that the waitlist carries on from it by itself.

A stack of its own on a PostgreSQL and RabbitMQ of its own (its state dir under .run/, its ports
TEST_RESTORE_DATABASE_URL and TEST_RESTORE_AMQP_URL, by default one above the test URLs' ports),
so that restoring it never touches the database the other tests share.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
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
WINDOW_SECONDS = 8
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
    admin_user = make_url(DATABASE_URL).username or ""
    infrastructure = sandbox.prepare(
        STATE_DIR,
        DATABASE_URL,
        AMQP_URL,
        window_seconds=WINDOW_SECONDS,
        postgres_settings=backup.archiving(settings, admin_user),
    )
    stack = sandbox.Stack(infrastructure, window_seconds=WINDOW_SECONDS, log_dir=STATE_DIR / "logs", settings=SETTINGS)
    try:
        stack.start()
        stack.wait_ready()
        yield stack, settings
    finally:
        stack.stop()
        sandbox.release(infrastructure)


@dataclass(frozen=True)
class Booked:
    booking_id: int
    sent: datetime  # just before the request left
    acknowledged: datetime  # just after its answer came


def book_until(api: Api, conference: dict[str, Any], stop: threading.Event) -> list[Booked]:
    """Bookings one after another (each by a new user) until `stop`, each with when it was sent and answered."""
    made = []
    while not stop.is_set():
        user = api.create_user()
        sent = datetime.now(UTC)
        booking_id = api.book(conference, user)["booking_id"]
        made.append(Booked(booking_id, sent, datetime.now(UTC)))
    return made


def test_a_restore_brings_back_exactly_the_moment_asked_for_and_the_waitlist_carries_on(drill):
    stack, settings = drill
    client = httpx.Client(base_url=stack.base_url, headers=bearer(admin_token(stack)), timeout=10)
    api = Api(client, stack)

    # Before the backup: a full conference with two in line, and a roomy one.
    full = api.create_conference(slots=1)
    holder, first, second = (api.book(full, api.create_user())["booking_id"] for _ in range(3))
    roomy = api.create_conference(slots=1000)
    backup.Repository.of(STATE_DIR, settings).backup("full")

    # After the backup, before the target time (so from the WAL): a conference that starts after
    # the target time, with one in line; a seat freed, offered to the head of the line; and
    # bookings made one after another from before the target time to after it.
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    starting = api.create_conference(slots=1, start=starts)
    seated, left_waiting = (api.book(starting, api.create_user())["booking_id"] for _ in range(2))
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=stack.base_url, timeout=10) as other:
        stream = pool.submit(book_until, Api(other, stack), roomy, stop)
        assert api.cancel(holder).status_code == 200
        offered = eventually(lambda: (booking := api.booking(first))["status"] == "CONFIRMATION_PENDING" and booking)
        offer_deadline = datetime.fromisoformat(offered["confirmation_deadline"])
        time.sleep(1.0)  # the waitlist service records the offer; more bookings are acknowledged
        target = datetime.now(UTC)
        # After the target time: the offer confirmed, one more in line, more bookings.
        assert api.confirm(first).status_code == 200
        latecomer = api.book(full, api.create_user())["booking_id"]
        time.sleep(1.0)
        stop.set()
        streamed = stream.result()
    assert target < starts, "the conference was to start after the target time"
    before = [booked.booking_id for booked in streamed if booked.acknowledged < target]
    after = [booked.booking_id for booked in streamed if booked.sent > target]
    assert before and after
    # The offer's deadline and the start pass before the restore is done: wait for both.
    while datetime.now(UTC) < max(starts, offer_deadline) + timedelta(seconds=1):
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

    # Exactly what was acknowledged before the target time, and nothing sent after it.
    assert [api.status(booking) for booking in before] == ["CONFIRMED"] * len(before)
    for booking in [*after, latecomer]:
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
