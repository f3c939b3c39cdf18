"""The whole stack as real processes on free ports, spoken to over HTTP (and gRPC), for the whole run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from scripts.stack import MODULES, launch
from tests.conftest import E2E_WINDOW_SECONDS, STATE_DIR, Infra

T = TypeVar("T")

LOG_DIR = STATE_DIR / "logs"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    infra: Infra
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def grpc_target(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.infra.env(),
            "GATEWAY_PORT": str(self.ports["gateway"]),
            "CONFERENCE_GRPC_PORT": str(self.ports["conference"]),
            "BOOKING_GRPC_PORT": str(self.ports["booking"]),
            "WAITLIST_GRPC_PORT": str(self.ports["waitlist"]),
            "CONFIRMATION_WINDOW_SECONDS": str(E2E_WINDOW_SECONDS),
        }

    def start(self, name: str) -> None:
        self.processes[name] = launch(name, self.env(), LOG_DIR)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        process = self.processes.pop(name)
        process.send_signal(sig)
        return process.wait(timeout=15)

    def stop(self) -> None:
        for name in list(self.processes):
            self.processes[name].send_signal(signal.SIGTERM)
        for name in list(self.processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.processes.pop(name).wait(timeout=15)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /readyz says every service (and its database and broker) is up."""
        last = "no answer"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {LOG_DIR / name}.log")
            try:
                response = httpx.get(f"{self.base_url}/readyz", timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as error:
                last = str(error)
            time.sleep(0.2)
        raise RuntimeError(f"the stack did not become ready: {last}")


@pytest.fixture(scope="session")
def stack(infrastructure: Infra) -> Iterator[Stack]:
    stack = Stack(infrastructure, {name: _free_port() for name in MODULES})
    try:
        for name in MODULES:
            stack.start(name)
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()


def eventually(probe: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.1) -> T:
    """Poll until `probe` returns something truthy (and return it), or fail with its last answer."""
    deadline = time.monotonic() + timeout
    result = probe()
    while not result and time.monotonic() < deadline:
        time.sleep(interval)
        result = probe()
    assert result, f"still {result!r} after {timeout}s"
    return result


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
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
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


@pytest.fixture
def log_dir() -> Path:
    return LOG_DIR
