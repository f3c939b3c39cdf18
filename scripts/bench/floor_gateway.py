"""The framework floor's gateway: the real one (`python -m gateway`, its workers, server and middleware), with
its token check left out, so that the floor stays what it was before tokens and (c) against it shows what the
product's own gateway pays, verification included.

Usage: python -m scripts.bench.floor_gateway   (settings from the environment, as the gateway's)

Every route that needs a caller gets one fixed caller, with no token to pass on: the floor's no-op server asks
for none.
"""

from __future__ import annotations

import runpy

from confbook_common import metrics_dir

# As gateway/__main__.py: before anything imports prometheus_client.
metrics_dir.prepare("gateway")

from fastapi import FastAPI, Request  # noqa: E402

from confbook_common.auth import Caller, Role  # noqa: E402
from gateway import app as gateway_app  # noqa: E402
from gateway import auth  # noqa: E402
from gateway.clients import OnBehalfOf, ServiceClients  # noqa: E402
from gateway.config import GatewayConfig  # noqa: E402

FLOOR_CALLER = Caller(subject="bench-floor", roles=frozenset({Role.ATTENDEE, Role.ADMIN}), expires_at=float("inf"))
_create_app = gateway_app.create_app


async def _fixed_caller(request: Request) -> OnBehalfOf:
    clients: ServiceClients = request.app.state.clients
    return clients.on_behalf_of(FLOOR_CALLER, ())


def create_app(config: GatewayConfig) -> FastAPI:
    """The gateway's app, whose routes that need a caller take FLOOR_CALLER instead of verifying a token."""
    app = _create_app(config)
    app.dependency_overrides[auth._caller_clients] = _fixed_caller
    return app


def main() -> None:
    # gateway/__main__.py takes create_app from gateway.app when it runs, so it serves this one.
    gateway_app.create_app = create_app
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
