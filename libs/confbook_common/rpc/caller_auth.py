"""Caller authentication for an internal API: a secret shared by its server and its one caller.

The booking service's PromotionService moves bookings on the waitlist's behalf;
any other caller of it could hand out seats. The waitlist service sends the
secret as a bearer token in the `authorization` metadata, the booking service
compares it in constant time. Over a network, pair it with TLS (see README, Security).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc

from confbook_common.errors import Unauthenticated
from confbook_common.rpc.metadata import AUTHORIZATION, bearer, metadata_value


def require_token(context: grpc.ServicerContext, token: str) -> None:
    """Unauthenticated unless the call carries `token`."""
    presented = metadata_value(context, AUTHORIZATION) or ""
    if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
        raise Unauthenticated("this internal API needs the caller's token")


def with_token(channel: grpc.Channel, token: str) -> grpc.Channel:
    """A channel whose every call (unary, or answered by a stream) carries `token` as a bearer token."""
    return grpc.intercept_channel(channel, _BearerToken(token))


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._metadata = bearer(token)

    def _with_token(self, details: Any) -> Any:
        return details._replace(metadata=[*(details.metadata or ()), self._metadata])

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)
