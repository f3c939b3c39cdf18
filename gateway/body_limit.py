"""Request bodies are JSON and at most a set size (413 beyond it), however they are sent."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ApiError, error_response

# How much of a chunked body over the limit is read and dropped before the 413.
_DRAINED_MAX_BYTES = 1024 * 1024


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "BODY_TOO_LARGE", f"the request body is larger than {limit} bytes")


class JsonBodyMiddleware:
    """Rejects oversized bodies (by Content-Length, or by reading a chunked one first) and reads
    every body as JSON, so that `curl -d` without a Content-Type header still works."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(key, value) for key, value in scope["headers"] if key != b"content-type"]
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = BodyTooLarge(self.max_bytes)
            await error_response(error.status, error.code, error.message)(scope, receive, send)
            return
        # In place, not a copy: the layers outside read what routing adds to the scope (its route template).
        scope["headers"] = [*headers, (b"content-type", b"application/json")]
        if b"transfer-encoding" in dict(headers):
            # A chunked body has no size up front. Read here, one over the limit is still answered 413:
            # raised later, from inside the framework's reading of the body, it would become a 400.
            body = await self._read_at_most(receive)
            if body is None:
                error = BodyTooLarge(self.max_bytes)
                await error_response(error.status, error.code, error.message)(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read_at_most(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (a client gone counts as an empty body).

        Past the limit the rest is read and dropped, up to a bound: closing with bytes unread makes the
        close a reset, which can destroy the answer before the client reads it.
        """
        body, size = bytearray(), 0
        while size <= self.max_bytes + _DRAINED_MAX_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.max_bytes:
                body += chunk  # past the limit nothing more is kept
            if not message.get("more_body", False):
                break
        return bytes(body) if size <= self.max_bytes else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then what the client sends next (its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
