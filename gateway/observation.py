"""What every HTTP request leaves behind: a count and a latency by route template, and a server span.

Labelled by the route's template (`/booking/{booking_id}`), never by the path itself, so that the
series stay few whatever clients send; paths that match no route share one label.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confbook_common import metrics, tracing

UNMATCHED_ROUTE = "unmatched"
# Any other method a client makes up is counted as this one, so that it cannot mint new series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", UNMATCHED_ROUTE))


class ObservationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Children are bound on first use and kept: a label lookup per request is most of a counter's cost.
        self._counters: dict[tuple[str, str, int], object] = {}
        self._histograms: dict[tuple[str, str], object] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if nothing is sent (RequestEdgeMiddleware answers 500)

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"] if scope["method"] in _METHODS else OTHER_METHOD
        if tracing.enabled():
            headers = {key.decode("latin-1"): value for key, value in scope["headers"]}
            # The route is known only once routed; the span is named by it when it ends.
            with tracing.http_server_span(method, scope["path"][:100], headers) as span:
                try:
                    await self.app(scope, receive, send_noting_status)
                finally:
                    if span is not None:
                        span.update_name(f"{method} {_route(scope)}")
                        span.set_attribute("http.route", _route(scope))
                        span.set_attribute("http.response.status_code", status)
        else:
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                self._observe(method, _route(scope), status, time.perf_counter() - started)
            return
        self._observe(method, _route(scope), status, time.perf_counter() - started)

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[(method, route, status)] = metrics.HTTP_REQUESTS.labels(method, route, str(status))
        counter.inc()  # type: ignore[attr-defined]
        histogram = self._histograms.get((method, route))
        if histogram is None:
            histogram = self._histograms[(method, route)] = metrics.HTTP_REQUEST_SECONDS.labels(method, route)
        histogram.observe(seconds)  # type: ignore[attr-defined]
