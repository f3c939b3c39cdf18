"""The gateway's edge in process (no service behind it): request ids, plain 500s, Allow on 405."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Route

from confbook_common.settings import Env
from gateway.app import create_app
from gateway.config import GatewayConfig

pytestmark = pytest.mark.unit

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    app = create_app(GatewayConfig.from_env(Env({"OIDC_ISSUER": "https://issuer.test", "OIDC_AUDIENCE": "confbook"})))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    return app


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_every_405_names_the_methods_the_path_allows(app, client):
    checked = 0
    allowed: dict[str, set[str]] = {}  # a path may be served by several routes, one per method
    for route in app.router.routes:
        if isinstance(route, Route) and route.methods:
            allowed.setdefault(route.path, set()).update(route.methods)
    for template, methods in allowed.items():
        path = template.replace("{name}", "x").replace("{user_id}", "x").replace("{booking_id}", "1")
        for method in METHODS - methods:
            response = client.request(method, path)
            assert response.status_code == 405, (method, path)
            assert set(response.headers["allow"].split(", ")) == methods, (method, path)
            assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
            checked += 1
    assert checked > 30


def test_an_unexpected_exception_is_a_plain_500_logged_with_the_request_id(client, caplog):
    with caplog.at_level(logging.ERROR):
        response = client.get("/boom", headers={"X-Request-Id": "trace-42"})
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "INTERNAL_ERROR", "message": "internal error"}}
    assert response.headers["x-request-id"] == "trace-42"
    assert "secret" not in response.text
    logged = [record for record in caplog.records if "trace-42" in record.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_the_connection_survives_a_500(client):
    assert client.get("/boom").status_code == 500
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("sent", ["abc-123", "0f8e2c1a9b7d4e6f8a1b2c3d4e5f6a7b", "a.b:c_d"])
def test_a_sane_request_id_comes_back(client, sent):
    assert client.get("/healthz", headers={"X-Request-Id": sent}).headers["x-request-id"] == sent


@pytest.mark.parametrize("sent", ["", "a" * 65, "has space", "a/b", "ünï", "<script>"])
def test_any_other_request_id_is_replaced_by_a_new_one(client, sent):
    answered = client.get("/healthz", headers={"X-Request-Id": sent.encode("utf-8")}).headers["x-request-id"]
    assert answered != sent
    assert 1 <= len(answered) <= 64 and answered.isalnum()


@pytest.mark.parametrize(("method", "path"), [("GET", "/healthz"), ("GET", "/no/such/path"), ("POST", "/book")])
def test_every_answer_carries_a_request_id(client, method, path):
    response = client.request(method, path, content=b"{")
    assert response.headers["x-request-id"]
