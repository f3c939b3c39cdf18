"""Request ids: the one a caller sent when it is sane, else a new one; they tie log lines to requests."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HTTP_HEADER = "X-Request-Id"
GRPC_METADATA_KEY = "x-request-id"  # gRPC metadata keys are lower case

# Short and of plain characters, so that it is safe in a log line and in a header.
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# The id of the request the current task serves (the gateway passes it on to the services).
current: ContextVar[str] = ContextVar("request_id", default="")


def new() -> str:
    return uuid.uuid4().hex


def sane(value: str | None) -> bool:
    return value is not None and _SANE.fullmatch(value) is not None


def accept(sent: str | None) -> str:
    """The caller's id if it is sane, else a new one."""
    return sent if sent is not None and sane(sent) else new()
