"""The gateway's HTTP server in process (uvicorn with the gateway's protocol, on a loopback port): what it
answers by itself, before any route, is the documented JSON error too."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from confbook_common.settings import Env
from gateway.config import GatewayConfig
from gateway.http_server import uvicorn_settings

# Whose tokens count is irrelevant here, but the gateway's settings must name an issuer.
ISSUER = {"OIDC_ISSUER": "https://issuer.example", "OIDC_AUDIENCE": "confbook"}


async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Holds each request a while, so that a second one finds the first still under way."""
    if scope["type"] != "http":
        return
    await asyncio.sleep(1.0)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def server_with_room_for_one() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = uvicorn_settings(GatewayConfig.from_env(Env(ISSUER))) | {"limit_concurrency": 1}
    server = uvicorn.Server(uvicorn.Config(slow_app, host="127.0.0.1", port=port, log_level="error", **settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield port
    server.should_exit = True
    thread.join(10)


def answer_to(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}, body


def test_past_the_concurrency_limit_the_answer_is_a_json_503(server_with_room_for_one):
    port = server_with_room_for_one
    with socket.create_connection(("127.0.0.1", port), timeout=5) as busy:
        busy.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")  # under way for a second
        threading.Event().wait(0.2)
        status, headers, body = answer_to(port, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status.startswith("HTTP/1.1 503"), status
    assert headers["content-type"] == "application/json"
    assert headers["retry-after"] == "1"
    assert headers["x-request-id"]
    assert json.loads(body)["error"]["code"] == "SERVICE_UNAVAILABLE"
