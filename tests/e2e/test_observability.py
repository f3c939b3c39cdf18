"""What an operator sees of the running stack: metrics on every endpoint, one trace across the services, JSON logs."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from confbook.waitlist.v1 import waitlist_pb2, waitlist_pb2_grpc
from scripts.sandbox import Stack
from tests.e2e.conftest import Api, grpc_channel
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


def scrape(stack: Stack, program: str) -> list[Sample]:
    response = httpx.get(stack.metrics_url(program), timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def total(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`; -1 when there is none at all."""
    matching = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return sum(s.value for s in matching) if matching else -1.0


def _book_three_for_one_seat(api: Api) -> tuple[int, int, int]:
    conference = api.create_conference(slots=1)
    first, second, third = (api.book(conference, api.create_user())["booking_id"] for _ in range(3))
    return first, second, third


def test_after_a_short_load_every_metrics_endpoint_shows_its_families_with_values(stack: Stack, api: Api) -> None:
    first, second, third = _book_three_for_one_seat(api)
    # A redelivery: the freed seat's event reaches a waitlist service that is frozen, which then dies with
    # it unacknowledged; the broker delivers it again to the restarted service.
    stack.pause("waitlist")
    try:
        assert api.cancel(first).status_code == 200
        time.sleep(0.5)  # for the broker to push the event into the frozen consumer's connection
    finally:
        stack.kill("waitlist")
    stack.start("waitlist")
    stack.wait_ready()
    eventually(lambda: api.status(second) == "CONFIRMATION_PENDING", timeout=15)
    # Nobody confirms: after the 3-second window the offer expires and the next in line is offered the seat.
    eventually(lambda: api.status(third) == "CONFIRMATION_PENDING", timeout=15)
    api.http.get("/booking/not-a-number")  # a 400 among the counts
    with grpc_channel(stack, "waitlist") as channel:
        waitlist_pb2_grpc.WaitlistServiceStub(channel).ListOffers(waitlist_pb2.ListOffersRequest(conference_id=1))
    with grpc_channel(stack, "booking") as channel, pytest.raises(grpc.RpcError):
        booking_pb2_grpc.BookingServiceStub(channel).GetBooking(booking_pb2.GetBookingRequest(booking_id=0))

    gateway = scrape(stack, "gateway")
    assert total(gateway, "http_requests_total", method="POST", route="/book", status="201") >= 3
    assert total(gateway, "http_requests_total", route="/booking/{booking_id}", status="400") >= 1
    assert total(gateway, "http_request_duration_seconds_count", method="POST", route="/cancel") >= 1

    conference = scrape(stack, "conference")
    assert total(conference, "grpc_server_handled_total", grpc_method="CreateConference", grpc_code="OK") >= 1
    assert total(conference, "grpc_server_handling_seconds_count", grpc_method="CreateConference") >= 1
    assert total(conference, "confbook_outbox_published_total") >= 0
    assert total(conference, "confbook_outbox_backlog", schema="conference") >= 0
    assert total(conference, "confbook_outbox_oldest_age_seconds", schema="conference") >= 0

    booking = scrape(stack, "booking")
    assert total(booking, "grpc_server_started_total", grpc_method="Book") >= 3
    assert total(booking, "grpc_server_handled_total", grpc_method="CancelBooking", grpc_code="OK") >= 1
    assert total(booking, "grpc_server_handled_total", grpc_method="GetBooking", grpc_code="INVALID_ARGUMENT") >= 1
    assert total(booking, "confbook_booking_transitions_total", from_status="NEW", to_status="CONFIRMED") >= 1
    assert total(booking, "confbook_booking_transitions_total", from_status="NEW", to_status="WAITLISTED") >= 2
    assert total(booking, "confbook_booking_transitions_total", to_status="CONFIRMATION_PENDING") >= 2
    assert total(booking, "confbook_booking_transitions_total", from_status="CONFIRMATION_PENDING") >= 1
    assert total(booking, "confbook_bookings_waiting") >= 1
    assert total(booking, "confbook_offers_pending") >= 1
    lines = [s for s in booking if s.name == "confbook_waitlist_length"]
    assert 1 <= len(lines) <= 10 and all(s.value > 0 for s in lines)
    assert total(booking, "confbook_outbox_published_total", schema="booking") >= 3
    assert total(booking, "confbook_outbox_backlog", schema="booking") >= 0
    assert total(booking, "confbook_outbox_oldest_age_seconds", schema="booking") >= 0

    waitlist = scrape(stack, "waitlist")
    assert total(waitlist, "grpc_server_handled_total", grpc_method="ListOffers", grpc_code="OK") >= 1
    assert total(waitlist, "confbook_promotion_delay_seconds_count") >= 2
    assert total(waitlist, "confbook_promotion_delay_seconds_sum") > 0
    assert total(waitlist, "confbook_offer_expiry_lateness_seconds_count") >= 1
    assert total(waitlist, "confbook_consumer_redeliveries_total", queue="waitlist.seat-released") >= 1
    assert total(waitlist, "confbook_consumer_messages_total", outcome="handled") >= 3
    assert total(waitlist, "confbook_consumer_forged_messages_total") >= 0
    assert total(waitlist, "confbook_outbox_backlog", schema="waitlist") >= 0


