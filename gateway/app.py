"""Assembles the gateway: routes, error handling, body limits, gRPC channels."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from confbook_common.auth import TokenVerifier
from gateway.body_limit import JsonBodyMiddleware
from gateway.clients import ServiceClients
from gateway.config import GatewayConfig
from gateway.edge import RequestEdgeMiddleware
from gateway.errors import install_error_handlers
from gateway.observation import ObservationMiddleware
from gateway.rate_limits import RateLimits
from gateway.routes import router
from gateway.web import SecurityHeadersMiddleware, install_web

DESCRIPTION = """Book seats at conferences. A full conference puts you on its waitlist; when a seat
frees up, the first in line is offered it and has a limited time to confirm.

Every request but the public ones (reading conferences, health, these docs) carries an OAuth 2.0
access token: `Authorization: Bearer <token>` (the Authorize button below). Locally, `make token
SUB=<subject> ROLE=attendee|organizer|admin` prints one.

Every error answers with `{"error": {"code": "...", "message": "..."}}`."""


def create_app(config: GatewayConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clients = ServiceClients(config)
        app.state.verifier = TokenVerifier(config.token_rules)
        app.state.rate_limits = RateLimits(config.rate_limits)
        warmup = asyncio.create_task(_fetch_keys(app.state.verifier))
        yield
        warmup.cancel()
        await app.state.clients.close()

    # No redirect of a path with a trailing slash to the one without: "/conference/a%2F" names the
    # conference "a/" (refused), not "a", and no endpoint ends in a slash.
    # /docs is the gateway's own page (gateway/web.py): FastAPI's loads Swagger UI from a CDN, by an inline script.
    app = FastAPI(
        title="Conference booking",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(router)
    install_web(app, issuer=config.token_rules.issuer, client_id=config.oidc_client_id, web_dir=config.web_dir)
    install_error_handlers(app)
    app.add_middleware(JsonBodyMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(RequestEdgeMiddleware)  # outside the others: it sees every exception
    app.add_middleware(ObservationMiddleware)  # it times everything below
    # Outermost: even the edge's plain 500 carries the headers.
    app.add_middleware(SecurityHeadersMiddleware, issuer=config.token_rules.issuer)
    _document_400_instead_of_422(app)
    return app


async def _fetch_keys(verifier: TokenVerifier) -> None:
    """The issuer's keys fetched as the process starts, not on its first request (as the services do)."""
    while not await asyncio.to_thread(verifier.keys.fetch_now):
        await asyncio.sleep(1.0)


def _document_400_instead_of_422(app: FastAPI) -> None:
    """FastAPI documents request validation failures as 422; this API answers them with 400 (its own
    422, a reused Idempotency-Key, stays)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for path in schema["paths"].values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                        responses.pop("422")
            for unused in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
