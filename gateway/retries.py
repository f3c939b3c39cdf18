"""The Idempotency-Key header: checked, handed to the service that owns the effect, a replay marked."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, TypeVar

import grpc
from fastapi import Depends, Header, Request, Response
from pydantic import WithJsonSchema

from confbook_common import idempotency, validation
from confbook_common.errors import InvalidInput
from gateway.errors import REPLAYED_HEADER, ApiError

T = TypeVar("T")

HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Retry:
    """What a write request says about retries: its key, if any, and what makes it this request."""

    key: str | None = None
    http_fingerprint: str = ""

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self.key is None:
            return ()
        return (
            (idempotency.KEY_METADATA, self.key),
            (idempotency.HTTP_FINGERPRINT_METADATA, self.http_fingerprint),
        )


def canonical_json(body: bytes) -> str:
    """Equal JSON bodies (in any key order or spacing) read the same."""
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):
        return body.hex()  # refused as a body anyway; the key is then never stored


async def _retry(
    request: Request,
    key: Annotated[
        Annotated[
            str | None,
            # The rule as a schema, so that generated clients and fuzzers know it (checked below).
            WithJsonSchema(
                {
                    "type": "string",
                    "pattern": f"^[!-~]{{1,{validation.IDEMPOTENCY_KEY_MAX_LENGTH}}}$",
                    "minLength": 1,
                    "maxLength": validation.IDEMPOTENCY_KEY_MAX_LENGTH,
                }
            ),
        ],
        Header(
            alias=HEADER,
            description="1 to 255 visible ASCII characters. A retry with the same key, method, path and JSON body "
            "within 24 hours gets the first answer again (header Idempotent-Replayed: true) and has no second "
            "effect; another request with the key is a 422, one while the first is running a 409.",
        ),
    ] = None,
) -> Retry:
    if key is None:
        return Retry()
    try:
        validation.idempotency_key(HEADER, key)
    except InvalidInput as error:
        raise ApiError(400, "VALIDATION_ERROR", error.message) from None
    seen = f"{request.method} {request.url.path}\n{canonical_json(await request.body())}"
    return Retry(key, hashlib.sha256(seen.encode()).hexdigest())


RetryOf = Annotated[Retry, Depends(_retry)]


async def answer(call: grpc.aio.UnaryUnaryCall, response: Response) -> T:
    """The reply of a write call, with the replay header set when the service replayed it."""
    reply: T = await call
    if await replayed(call):
        response.headers[REPLAYED_HEADER] = "true"
    return reply


async def replayed(call: grpc.aio.Call) -> bool:
    trailing = await call.trailing_metadata()
    return any(key == idempotency.REPLAYED_METADATA and value == "true" for key, value in trailing or ())
