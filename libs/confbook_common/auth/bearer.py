"""Reading a bearer token from an `Authorization` header (HTTP) or `authorization` metadata (gRPC), RFC 6750."""

from __future__ import annotations

import re

import grpc

from confbook_common.auth.caller import Caller
from confbook_common.auth.verifier import TokenVerifier
from confbook_common.errors import Unauthenticated
from confbook_common.rpc.metadata import AUTHORIZATION, metadata_value

# RFC 6750 2.1: "Bearer" (any case), one or more spaces, then the token's characters.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")


def token_of(header: str | None) -> str:
    """The token in an Authorization value; Unauthenticated if there is none or it is not a bearer token."""
    if header is None or not header.strip():
        raise Unauthenticated("this request needs an access token: Authorization: Bearer <token>")
    match = _BEARER.fullmatch(header.strip())
    if match is None:
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return match.group(1)


class Callers:
    """Who calls a service: the caller of every call but the public ones comes from its verified token."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    def of(self, context: grpc.ServicerContext) -> Caller:
        return self._verifier.verify(token_of(metadata_value(context, AUTHORIZATION)))
