"""A local webhook receiver that keeps what it is sent: for the tests and `make bench`.

It answers as told (`status`, `delay`), can be stopped and started again on the
same port (a receiver that was down), and notes when each request arrived.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival


class WebhookReceiver:
    def __init__(self, *, status: int = 204, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.received: list[Received] = []
        self.answered_2xx: list[Received] = []
        self._arrived = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                arrival = Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                status, delay = receiver.status, receiver.delay
                with receiver._arrived:
                    receiver.received.append(arrival)
                    receiver._arrived.notify_all()
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
                if 200 <= status < 300:
                    with receiver._arrived:
                        receiver.answered_2xx.append(arrival)
                        receiver._arrived.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True, name="webhook-receiver").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float, *, accepted: bool = False) -> list[Received]:
        """The first `count` requests (only those answered 2xx if `accepted`); fails after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.answered_2xx if accepted else self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = len(self.answered_2xx if accepted else self.received)
                    raise AssertionError(f"{got} of {count} webhook requests after {timeout}s")
                self._arrived.wait(remaining)
            return list((self.answered_2xx if accepted else self.received)[:count])
