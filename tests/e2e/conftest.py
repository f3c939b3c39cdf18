"""The whole stack as real processes on free ports, spoken to over HTTP (and gRPC), for the whole run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import grpc
import httpx
import pytest

from confbook_common.rpc.caller_auth import with_token
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
    # The suite writes as fast as it can from one address; the bounds themselves are tested on their own.
    "GATEWAY_RATE_LIMIT_WRITES": "100000/second",
    "GATEWAY_RATE_LIMIT_FAILED_AUTHENTICATIONS": "100000/second",
    # A rotated key is fetched within a second of the first token that names it.
    "OIDC_JWKS_REFRESH_COOLDOWN_SECONDS": "1",
}
# Where the browser tests (test_web_page.py) keep their screenshots; said at the end of a run that took some.
SCREENSHOTS = STATE_DIR / "screenshots"
SCREENSHOTS_TAKEN = pytest.StashKey[bool]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if config.stash.get(SCREENSHOTS_TAKEN, False):
        terminalreporter.write_line(f"screenshots of the web page: {SCREENSHOTS}")


# Long enough for the whole session.
SESSION_TOKEN_SECONDS = 6 * 3600
# Who creates the suite's conferences (so owns them) and who does the rest, unless a test says otherwise.
ORGANIZER = "organizer-e2e"
ADMIN = "admin-e2e"


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


class TokenSource(Protocol):
    """A stack whose issuer gives tokens (scripts.sandbox.Stack, scripts.stack.LocalStack)."""

    @property
    def issuer_url(self) -> str: ...

    def token(self, subject: str, role: str = "attendee", ttl: int = 3600) -> str: ...


class Api:
    """The gateway as a client sees it, with shortcuts that create unique conferences and users.

    `http` sends an admin's token; conferences are created by an organizer, and each user by a
    subject of its own, whose token books for it (`as_user`).
    """

    def __init__(self, client: httpx.Client, stack: TokenSource) -> None:
        self.http = client
        self.stack = stack

    def token(self, subject: str, role: str = "attendee") -> str:
        return _token(self.stack, subject, role)

    def as_user(self, user_id: str) -> dict[str, str]:
        """The headers of requests made by the user's own subject."""
        return bearer(self.token(subject_of(user_id)))

    def as_organizer(self) -> dict[str, str]:
        return bearer(self.token(ORGANIZER, "organizer"))

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
        response = self.http.post("/conference", json=body, headers=self.as_organizer())
        assert response.status_code == 201, response.text
        return dict(response.json())

    def create_user(self, topics: list[str] | None = None) -> str:
        user_id = f"user{uuid.uuid4().hex[:12]}"
        body = {"user_id": user_id, "topics": ["AI"] if topics is None else topics}
        response = self.http.post("/user", json=body, headers=self.as_user(user_id))
        assert response.status_code == 201, response.text
        return user_id

    def book(self, conference: dict[str, Any], user_id: str) -> dict[str, Any]:
        response = self.http.post(
            "/book", json={"name": conference["name"], "user_id": user_id}, headers=self.as_user(user_id)
        )
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


def grpc_channel(stack: Stack, service: str, token: str | None = None) -> grpc.Channel:
    """A channel to one service whose every call carries a token (the suite's admin's by default)."""
    return with_token(grpc.insecure_channel(stack.grpc_target(service)), token or admin_token(stack))


def subject_of(user_id: str) -> str:
    """The subject the suite creates a user as."""
    return f"sub-{user_id}"


_tokens: dict[tuple[str, str, str], str] = {}


def _token(stack: TokenSource, subject: str, role: str) -> str:
    """One token per issuer, subject and role for the session."""
    key = (stack.issuer_url, subject, role)
    if key not in _tokens:
        _tokens[key] = stack.token(subject, role, ttl=SESSION_TOKEN_SECONDS)
    return _tokens[key]


def admin_token(stack: TokenSource) -> str:
    return _token(stack, ADMIN, "admin")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def http(stack: Stack) -> Iterator[httpx.Client]:
    """A client with an admin's token: it may read and change anything (tests of who may do what use others)."""
    limits = httpx.Limits(keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS)
    headers = bearer(_token(stack, ADMIN, "admin"))
    with httpx.Client(base_url=stack.base_url, timeout=10, limits=limits, headers=headers) as client:
        yield client


@pytest.fixture(scope="session")
def anonymous(stack: Stack) -> Iterator[httpx.Client]:
    """A client without a token."""
    limits = httpx.Limits(keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS)
    with httpx.Client(base_url=stack.base_url, timeout=10, limits=limits) as client:
        yield client


@pytest.fixture
def api(http: httpx.Client, stack: Stack) -> Api:
    return Api(http, stack)


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
