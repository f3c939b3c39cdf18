"""Request bodies are JSON and at most a set size (413 beyond it), however they are sent."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ApiError, error_response


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "BODY_TOO_LARGE", f"the request body is larger than {limit} bytes")


class JsonBodyMiddleware:
    """Rejects oversized bodies (by Content-Length, or while streaming a chunked one) and reads
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
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)
