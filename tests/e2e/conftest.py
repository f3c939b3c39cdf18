"""The whole stack as real processes on free ports, spoken to over HTTP (and gRPC), for the whole run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from gateway.http_server import CLIENT_KEEP_ALIVE_SECONDS
from scripts.sandbox import Infrastructure, Stack
from tests.conftest import E2E_WINDOW_SECONDS, STATE_DIR
from tests.otlp_receiver import OtlpReceiver

T = TypeVar("T")

# Short bounds on what a client may hold (docs/adr/0011), so that tests see them act in seconds.
E2E_STREAM_IDLE_SECONDS = 2
E2E_STREAM_MAX_SECONDS = 4
E2E_MAX_STREAMS = 200
E2E_REQUEST_READ_TIMEOUT_SECONDS = 2
E2E_BOUNDS = {
    "GRPC_STREAM_IDLE_SECONDS": str(E2E_STREAM_IDLE_SECONDS),
    "GRPC_STREAM_MAX_SECONDS": str(E2E_STREAM_MAX_SECONDS),
    "GRPC_MAX_STREAMS": str(E2E_MAX_STREAMS),
    "GATEWAY_REQUEST_READ_TIMEOUT_SECONDS": str(E2E_REQUEST_READ_TIMEOUT_SECONDS),
    # A receiver that failed is tried again within a second or two, not minutes.
    "WEBHOOK_RETRY_FIRST_SECONDS": "1",
    "WEBHOOK_RETRY_MAX_SECONDS": "2",
    "WEBHOOK_TIMEOUT_SECONDS": "3",
}


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """Where every process of the e2e stack sends its spans, through its real OTLP exporter."""
    receiver = OtlpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def stack(infrastructure: Infrastructure, otlp_receiver: OtlpReceiver) -> Iterator[Stack]:
    # Traced, so that every e2e test also runs the instrumentation; spans are sent every 100 ms.
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    stack = Stack(
        infrastructure,
        window_seconds=E2E_WINDOW_SECONDS,
        log_dir=STATE_DIR / "logs",
        settings={**E2E_BOUNDS, **tracing},
    )
    try:
        stack.start()
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()


def wire_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class Api:
    """The gateway as a client sees it, with shortcuts that create unique conferences and users."""

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def create_conference(
        self,
        *,
        slots: int = 1,
        start: datetime | None = None,
        hours: float = 2,
        name: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        start = start or datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        body = {
            "name": name or f"Conf {uuid.uuid4().hex[:12]}",
            "location": "Berlin",
            "start": wire_time(start),
            "end": wire_time(start + timedelta(hours=hours)),
            "slots": slots,
            "topics": ["Python"],
            **overrides,
        }
        response = self.http.post("/conference", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def create_user(self) -> str:
        user_id = f"user{uuid.uuid4().hex[:12]}"
        response = self.http.post("/user", json={"user_id": user_id, "topics": ["AI"]})
        assert response.status_code == 201, response.text
        return user_id

    def book(self, conference: dict[str, Any], user_id: str) -> dict[str, Any]:
        response = self.http.post("/book", json={"name": conference["name"], "user_id": user_id})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def booking(self, booking_id: int) -> dict[str, Any]:
        response = self.http.get(f"/booking/{booking_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def status(self, booking_id: int) -> str:
        return str(self.booking(booking_id)["status"])

    def confirm(self, booking_id: int) -> httpx.Response:
        return self.http.post("/confirm", json={"booking_id": booking_id})

    def cancel(self, booking_id: int) -> httpx.Response:
        return self.http.post("/cancel", json={"booking_id": booking_id})

    def conference(self, name: str) -> dict[str, Any]:
        response = self.http.get(f"/conference/{name}")
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="session")
def http(stack: Stack) -> Iterator[httpx.Client]:
    limits = httpx.Limits(keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS)
    with httpx.Client(base_url=stack.base_url, timeout=10, limits=limits) as client:
        yield client


@pytest.fixture
def api(http: httpx.Client) -> Api:
    return Api(http)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The contract's error shape: the status, and {"error": {"code", "message"}}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])
