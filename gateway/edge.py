"""The outermost layer of every HTTP request: its request id, and a plain 500 for whatever escaped."""

from __future__ import annotations

import logging

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confbook_common import request_id
from gateway.errors import error_response

log = logging.getLogger(__name__)

_HEADER = request_id.HTTP_HEADER.lower().encode()


class RequestEdgeMiddleware:
    """Gives each request an id (the client's X-Request-Id when sane, else a new one), sends it back
    in X-Request-Id, and answers any exception that reaches it with a 500 that says nothing of it
    (the log line, with the id, says the rest)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(_HEADER)
        rid = request_id.accept(sent.decode("latin-1") if sent is not None else None)
        token = request_id.current.set(rid)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[request_id.HTTP_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error (request_id=%s) on %s %r", rid, scope["method"], scope["path"][:200])
            if not started:  # otherwise the client sees the connection end mid-answer
                await error_response(500, "INTERNAL_ERROR", "internal error")(scope, receive, send_with_id)
        finally:
            request_id.current.reset(token)
