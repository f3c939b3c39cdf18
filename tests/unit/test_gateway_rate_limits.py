"""The gateway's bounds in process (no service behind it): failed authentications per address, writes per
subject; over a bound a 429 with Retry-After and the RateLimit headers, before any service is called."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from confbook_common.settings import Env
from gateway.app import create_app
from gateway.config import GatewayConfig
from tests.tokens import TokenForge, bearer

pytestmark = pytest.mark.unit

FORGE = TokenForge.generated()


@pytest.fixture
def client() -> Iterator[TestClient]:
    env = Env(
        {
            "OIDC_ISSUER": FORGE.issuer,
            "OIDC_AUDIENCE": FORGE.audience,
            "GATEWAY_RATE_LIMIT_WRITES": "2/minute",
            "GATEWAY_RATE_LIMIT_FAILED_AUTHENTICATIONS": "3/minute",
            # Nothing listens there: a call that gets through answers 503 at once.
            "CONFERENCE_GRPC_PORT": "1",
            "BOOKING_GRPC_PORT": "1",
            "WAITLIST_GRPC_PORT": "1",
        }
    )
    config = GatewayConfig.from_env(env)
    app = create_app(GatewayConfig(**{**vars(config), "call_timeout_seconds": 0.2}))
    with TestClient(app) as client:
        app.state.verifier = FORGE.verifier()  # the forge's key, without discovery
        yield client


def test_failed_authentications_are_bounded_per_address(client):
    for _ in range(3):
        assert client.get("/booking/1", headers=bearer("not-a-token")).status_code == 401
    refused = client.get("/booking/1", headers=bearer(FORGE.token("alice")))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"


def test_writes_are_bounded_per_subject(client):
    alice, bob = bearer(FORGE.token("alice")), bearer(FORGE.token("bob"))
    for remaining in ("1", "0"):
        answer = client.post("/cancel", json={"booking_id": 1}, headers=alice)
        assert answer.status_code == 503  # through to the (absent) service
        assert answer.headers["RateLimit-Remaining"] == remaining
    refused = client.post("/cancel", json={"booking_id": 1}, headers=alice)
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "RATE_LIMITED")
    assert int(refused.headers["Retry-After"]) > 0
    assert client.post("/cancel", json={"booking_id": 1}, headers=bob).status_code == 503  # bob has his own
    assert client.get("/booking/1", headers=alice).status_code == 503  # reads are not writes


def test_a_refused_token_gets_the_bearer_challenge(client):
    refused = client.get("/booking/1")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="confbook", error="invalid_token"')


def test_the_memory_storage_sweeps_at_most_every_few_seconds_and_still_expires_on_read():
    import asyncio

    from gateway.rate_limits import SweptMemoryStorage

    async def scenario() -> None:
        storage = SweptMemoryStorage("memory://")
        for subject in range(200):
            await storage.incr(f"write/{subject}", expiry=0.05)
        first_sweep = storage.timer
        for subject in range(200, 400):
            await storage.incr(f"write/{subject}", expiry=0.05)
        assert storage.timer is first_sweep  # one sweep for 400 writes, not one after each
        await asyncio.sleep(0.1)
        assert await storage.get("write/399") == 0  # expired all the same, when read

    asyncio.run(scenario())
