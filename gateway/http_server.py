"""The gateway's HTTP server and its bounds: how long a client may take to send a request, how big its headers
may be, how many connections and requests one worker takes on (docs/adr/0011)."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from http import HTTPStatus
from typing import Any

import httptools
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from confbook_common import request_id
from gateway.config import GatewayConfig
from gateway.errors import error_response

# Connections plus requests under way in one worker; past it a request is answered 503 at once, and
# the connection closed, rather than queued.
MAX_CONCURRENCY = 1000
# Connections the kernel holds for a worker before it accepts them.
BACKLOG = 2048
# How long a connection may stay open after a response, waiting for the next request (uvicorn's own).
KEEP_ALIVE_SECONDS = 5
# How long our own clients (tests, soak) keep an idle connection: less than the gateway, so that none
# sends a request on a connection the gateway is closing at that moment.
CLIENT_KEEP_ALIVE_SECONDS = KEEP_ALIVE_SECONDS - 1
# The request line and headers together; the API needs a few hundred bytes. Past it: 431.
MAX_HEADER_BYTES = 16 * 1024


def uvicorn_settings(config: GatewayConfig) -> dict[str, Any]:
    """The keyword arguments of uvicorn.run() that bound what a client can hold of the gateway."""
    protocol = functools.partial(
        BoundedHttpToolsProtocol,
        request_read_seconds=config.request_read_timeout_seconds,
        max_header_bytes=MAX_HEADER_BYTES,
    )
    return {
        # The C HTTP parser (httptools): several times cheaper per request than the pure-Python one,
        # with the bounds below added.
        "http": protocol,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "limit_concurrency": MAX_CONCURRENCY,
        "backlog": BACKLOG,
        # Only for the h11 parser, should anyone switch to it: the same cap on headers.
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }


async def _overloaded(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer past MAX_CONCURRENCY: try again in a moment, on a new connection."""
    headers = {"Retry-After": "1", "Connection": "close", request_id.HTTP_HEADER: request_id.new()}
    await error_response(503, "SERVICE_UNAVAILABLE", "the gateway is at its limit of requests; try again", headers)(
        scope, receive, send
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request to arrive and a cap on its headers.

    uvicorn bounds the wait between requests (keep-alive) but not a request that arrives a
    byte at a time, nor a new connection that sends nothing. Here each request, headers and
    body, must have arrived `request_read_seconds` after its first byte, or after the
    connection opened; otherwise the connection is closed. Time during which the server
    itself stopped reading (a pipelined request waiting its turn, a body the app has yet to
    take) does not count against the client.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        request_read_seconds: float,
        max_header_bytes: int,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._request_read_seconds = request_read_seconds
        self._max_header_bytes = max_header_bytes
        self._read_deadline: asyncio.TimerHandle | None = None
        # Bytes received while the current request's headers were incomplete; None outside headers.
        self._header_bytes: int | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Counted from the second piece of a header on: the parser keeps an unfinished header in memory.
        if self._header_bytes is not None:
            self._header_bytes += len(data)
            if self._header_bytes > self._max_header_bytes:
                self._refuse_headers()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm_read_deadline()

    def on_headers_complete(self) -> None:
        self._header_bytes = None
        if self._over_concurrency_limit():
            # uvicorn would answer with its own plain-text 503; the same refusal, as the documented JSON.
            limit, app = self.limit_concurrency, self.app
            self.limit_concurrency, self.app = None, _overloaded
            try:
                super().on_headers_complete()
            finally:
                self.limit_concurrency, self.app = limit, app
            return
        super().on_headers_complete()

    def _over_concurrency_limit(self) -> bool:
        limit = self.limit_concurrency
        return limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)

    def on_message_complete(self) -> None:
        self._disarm_read_deadline()
        super().on_message_complete()

    def _arm_read_deadline(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self._request_read_seconds, self._on_read_deadline)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _on_read_deadline(self) -> None:
        self._read_deadline = None
        if self.flow.read_paused:
            self._arm_read_deadline()  # we are the ones not reading: the client gets a new period
            return
        self.transport.close()

    def _refuse_headers(self) -> None:
        self._refuse(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "HEADERS_TOO_LARGE", "the request headers are too large"
        )

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers a request its parser refused, as the documented JSON error rather than plain text.

        uvicorn calls this only while handling the parser's exception, which tells a method HTTP does not
        know (501, as RFC 9110 has it) from a malformed request (400).
        """
        if isinstance(sys.exc_info()[1], httptools.HttpParserInvalidMethodError):
            self._refuse(
                HTTPStatus.NOT_IMPLEMENTED, "METHOD_NOT_IMPLEMENTED", "the request method is not one HTTP knows"
            )
        else:
            self._refuse(HTTPStatus.BAD_REQUEST, "MALFORMED_REQUEST", "the request is not valid HTTP/1.1")

    def _refuse(self, status: HTTPStatus, code: str, message: str) -> None:
        """Answer and close before the request reached the app: it is not a request the app could be given."""
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        head = [f"HTTP/1.1 {status.value} {status.phrase}".encode()]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json", b"content-length: " + str(len(body)).encode()]
        head += [f"{request_id.HTTP_HEADER.lower()}: {request_id.new()}".encode(), b"connection: close"]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()
