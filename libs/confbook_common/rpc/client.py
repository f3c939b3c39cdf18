"""Client channels to other services, and turning their transient failures into one exception."""

from __future__ import annotations

import grpc

from confbook_common.errors import DependencyUnavailable

CALL_TIMEOUT_SECONDS = 5.0

_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def insecure_channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(
        target,
        options=[("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1)],
    )


def raise_if_transient(error: grpc.RpcError, service: str) -> None:
    """Raise DependencyUnavailable for an error worth retrying later."""
    code = error.code()
    if code in _TRANSIENT:
        raise DependencyUnavailable(f"{service} service: {code.name}: {error.details()}") from error
