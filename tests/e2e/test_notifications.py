"""Being told when your turn comes: webhooks, the SSE stream and the gRPC stream, end to end."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from confbook_common.rpc.caller_auth import with_token
from scripts.webhook_receiver import WebhookReceiver
from tests.e2e.conftest import E2E_MAX_STREAMS, admin_token, assert_error, bearer, grpc_channel


def full_conference(api, *, waiting):
    conference = api.create_conference(slots=1)
    holder = api.book(conference, api.create_user())["booking_id"]
    line = [api.book(conference, api.create_user())["booking_id"] for _ in range(waiting)]
    return conference, holder, line


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def subscribe(api, url, **filters):
    response = api.http.post("/webhooks", json={"url": url, **filters})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def subscriptions(api):
    made = []

    def make(url, **filters):
        webhook = subscribe(api, url, **filters)
        made.append(webhook["webhook_id"])
        return webhook

    yield make
    for webhook_id in made:
        api.http.delete(f"/webhooks/{webhook_id}")


def sse_events(lines: Iterator[str]) -> Iterator[dict]:
    """Server-Sent Events as dicts of their fields (comments skipped)."""
    event: dict = {}
    for line in lines:
        if line == "":
            if "data" in event:  # not a lone `retry:`
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


async def sse_events_async(lines):
    event: dict = {}
    async for line in lines:
        if line == "":
            if "data" in event:  # not a lone `retry:`
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


# --- webhooks -------------------------------------------------------------------


def test_a_cancel_gets_the_next_persons_offer_to_a_webhook_within_a_second_signed(api, receiver, subscriptions):
    conference, holder, [first, _] = full_conference(api, waiting=2)
    webhook = subscriptions(receiver.url, events=["booking.offered"], conference=conference["name"])
    assert webhook["secret"].startswith("whsec_")
    assert webhook["events"] == ["booking.offered"] and webhook["conference"] == conference["name"]

    assert api.cancel(holder).status_code == 200
    canceled_at = time.monotonic()
    [delivery] = receiver.wait_for(1, timeout=5)
    assert delivery.at - canceled_at < 1.0

    # Any Standard Webhooks library verifies it; a changed body does not verify.
    body = StandardWebhook(webhook["secret"]).verify(delivery.body, delivery.headers)
    with pytest.raises(Exception, match="(?i)signature"):
        StandardWebhook(webhook["secret"]).verify(delivery.body + b" ", delivery.headers)
    assert delivery.headers["webhook-id"] == body["id"]
    assert delivery.headers["content-type"] == "application/json"
    assert body["type"] == "booking.offered"
    assert body["data"]["reason"] == "seat_freed"
    assert body["occurred_at"].endswith("Z")
    assert body["data"]["booking"] == api.booking(first)
    time.sleep(0.3)
    assert len(receiver.received) == 1  # the filters: only the offer, only this conference


def test_a_receiver_that_was_down_gets_the_event_when_it_comes_back(api, receiver, subscriptions):
    conference, holder, [first] = full_conference(api, waiting=1)
    subscriptions(receiver.url, events=["booking.offered"], conference=conference["name"])
    receiver.status = 503
    assert api.cancel(holder).status_code == 200
    [failed] = receiver.wait_for(1, timeout=5)
    receiver.stop()  # and then not even listening
    time.sleep(1.5)
    receiver.status = 200
    receiver.start()
    [delivered] = receiver.wait_for(1, timeout=10, accepted=True)
    # The same event again, with the same id: a receiver can drop a repeat by it.
    assert delivered.headers["webhook-id"] == failed.headers["webhook-id"]
    assert json.loads(delivered.body)["data"]["booking"]["booking_id"] == first


def test_a_slow_or_failing_receiver_delays_neither_bookings_nor_other_receivers(api, subscriptions):
    slow = WebhookReceiver(delay=2.5).start()
    failing = WebhookReceiver(status=500).start()
    fast = WebhookReceiver().start()
    try:
        conference, holder, _ = full_conference(api, waiting=1)
        for receiver in (slow, failing, fast):
            subscriptions(receiver.url, conference=conference["name"])
        # The slow receiver is busy with the first event while the next ones happen.
        started = time.monotonic()
        api.book(conference, api.create_user())
        slow.wait_for(1, timeout=5)
        booking_started = time.monotonic()
        assert api.cancel(holder).status_code == 200
        assert time.monotonic() - booking_started < 0.5
        events = [json.loads(r.body)["type"] for r in fast.wait_for(3, timeout=5)]
        # Several sender processes may each take one: at least once, in no promised order.
        assert sorted(events) == ["booking.canceled", "booking.offered", "booking.waitlisted"]
        assert max(r.at for r in fast.received[:3]) - started < 2.5  # not behind the slow one's answer
        failing.wait_for(2, timeout=5)  # tried, and tried again
    finally:
        for receiver in (slow, failing, fast):
            receiver.stop()


def test_webhooks_are_listed_without_secrets_and_deleted(api, receiver):
    everything = subscribe(api, receiver.url)
    assert everything["events"] == ["booking.confirmed", "booking.waitlisted", "booking.offered", "booking.canceled"]
    assert everything["conference"] is None
    listed = api.http.get("/webhooks").json()["webhooks"]
    [mine] = [webhook for webhook in listed if webhook["webhook_id"] == everything["webhook_id"]]
    assert mine == {key: value for key, value in everything.items() if key != "secret"}
    assert api.http.delete(f"/webhooks/{everything['webhook_id']}").status_code == 204
    assert_error(api.http.delete(f"/webhooks/{everything['webhook_id']}"), 404, "WEBHOOK_NOT_FOUND")
    assert everything["webhook_id"] not in [w["webhook_id"] for w in api.http.get("/webhooks").json()["webhooks"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "example.com/hooks"}, "url"),
        ({"url": "http:///no-host"}, "url"),
        ({"url": "https://example.com/a b"}, "url"),
        ({"url": "https://example.com", "events": ["booking.exploded"]}, "events[0]"),
        ({"url": "https://example.com", "events": ["booking.offered", "booking.offered"]}, "events[1]"),
        ({"url": 5}, "url"),
    ],
)
def test_a_webhook_needs_an_http_url_and_known_events(api, body, field):
    error = assert_error(api.http.post("/webhooks", json=body), 400)
    assert field in error["message"]


def test_a_webhook_for_an_unknown_conference_or_with_a_malformed_id_is_refused(api, receiver):
    assert_error(
        api.http.post("/webhooks", json={"url": receiver.url, "conference": "Nothing Like It"}),
        404,
        "CONFERENCE_NOT_FOUND",
    )
    assert_error(api.http.delete("/webhooks/not-a-uuid"), 400)


# --- the streams --------------------------------------------------------------------


def watch_grpc(stack, booking_id, after=""):
    channel = with_token(grpc.insecure_channel(stack.grpc_target("booking")), admin_token(stack))
    stub = booking_pb2_grpc.BookingServiceStub(channel)
    return channel, stub.WatchBooking(booking_pb2.WatchBookingRequest(booking_id=booking_id, after_event_id=after))


def test_the_sse_and_grpc_streams_show_the_booking_then_the_same_changes_in_order(api, stack):
    _, holder, [first] = full_conference(api, waiting=1)
    channel, updates = watch_grpc(stack, first)
    with api.http.stream("GET", f"/booking/{first}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())
        now = next(events)
        assert now["event"] == "booking"
        assert json.loads(now["data"]) == api.booking(first)
        snapshot = next(updates)
        assert snapshot.booking.booking_id == first
        assert now["id"] == snapshot.latest_event_id  # the booking.waitlisted it reflects

        api.cancel(holder)
        offered = next(events)
        assert offered["event"] == "booking.offered"
        assert json.loads(offered["data"])["data"]["booking"]["status"] == "CONFIRMATION_PENDING"
        assert api.confirm(first).status_code == 200
        confirmed = next(events)
        assert confirmed["event"] == "booking.confirmed"
        body = json.loads(confirmed["data"])
        assert body["id"] == confirmed["id"] and body["data"]["reason"] == "user"

    over_grpc = [next(updates).event, next(updates).event]
    channel.close()
    assert [event.event_id for event in over_grpc] == [offered["id"], confirmed["id"]]
    assert [event.type for event in over_grpc] == ["booking.offered", "booking.confirmed"]


def test_last_event_id_resumes_after_that_event(api, stack):
    _, holder, [first] = full_conference(api, waiting=1)
    with api.http.stream("GET", f"/booking/{first}/events") as response:
        events = sse_events(response.iter_lines())
        next(events)
        api.cancel(holder)
        offered = next(events)
        assert api.confirm(first).status_code == 200
        confirmed = next(events)
    with api.http.stream("GET", f"/booking/{first}/events", headers={"Last-Event-ID": offered["id"]}) as response:
        again = next(sse_events(response.iter_lines()))  # straight on with what came after
        assert (again["event"], again["id"]) == ("booking.confirmed", confirmed["id"])
    channel, updates = watch_grpc(stack, first, after=confirmed["id"])
    assert next(updates).booking.status == booking_pb2.BOOKING_STATUS_CONFIRMED
    assert list(updates) == []  # nothing after the last change; the stream ends at its lifetime
    channel.close()


def test_the_streams_answer_404_for_an_unknown_booking_and_400_for_a_bad_resume_point(api, stack):
    assert_error(api.http.get("/booking/999999999999/events"), 404, "BOOKING_NOT_FOUND")
    assert_error(api.http.get("/booking/abc/events"), 400)
    booking_id = api.book(api.create_conference(), api.create_user())["booking_id"]
    error = assert_error(api.http.get(f"/booking/{booking_id}/events", headers={"Last-Event-ID": "yesterday"}), 400)
    assert "Last-Event-ID" in error["message"]
    unknown = "123e4567-e89b-12d3-a456-426614174000"
    assert_error(api.http.get(f"/booking/{booking_id}/events", headers={"Last-Event-ID": unknown}), 400)
    channel, updates = watch_grpc(stack, 999999999999)
    with pytest.raises(grpc.RpcError) as failure:
        next(updates)
    channel.close()
    assert failure.value.code() is grpc.StatusCode.NOT_FOUND


def test_a_watch_ends_cleanly_at_its_lifetime_and_resumes_without_a_gap(api, stack):
    _, holder, [first] = full_conference(api, waiting=1)
    channel, updates = watch_grpc(stack, first)
    next(updates)
    started = time.monotonic()
    assert list(updates) == []  # nothing changed; the stream ends by itself...
    assert updates.code() is grpc.StatusCode.OK  # ...with OK, before the server's stream bound
    assert time.monotonic() - started < 10
    channel.close()


def test_watches_end_when_their_clients_go_away(api, stack):
    """One connection reaches one booking process, which holds at most E2E_MAX_STREAMS streams: twice
    that many watches one after the other succeed only if the first ones ended when canceled."""
    booking_id = api.book(api.create_conference(), api.create_user())["booking_id"]
    count = E2E_MAX_STREAMS * 3 // 4
    with grpc_channel(stack, "booking") as channel:
        stub = booking_pb2_grpc.BookingServiceStub(channel)
        for _ in range(2):
            calls = [stub.WatchBooking(booking_pb2.WatchBookingRequest(booking_id=booking_id)) for _ in range(count)]
            assert all(next(iter(call)).booking.booking_id == booking_id for call in calls)
            for call in calls:
                call.cancel()
            time.sleep(0.3)


def test_hundreds_of_open_streams_do_not_slow_bookings_and_each_sees_the_change(api, stack):
    conference, holder, [first] = full_conference(api, waiting=1)
    streams = 150

    def booking_seconds():
        started = time.monotonic()
        api.book(conference, api.create_user())
        return time.monotonic() - started

    quiet = sorted(booking_seconds() for _ in range(10))[5]

    async def watch_many():
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        headers = bearer(admin_token(stack))
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=20, limits=limits, headers=headers) as client:
            opened = asyncio.Event()
            ready = 0

            async def watch():
                """As a client does: when a stream ends (a short lifetime here), watch again from its last event."""
                nonlocal ready
                last_id: str | None = None
                first_time = True
                while True:
                    headers: dict[str, str] = {"Last-Event-ID": last_id} if last_id else {}
                    async with client.stream("GET", f"/booking/{first}/events", headers=headers) as response:
                        assert response.status_code == 200
                        async for event in sse_events_async(response.aiter_lines()):
                            if event["event"] == "booking" and first_time:
                                first_time = False
                                ready += 1
                                if ready == streams:
                                    opened.set()
                            last_id = event.get("id", last_id)
                            if event["event"] == "booking.offered":
                                return True

            watchers = [asyncio.create_task(watch()) for _ in range(streams)]
            await asyncio.wait_for(opened.wait(), 20)
            busy = sorted([await asyncio.to_thread(booking_seconds) for _ in range(10)])[5]
            await asyncio.to_thread(api.cancel, holder)
            seen = await asyncio.wait_for(asyncio.gather(*watchers), 10)
            return busy, seen

    busy, seen = asyncio.run(watch_many())
    assert all(seen)
    # Not starved; what the open streams cost a booking is measured by `make bench`, not here.
    assert busy < max(10 * quiet, 0.5), (busy, quiet)
