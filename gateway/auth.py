"""Who is asking: the request's bearer token, verified here and passed on to the services, which verify
it again and decide for the data they own (docs/adr/0021). Public routes take `Clients`; every other
takes `CallerClients`, so a route's signature says whether it needs a token."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPBearer

from confbook_common.auth import Caller, TokenVerifier
from confbook_common.auth.bearer import token_of
from confbook_common.errors import Unauthenticated
from confbook_common.rpc.metadata import bearer
from gateway.clients import OnBehalfOf, ServiceClients
from gateway.errors import ApiError, challenge_headers
from gateway.rate_limits import RateLimits

# Declares the scheme in /openapi.json, which gives /docs its Authorize button; the header is read below.
_BEARER_SCHEME = HTTPBearer(
    bearerFormat="JWT",
    auto_error=False,
    description="An OAuth 2.0 access token (a JWT, RFC 9068) of the configured issuer. Locally: `make token SUB=...`.",
)


def unauthenticated(message: str) -> ApiError:
    """401 with the challenge RFC 6750 asks for; the description is ours, never the client's input."""
    return ApiError(401, "UNAUTHENTICATED", message, headers=challenge_headers(401, None, message))


async def verified_caller(request: Request, response: Response) -> tuple[Caller, str]:
    """The caller and the token it showed; 401 if there is no token that counts, 429 after too many failures."""
    verifier: TokenVerifier = request.app.state.verifier
    limits: RateLimits = request.app.state.rate_limits
    address = request.client.host if request.client else "unknown"
    try:
        token = token_of(request.headers.get("authorization"))
        # A token seen before costs a hash, and no bound: only what may fail is counted against one.
        caller = verifier.cached(token)
        if caller is None:
            await limits.check_failed_authentications(address)
            # A signature check, off the event loop because it may fetch the issuer's keys.
            caller = await asyncio.to_thread(verifier.verify, token)
    except Unauthenticated as error:
        await limits.check_failed_authentications(address)
        await limits.failed_authentication(address)
        raise unauthenticated(error.message) from None
    request.state.caller = caller
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        # On the answer, and on a refusal the service gives (gateway.errors adds them there).
        request.state.rate_limit_headers = await limits.check_write(caller.subject)
        response.headers.update(request.state.rate_limit_headers)
    return caller, token


async def _caller_clients(
    request: Request, response: Response, _: Annotated[object, Depends(_BEARER_SCHEME)]
) -> OnBehalfOf:
    caller, token = await verified_caller(request, response)
    clients: ServiceClients = request.app.state.clients
    return clients.on_behalf_of(caller, (bearer(token),))


CallerClients = Annotated[OnBehalfOf, Depends(_caller_clients)]
