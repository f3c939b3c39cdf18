"""Traffic for a while on a stack with lifetimes of seconds: every table that grows with traffic stays
flat once its lifetime applies, and the metrics show each table's rows and its oldest row's age.

`make test` runs it for RETENTION_SOAK_SECONDS (50 by default); `make soak-retention` for ten minutes.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from confbook_common.db import create_engine
from scripts.sandbox import Infrastructure, Stack
from scripts.webhook_receiver import WebhookReceiver
from tests.conftest import E2E_WINDOW_SECONDS
from tests.e2e.conftest import ADMIN, ORGANIZER, bearer, subject_of, wire_time

SOAK_SECONDS = float(os.environ.get("RETENTION_SOAK_SECONDS", "50"))
# Until the first conference of the run is over and its lifetime passed (start 6 s, 1 s long, 3 s after).
WARM_UP_SECONDS = 14
LIFETIME_SECONDS = 3
SETTINGS = {
    "RETENTION_BOOKING_EVENTS": str(LIFETIME_SECONDS),
    "RETENTION_WEBHOOK_DELIVERIES": str(LIFETIME_SECONDS),
    "RETENTION_CANCELED_BOOKINGS": str(LIFETIME_SECONDS),
    "RETENTION_OUTBOX": str(LIFETIME_SECONDS),
    "RETENTION_INBOX": str(LIFETIME_SECONDS),
    "RETENTION_IDEMPOTENCY_KEYS": str(LIFETIME_SECONDS),
    "RETENTION_CLOSED_OFFERS": str(LIFETIME_SECONDS),
    "RETENTION_EVERY_SECONDS": "1",
    "RETENTION_BATCH_SIZE": "50",
    # Events must outlive a stream's life, so that it can resume.
    "WATCH_MAX_SECONDS": "2",
    "GATEWAY_RATE_LIMIT_WRITES": "100000/second",
}
TABLES = [
    ("booking", "booking_events"),
    ("booking", "webhook_deliveries"),
    ("booking", "bookings"),
    ("booking", "outbox"),
    ("booking", "idempotency_keys"),
    ("conference", "outbox"),
    ("conference", "idempotency_keys"),
    ("waitlist", "offers"),
    ("waitlist", "processed_messages"),
    ("waitlist", "outbox"),
]
# What a table's row count may grow to in the second half of the run over the first half's most.
SLACK = 1.5


@pytest.fixture(scope="module")
def admin_db(infrastructure: Infrastructure) -> Iterator[Engine]:
    engine = create_engine(infrastructure.database_url, application_name="test-retention")
    with engine.begin() as connection:
        # A clean slate of receivers: a subscription left by another test (an admin's sees every
        # event) would hold events for its own, far longer, retries.
        connection.execute(text("DELETE FROM booking.webhooks"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def short_lived(infrastructure: Infrastructure, admin_db: Engine, stack: Stack, tmp_path_factory) -> Iterator[Stack]:
    """A stack with lifetimes of seconds. The suite's own booking service is stopped meanwhile: its webhook
    sender would take this test's receiver too, and what it has left of earlier tests (killed workers,
    hundreds of streams) is no part of what is measured here."""
    log_dir: Path = tmp_path_factory.mktemp("retention-logs")
    short = Stack(infrastructure, window_seconds=E2E_WINDOW_SECONDS, log_dir=log_dir, settings=SETTINGS)
    stack.kill("booking", signal.SIGTERM)
    try:
        short.start()
        short.wait_ready()
        yield short
    finally:
        short.stop()
        stack.start("booking")
        stack.wait_ready()


# Rows a lifetime does not apply to, by design: deliveries still owed to the receiver, and the events they
# carry, are kept until sent or given up on (README, Retention). How fast the sender works through them is
# no part of what is measured here.
KEPT_BY_RULE = {
    ("booking", "webhook_deliveries"): "gave_up_at IS NULL",
    ("booking", "booking_events"): "sequence IN (SELECT event_sequence FROM booking.webhook_deliveries"
    " WHERE gave_up_at IS NULL)",
    ("booking", "bookings"): "booking_id IN (SELECT e.booking_id FROM booking.booking_events e"
    " JOIN booking.webhook_deliveries d ON d.event_sequence = e.sequence WHERE d.gave_up_at IS NULL)",
}


def counts(engine: Engine) -> dict[tuple[str, str], int]:
    """Each table's rows that its lifetime applies to."""
    with engine.connect() as connection:
        return {
            (schema, table): connection.execute(
                text(f"SELECT count(*) FROM {schema}.{table} WHERE NOT ({KEPT_BY_RULE.get((schema, table), 'false')})")
            ).scalar()
            or 0
            for schema, table in TABLES
        }


def written_so_far(engine: Engine) -> int:
    """Booking events ever recorded: what the traffic wrote, purged or not."""
    with engine.connect() as connection:
        return connection.execute(text("SELECT coalesce(max(sequence), 0) FROM booking.booking_events")).scalar() or 0