def _traceparent() -> tuple[str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, f"00-{trace_id}-{parent_id}-01"


def _span(spans: list[ReceivedSpan], service: str, kind: str, name: str) -> ReceivedSpan | None:
    return next((s for s in spans if (s.service, s.kind) == (service, kind) and s.name.startswith(name)), None)


def test_one_trace_covers_a_cancel_and_the_promotion_that_followed(
    stack: Stack, api: Api, otlp_receiver: OtlpReceiver
) -> None:
    conference = api.create_conference(slots=1)
    holder = api.book(conference, api.create_user())["booking_id"]
    waiting = api.book(conference, api.create_user())["booking_id"]
    trace_id, traceparent = _traceparent()

    response = api.http.post("/cancel", json={"booking_id": holder}, headers={"traceparent": traceparent})
    assert response.status_code == 200
    eventually(lambda: api.status(waiting) == "CONFIRMATION_PENDING")

    expected = [
        ("gateway", "SERVER", "POST /cancel"),
        ("booking", "SERVER", "confbook.booking.v1.BookingService/CancelBooking"),
        ("booking", "PRODUCER", "publish confbook.events.v1.SeatReleased"),
        ("waitlist", "CONSUMER", "process waitlist.seat-released"),
        ("waitlist", "CLIENT", "confbook.booking.v1.PromotionService/OfferFreeSeats"),
        ("booking", "SERVER", "confbook.booking.v1.PromotionService/OfferFreeSeats"),
        ("booking", "PRODUCER", "publish confbook.events.v1.OfferMade"),
        ("waitlist", "CONSUMER", "process waitlist.offer-made"),
    ]

    def complete_trace() -> list[ReceivedSpan]:
        found = otlp_receiver.spans(trace_id)
        return found if all(_span(found, *each) for each in expected) else []

    spans = eventually(complete_trace, timeout=15)
    # One tree: each span's parent is in the trace, but for the gateway's, whose parent is the caller's.
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_span_id not in ids]
    assert [(r.service, r.name) for r in roots] == [("gateway", "POST /cancel")], roots
    assert roots[0].parent_span_id == traceparent.split("-")[2]
    # The SQL of the cancel is in it too, under the booking service's span.
    cancel = _span(spans, "booking", "SERVER", "confbook.booking.v1.BookingService/CancelBooking")
    assert cancel is not None
    assert any(s.parent_span_id == cancel.span_id and s.attributes.get("db.system") for s in spans), spans
    # The promotion call is the child of the consumer that reacted to the freed seat.
    consumer = _span(spans, "waitlist", "CONSUMER", "process waitlist.seat-released")
    call = _span(spans, "waitlist", "CLIENT", "confbook.booking.v1.PromotionService/OfferFreeSeats")
    served = _span(spans, "booking", "SERVER", "confbook.booking.v1.PromotionService/OfferFreeSeats")
    assert consumer and call and served
    assert call.parent_span_id == consumer.span_id
    assert served.parent_span_id == call.span_id


def test_logs_are_json_lines_that_name_the_trace(stack: Stack, api: Api) -> None:
    conference = api.create_conference(slots=1)
    holder = api.book(conference, api.create_user())["booking_id"]
    waiting = api.book(conference, api.create_user())["booking_id"]
    trace_id, traceparent = _traceparent()
    api.http.post("/cancel", json={"booking_id": holder}, headers={"traceparent": traceparent})
    eventually(lambda: api.status(waiting) == "CONFIRMATION_PENDING")
    # The waitlist service logs the offer it made, in the trace of the cancel.

    def traced_lines() -> list[dict[str, object]]:
        entries = []
        for path in stack.log_dir.glob("*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if trace_id in line:
                    entries.append(json.loads(line))
        return entries

    entries = eventually(traced_lines, timeout=15)
    assert all({"time", "level", "process", "message", "trace_id", "span_id"} <= entry.keys() for entry in entries)
    assert any(entry["process"] == "waitlist" and "offered" in str(entry["message"]) for entry in entries), entries


def test_an_answer_carries_the_request_id_the_client_sent(api: Api) -> None:
    response = api.http.get("/healthz", headers={"X-Request-Id": "client-id-1"})
    assert response.headers["X-Request-Id"] == "client-id-1"
