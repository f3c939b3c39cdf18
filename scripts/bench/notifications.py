"""Measurement 7: being told. A cancel to the next person's booking.offered at a webhook receiver and on an
open stream, while a couple of hundred other streams are open; and whether those streams slow bookings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator

import httpx

from scripts.bench.api import Connections, book_in_order, retire
from scripts.bench.options import Options
from scripts.bench.report import Report, ms, progress
from scripts.webhook_receiver import WebhookReceiver

# A person is told "at once": the bar for both ways of being told.
TOLD_WITHIN_SECONDS = 1.0
BOOKINGS_TIMED = 30


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in event:
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


async def hold_stream(
    http: httpx.AsyncClient, booking_id: int, credentials: dict[str, str], opened: asyncio.Event
) -> None:
    """One background watcher, as a client would keep it: reconnect from its last event whenever a stream ends."""
    last_id: str | None = None
    while True:
        headers = {**credentials, "Last-Event-ID": last_id} if last_id else credentials
        with contextlib.suppress(httpx.HTTPError):
            async with http.stream("GET", f"/booking/{booking_id}/events", headers=headers) as response:
                async for event in sse_events(response):
                    opened.set()
                    last_id = event.get("id", last_id)
        await asyncio.sleep(0.1)


async def booking_seconds(connections: Connections, conference: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        user = await connections.gateway.create_user()
        started = time.monotonic()
        await connections.gateway.book(conference, user)
        samples.append(time.monotonic() - started)
    return samples


async def told_delays(
    connections: Connections, http: httpx.AsyncClient, receiver: WebhookReceiver
) -> tuple[float, float]:
    """One trial: seconds from sending the cancel to the head's booking.offered on its stream and at the receiver."""
    gateway = connections.gateway
    conference = await gateway.create_conference(slots=1)
    holder, head, second = await book_in_order(gateway, conference, 3)
    async with http.stream("GET", f"/booking/{head}/events", headers=gateway.as_holder(head)) as response:
        events = sse_events(response)
        await anext(events)  # the booking now
        received_before = len(receiver.received)
        sent = time.monotonic()
        await gateway.cancel(holder)
        async for event in events:
            if event["event"] == "booking.offered":
                on_stream = time.monotonic() - sent
                break
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for arrival in receiver.received[received_before:]:
            body = json.loads(arrival.body)
            if body["type"] == "booking.offered" and body["data"]["booking"]["booking_id"] == head:
                await retire(gateway, [head, second])
                return on_stream, arrival.at - sent
        await asyncio.sleep(0.01)
    raise AssertionError(f"no booking.offered for booking {head} at the webhook receiver within 10 s")


async def bench_notifications(connections: Connections, base_url: str, options: Options, report: Report) -> None:
    streams = options.open_streams
    progress(f"{options.promotion_trials} cancel-to-told trials with {streams} other streams open")
    receiver = WebhookReceiver().start()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        gateway = connections.gateway
        # An admin's, so that it is sent every booking's offer (a webhook gets only what its creator may read).
        subscription = {"url": receiver.url, "events": ["booking.offered"]}
        subscribed = await http.post("/webhooks", json=subscription, headers=gateway.as_admin())
        webhook_id = subscribed.json()["webhook_id"]
        background = await gateway.create_conference(slots=1)
        quiet = await booking_seconds(connections, background, BOOKINGS_TIMED)
        watched = await book_in_order(gateway, background, min(streams, 50))
        openings = [asyncio.Event() for _ in range(streams)]
        holders = [
            asyncio.create_task(hold_stream(http, booking_id, gateway.as_holder(booking_id), opened))
            for booking_id, opened in zip(
                (watched[index % len(watched)] for index in range(streams)), openings, strict=True
            )
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(opened.wait() for opened in openings)), 60)
            busy = await booking_seconds(connections, background, BOOKINGS_TIMED)
            trials = [await told_delays(connections, http, receiver) for _ in range(options.promotion_trials)]
        finally:
            for task in holders:
                task.cancel()
            await asyncio.gather(*holders, return_exceptions=True)
            await http.delete(f"/webhooks/{webhook_id}", headers=gateway.as_admin())
            receiver.stop()
    on_stream = [stream for stream, _ in trials]
    at_webhook = [webhook for _, webhook in trials]
    report.add(
        "## 7. Being told",
        "",
        f"A full one-seat conference with a line of two; the head's `GET /booking/{{id}}/events` is open, a webhook "
        f"for `booking.offered` points at a local receiver, and {streams} other streams stay open on other bookings "
        "throughout. Delay: from sending the holder's cancel to the head's `booking.offered` arriving. One trial at "
        "a time.",
    )
    report.timing("cancel → booking.offered on the open stream", on_stream)
    report.timing("cancel → booking.offered at the webhook receiver", at_webhook)
    report.add(
        "",
        f"Booking (`POST /book`, one at a time, {BOOKINGS_TIMED} each): median {ms(statistics.median(quiet))} ms "
        f"with no stream open, {ms(statistics.median(busy))} ms with {streams} open.",
        "",
    )
    report.check(
        max(on_stream) < TOLD_WITHIN_SECONDS and max(at_webhook) < TOLD_WITHIN_SECONDS,
        f"every offer reached the stream and the webhook within {TOLD_WITHIN_SECONDS:.0f} s",
    )
    report.check(
        statistics.median(busy) < 2 * statistics.median(quiet) + 0.005,
        f"{streams} open streams did not slow bookings (median within twice the quiet one, plus 5 ms)",
    )
    report.add("")