def one_round(client: httpx.Client, stack: Stack, admin: dict[str, str]) -> None:
    """A conference that starts in seconds and lasts one: two seats, four people, keyed requests,
    both seated ones canceling (so the other two are offered their seats); its start closes the
    line, and soon it is over with nothing but canceled bookings left to keep."""
    people = []
    for _ in range(4):
        user = f"r{uuid.uuid4().hex[:12]}"
        me = bearer(stack.token(subject_of(user)))
        assert client.post("/user", json={"user_id": user, "topics": []}, headers=me).status_code == 201
        people.append((user, me))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    name = f"Brief {uuid.uuid4().hex[:10]}"
    created = client.post(
        "/conference",
        json={
            "name": name,
            "location": "Here",
            "start": wire_time(start),
            "end": wire_time(start + timedelta(seconds=1)),
            "slots": 2,
            "topics": ["Retention"],
        },
        headers={**bearer(stack.token(ORGANIZER, "organizer")), "Idempotency-Key": f"c-{uuid.uuid4()}"},
    )
    assert created.status_code == 201, created.text
    bookings = []
    for user, me in people:
        booked = client.post(
            "/book", json={"name": name, "user_id": user}, headers={**me, "Idempotency-Key": f"b-{uuid.uuid4()}"}
        )
        if booked.status_code == 409:  # a machine so busy that the conference started meanwhile
            return
        assert booked.status_code == 201, booked.text
        bookings.append(booked.json()["booking_id"])
    for seated in bookings[:2]:
        assert client.post("/cancel", json={"booking_id": seated}, headers=admin).status_code in (200, 409)


@pytest.mark.timeout(SOAK_SECONDS + 240)  # the traffic, and the stack's start and stop
def test_every_growing_table_stays_flat_once_its_lifetime_applies(short_lived: Stack, admin_db: Engine):
    admin = bearer(short_lived.token(ADMIN, "admin"))
    with httpx.Client(base_url=short_lived.base_url, timeout=10, headers=admin) as client:
        # Every event makes a delivery, deleted once delivered (the ones given up on: tests/integration).
        receiver = WebhookReceiver().start()
        hook = client.post("/webhooks", json={"url": receiver.url})
        assert hook.status_code == 201, hook.text
        # Each round: seconds since the start, the rows of each table, the events written so far.
        samples: list[tuple[float, dict[tuple[str, str], int], int]] = []
        before = written_so_far(admin_db)
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < SOAK_SECONDS:
            one_round(client, short_lived, admin)
            samples.append((elapsed, counts(admin_db), written_so_far(admin_db) - before))
            time.sleep(0.5)
        metrics = httpx.get(short_lived.metrics_url("booking"), timeout=10).text
        client.delete(f"/webhooks/{hook.json()['webhook_id']}")
        receiver.stop()
    assert receiver.received, "the receiver got nothing"

    # Lifetimes of seconds apply from the first rounds on: compare the second half of the rounds with
    # the first half after its warm-up, while the second half wrote as much again as the first.
    half = len(samples) // 2
    warm = [counts for at, counts, _ in samples[:half] if at >= WARM_UP_SECONDS]
    late = [counts for _, counts, _ in samples[half:]]
    assert len(warm) >= 3 and late, [(at, written) for at, _, written in samples]
    written_at_half, written = samples[half - 1][2], samples[-1][2]
    assert written > written_at_half * 1.8, (written_at_half, written)
    for table in TABLES:  # shown with -s: the figures a longer run reports
        print(
            f"{'.'.join(table):32} rows: first half at most {max(each[table] for each in warm):6},"
            f" second half at most {max(each[table] for each in late):6}, at the end {samples[-1][1][table]:6}"
        )
    print(f"booking events written: {written_at_half} at half time, {written} at the end; {len(samples)} rounds")
    grown = {
        table: (max(each[table] for each in warm), max(each[table] for each in late))
        for table in TABLES
        if max(each[table] for each in late) > SLACK * max(each[table] for each in warm) + 20
    }
    assert grown == {}, grown

    for schema, name in (("booking", "booking_events"), ("booking", "outbox"), ("booking", "idempotency_keys")):
        labels = f'schema="{schema}",table="{name}"'
        assert re.search(rf"confbook_table_rows\{{{labels}\}} \d", metrics), metrics
        assert re.search(rf"confbook_table_oldest_age_seconds\{{{labels}\}} \d", metrics), metrics
        assert f"confbook_table_lifetime_seconds{{{labels}}} {float(LIFETIME_SECONDS)}" in metrics
    # Rows that expire by age alone are never much older than their lifetime and a purge round.
    age = re.search(r'confbook_table_oldest_age_seconds\{schema="booking",table="idempotency_keys"\} (\S+)', metrics)
    assert age is not None and float(age.group(1)) < LIFETIME_SECONDS + 5, age
    assert re.search(r'confbook_retention_deleted_total\{schema="booking",table="booking_events"\} [1-9]', metrics)
