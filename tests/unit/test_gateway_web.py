"""The gateway's web page and docs: served from the built directory, under one strict policy on every answer,
and an unbuilt page is a clear error rather than a gateway that will not start."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from confbook_common.settings import Env
from gateway.app import create_app
from gateway.config import GatewayConfig

pytestmark = pytest.mark.unit

ISSUER = "https://sso.example.com/realms/confbook"


def client_for(web_dir: Path, **settings: str) -> TestClient:
    env = Env({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": "confbook", "WEB_DIR": str(web_dir), **settings})
    return TestClient(create_app(GatewayConfig.from_env(env)))


@pytest.fixture
def built(tmp_path: Path) -> Path:
    (tmp_path / "static").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>page</title>")
    (tmp_path / "docs.html").write_text("<!doctype html><title>docs</title>")
    (tmp_path / "static" / "app.js").write_text("console.log('page')")
    return tmp_path


def test_the_page_the_docs_and_their_files_are_served_with_a_strict_policy(built):
    client = client_for(built)
    for path, kind in (("/", "text/html"), ("/docs", "text/html"), ("/static/app.js", "javascript")):
        response = client.get(path)
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"]
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "connect-src 'self' https://sso.example.com;" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_api_s_answers_carry_the_policy_too(built):
    response = client_for(built).get("/nowhere")
    assert response.status_code == 404
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_the_page_learns_whom_to_sign_in_with(built):
    body = client_for(built, OIDC_CLIENT_ID="confbook-web").get("/config.json").json()
    assert body == {"issuer": ISSUER, "client_id": "confbook-web", "scope": "openid"}


def test_an_unbuilt_page_is_a_503_that_says_how_to_build_it(tmp_path):
    client = client_for(tmp_path / "missing")
    response = client.get("/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "WEB_PAGE_NOT_BUILT"
    assert client.get("/static/app.js").status_code == 404


def test_the_openapi_document_names_no_page_route(built):
    paths = client_for(built).get("/openapi.json").json()["paths"]
    assert not {"/", "/docs", "/config.json"} & set(paths)
