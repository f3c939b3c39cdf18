"""Reading a call's metadata, and the bearer credentials a call carries."""

from __future__ import annotations

import grpc

AUTHORIZATION = "authorization"


def metadata_value(context: grpc.ServicerContext, key: str) -> str | None:
    """The first value the call sent under `key`, if it is text."""
    value = next((value for name, value in context.invocation_metadata() if name == key), None)
    return value if isinstance(value, str) else None


def bearer(token: str) -> tuple[str, str]:
    """The metadata entry that presents `token` (RFC 6750's scheme, as over HTTP)."""
    return (AUTHORIZATION, f"Bearer {token}")
