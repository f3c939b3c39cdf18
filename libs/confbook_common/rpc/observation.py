"""What every unary call of a service leaves behind: its request id in the logs, its metrics, its span.

Made once per method at registration (the metric children bound then), so that a call pays a few
clock reads and counter updates, not label lookups.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import grpc

from confbook_common import metrics, request_id, tracing


def _request_id(context: grpc.ServicerContext) -> str:
    sent = next((value for key, value in context.invocation_metadata() if key == request_id.GRPC_METADATA_KEY), None)
    return request_id.accept(sent if isinstance(sent, str) else None)


class MethodObservation:
    """The metric children of one method (`/package.Service/Method`), and the calls observed on it."""

    def __init__(self, method: str) -> None:
        service, _, name = method.lstrip("/").partition("/")
        self.method = method
        self._labels = ("unary", service, name)
        self._started = metrics.GRPC_STARTED.labels(*self._labels)
        self._seconds = metrics.GRPC_HANDLING_SECONDS.labels(*self._labels)
        self._handled: dict[grpc.StatusCode, Any] = {}

    def begin(self, context: grpc.ServicerContext) -> ObservedCall:
        self._started.inc()
        return ObservedCall(self, context)

    def finished(self, code: grpc.StatusCode, seconds: float) -> None:
        handled = self._handled.get(code)
        if handled is None:
            handled = self._handled[code] = metrics.GRPC_HANDLED.labels(*self._labels, code.name)
        handled.inc()
        self._seconds.observe(seconds)


class ObservedCall:
    """One call: the request id set for its logs, a server span when tracing is on; `code` its outcome."""

    __slots__ = ("_context", "_observation", "_span", "_started", "_token", "code")

    def __init__(self, observation: MethodObservation, context: grpc.ServicerContext) -> None:
        self._observation = observation
        self._context = context
        self.code = grpc.StatusCode.OK

    def __enter__(self) -> ObservedCall:
        self._started = time.perf_counter()
        self._token = request_id.current.set(_request_id(self._context))
        self._span = tracing.server_span(self._observation.method, self._context.invocation_metadata())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc is not None:
            self.code = grpc.StatusCode.UNKNOWN
        if self._span is not None:
            tracing.end_server_span(self._span, self.code.name, ok=self.code is grpc.StatusCode.OK)
        request_id.current.reset(self._token)
        self._observation.finished(self.code, time.perf_counter() - self._started)
