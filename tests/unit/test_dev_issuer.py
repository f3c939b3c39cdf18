"""The development issuer (scripts/dev_issuer.py) signs what a verifier of RFC 9068 access tokens
expects, publishes every key still valid, and keeps its keys across restarts; the stacks run it."""

from __future__ import annotations

import json
import stat
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.testclient import TestClient

from confbook_common.settings import ConfigError
from scripts import dev_issuer, sandbox
from scripts.sandbox import Infrastructure, Stack
from scripts.stack import LocalStack
from scripts.supervision import Supervisor

pytestmark = pytest.mark.unit

ISSUER = "http://127.0.0.1:8079"


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "issuer-keys.json"


@pytest.fixture
def client(keys_path: Path) -> TestClient:
    return TestClient(dev_issuer.create_app(ISSUER, keys_path))


def issue(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/token", json={"sub": "alice", **body})
    assert response.status_code == 200, response.text
    return dict(response.json())


def verify(client: TestClient, token: str, audience: str = "confbook") -> dict[str, Any]:
    """The claims of `token`, checked as a service would: the key the JWKS publishes under its kid."""
    keys = jwt.PyJWKSet.from_dict(client.get("/jwks.json").json())
    key = keys[jwt.get_unverified_header(token)["kid"]]
    return dict(jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=ISSUER))


def current_kid(keys_path: Path) -> str:
    return str(json.loads(keys_path.read_text())["keys"][-1]["kid"])


def test_discovery_says_where_the_keys_and_the_token_endpoint_are(client: TestClient) -> None:
    document = client.get("/.well-known/openid-configuration").json()

    assert document["issuer"] == ISSUER
    assert document["jwks_uri"] == f"{ISSUER}/jwks.json"
    assert document["token_endpoint"] == f"{ISSUER}/token"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["public"]
    assert document["grant_types_supported"]


def test_the_jwks_publishes_the_current_key_as_a_public_rsa_key(client: TestClient, keys_path: Path) -> None:
    (key,) = client.get("/jwks.json").json()["keys"]

    assert key["kid"] == current_kid(keys_path)
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert {"n", "e"} <= set(key) and "d" not in key  # the private exponent stays home
    assert jwt.PyJWK(key).key.key_size == 2048


@pytest.mark.parametrize(("role", "roles"), [("attendee", []), ("organizer", ["organizer"]), ("admin", ["admin"])])
def test_an_access_token_is_an_rfc_9068_jwt_for_the_audience(
    client: TestClient, keys_path: Path, role: str, roles: list[str]
) -> None:
    answer = issue(client, role=role, ttl=600)
    token = answer["access_token"]

    assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 600)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "at+jwt", "kid": current_kid(keys_path)}
    claims = verify(client, token)
    assert claims["iss"] == ISSUER and claims["sub"] == "alice" and claims["aud"] == "confbook"
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 5
    assert uuid.UUID(claims["jti"]).version == 4
    assert (claims["client_id"], claims["scope"], claims["roles"]) == ("confbook-dev", "openid", roles)


def test_each_token_has_its_own_id(client: TestClient) -> None:
    first, second = (verify(client, issue(client)["access_token"]) for _ in range(2))

    assert first["jti"] != second["jti"]


def test_an_id_token_is_for_the_client_and_is_no_access_token(client: TestClient) -> None:
    answer = issue(client, kind="id")

    assert "access_token" not in answer
    assert jwt.get_unverified_header(answer["id_token"])["typ"] == "JWT"
    claims = verify(client, answer["id_token"], audience="confbook-dev")
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == 3600


def test_the_audience_is_the_one_configured(keys_path: Path) -> None:
    client = TestClient(dev_issuer.create_app(ISSUER, keys_path, audience="tickets"))

    assert verify(client, issue(client)["access_token"], audience="tickets")["aud"] == "tickets"


def test_rotation_signs_with_a_new_key_and_keeps_the_previous_one_published(
    client: TestClient, keys_path: Path
) -> None:
    before = issue(client)["access_token"]
    old_kid = current_kid(keys_path)

    new_kid = client.post("/rotate").json()["kid"]

    assert new_kid != old_kid and new_kid == current_kid(keys_path)
    assert [key["kid"] for key in client.get("/jwks.json").json()["keys"]] == [old_kid, new_kid]
    after = issue(client)["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert verify(client, before)["sub"] == verify(client, after)["sub"] == "alice"


def test_only_the_current_key_and_the_one_before_are_kept(client: TestClient, keys_path: Path) -> None:
    kids = [client.post("/rotate").json()["kid"] for _ in range(3)]

    assert [key["kid"] for key in client.get("/jwks.json").json()["keys"]] == kids[-2:]
    assert [key["kid"] for key in json.loads(keys_path.read_text())["keys"]] == kids[-2:]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"sub": ""},
        {"sub": "   "},
        {"sub": 7},
        {"sub": "x" * 256},
        {"sub": "alice", "role": "root"},
        {"sub": "alice", "ttl": 0},
        {"sub": "alice", "ttl": 86401},
        {"sub": "alice", "ttl": "60"},
        {"sub": "alice", "ttl": True},
        {"sub": "alice", "ttl": 1.5},
        {"sub": "alice", "kind": "refresh"},
        {"sub": "alice", "scope": "admin"},
        ["alice"],
        "alice",
    ],
)
def test_a_bad_request_is_a_400_saying_why(client: TestClient, body: object) -> None:
    response = client.post("/token", json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["message"]


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe"])
def test_a_body_that_is_not_json_is_a_400(client: TestClient, content: bytes) -> None:
    response = client.post("/token", content=content, headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_the_keys_file_is_private_and_in_the_shape_readers_expect(client: TestClient, keys_path: Path) -> None:
    client.post("/rotate")

    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600
    records = json.loads(keys_path.read_text())["keys"]
    assert [set(record) for record in records] == [{"kid", "private_key_pem", "created_at"}] * 2
    assert records[0]["created_at"] <= records[1]["created_at"]
    # A test can sign a token of its own with the current key, and the issuer's JWKS verifies it.
    crafted = jwt.encode(
        {"iss": ISSUER, "sub": "mallory", "aud": "confbook", "exp": int(time.time()) + 60},
        records[-1]["private_key_pem"],
        algorithm="RS256",
        headers={"typ": "at+jwt", "kid": records[-1]["kid"]},
    )
    assert verify(client, crafted)["sub"] == "mallory"


def test_a_restarted_issuer_signs_with_the_same_key(client: TestClient, keys_path: Path) -> None:
    token = issue(client)["access_token"]
    kid = current_kid(keys_path)

    restarted = TestClient(dev_issuer.create_app(ISSUER, keys_path))

    assert jwt.get_unverified_header(issue(restarted)["access_token"])["kid"] == kid
    assert verify(restarted, token)["sub"] == "alice"


def test_a_key_older_than_the_rotation_period_is_replaced_when_the_issuer_starts(keys_path: Path) -> None:
    dev_issuer.create_app(ISSUER, keys_path)
    keys = json.loads(keys_path.read_text())
    keys["keys"][-1]["created_at"] = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    keys_path.write_text(json.dumps(keys))
    old_kid = current_kid(keys_path)

    with TestClient(dev_issuer.create_app(ISSUER, keys_path, rotate_seconds=3600)) as client:
        deadline = time.monotonic() + 10
        while current_kid(keys_path) == old_kid and time.monotonic() < deadline:
            time.sleep(0.05)
        kids = [key["kid"] for key in client.get("/jwks.json").json()["keys"]]

    assert kids[0] == old_kid and len(kids) == 2 and kids[1] == current_kid(keys_path)


def test_a_file_that_is_not_a_key_file_is_refused_with_a_clear_error(keys_path: Path) -> None:
    keys_path.parent.mkdir(parents=True)
    keys_path.write_text("{}")

    with pytest.raises(ConfigError, match="not a key file"):
        dev_issuer.create_app(ISSUER, keys_path)


# --- the stacks run it --------------------------------------------------------------------------------------------


def test_make_up_runs_one_issuer_first_and_tells_every_program_about_it(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, {"DEV_ISSUER_PORT": "18079", "WORKERS": "2"})

    programs = stack.programs()

    assert programs[0].name == "issuer" and programs[0].workers == 1
    assert "priority = 100" in Supervisor(tmp_path, tmp_path / "logs")._config(programs[:1])
    assert stack.issuer_url == "http://127.0.0.1:18079" and stack.audience == "confbook"
    assert stack.issuer_keys_path == tmp_path / "issuer-keys.json"
    assert stack._issuer_settings() == {
        "OIDC_ISSUER": "http://127.0.0.1:18079",
        "OIDC_AUDIENCE": "confbook",
        "DEV_ISSUER_KEYS": str(tmp_path / "issuer-keys.json"),
    }


def test_make_up_with_an_issuer_of_its_own_runs_none(tmp_path: Path) -> None:
    environment = {"OIDC_ISSUER": "https://login.example.com/", "OIDC_AUDIENCE": "api://confbook"}
    stack = LocalStack(tmp_path, environment)

    assert all(program.name != "issuer" for program in stack.programs())
    assert stack._issuer_settings() == environment


def test_make_up_refuses_an_issuer_without_an_audience_before_starting_anything(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, {"OIDC_ISSUER": "https://login.example.com/"})

    with pytest.raises(ConfigError, match="OIDC_AUDIENCE"):
        stack.up()
    assert list(tmp_path.iterdir()) == []


def test_the_throw_away_stack_runs_the_issuer_on_a_port_of_its_own(tmp_path: Path) -> None:
    infrastructure = Infrastructure("postgresql://u:p@127.0.0.1:1/db", "amqp://u:p@127.0.0.1:2/%2F", tmp_path, False)
    stack = Stack(infrastructure, window_seconds=3, log_dir=tmp_path / "logs", replicas=2)

    env = stack.env()

    assert stack.ports["issuer"] not in {port for name, port in stack.ports.items() if name != "issuer"}
    assert env["OIDC_ISSUER"] == stack.issuer_url == f"http://127.0.0.1:{stack.ports['issuer']}"
    assert env["OIDC_AUDIENCE"] == stack.audience == "confbook"
    assert env["DEV_ISSUER_KEYS"] == str(stack.issuer_keys_path) == str(tmp_path / "issuer-keys.json")
    assert stack.instances("issuer") == ["issuer"] and stack.instances("booking") == ["booking", "booking-2"]
    # A supervised stack given the same settings names its own issuer on that port.
    supervised = LocalStack(tmp_path / "stack", sandbox.environment(infrastructure, stack.ports, 3))
    assert supervised.dev_issuer and supervised.issuer_url == stack.issuer_url


# --- the web page's code flow ---------------------------------------------------------------------------------

WEB_PAGE = "http://127.0.0.1:8080/"
VERIFIER = "v" * 43 + "-verifier_of_the_web_page"


def authorization(**overrides: str) -> dict[str, str]:
    return {
        "client_id": dev_issuer.CLIENT_ID,
        "redirect_uri": WEB_PAGE,
        "response_type": "code",
        "scope": "openid",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": dev_issuer.pkce_challenge(VERIFIER),
        "code_challenge_method": "S256",
        **overrides,
    }


def sign_in(client: TestClient, subject: str = "alice", role: str = "organizer", **overrides: str) -> str:
    """The code the sign-in form's answer sends to the web page."""
    response = client.post(
        "/authorize", data={**authorization(**overrides), "sub": subject, "role": role}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(WEB_PAGE + "?")
    query = dict(httpx.QueryParams(location.split("?", 1)[1]))
    assert query["state"] == "s1" and query["iss"] == ISSUER
    return query["code"]


def redeem(client: TestClient, code: str, verifier: str = VERIFIER, redirect_uri: str = WEB_PAGE) -> Any:
    return client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": dev_issuer.CLIENT_ID,
        },
        headers={"origin": "http://127.0.0.1:8080"},
    )


def test_discovery_names_the_code_flow_with_pkce(client):
    document = client.get("/.well-known/openid-configuration").json()
    assert document["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert "authorization_code" in document["grant_types_supported"]
    assert document["code_challenge_methods_supported"] == ["S256"]


def test_the_sign_in_page_asks_for_a_subject_and_a_role_under_a_strict_policy(client):
    response = client.get("/authorize", params=authorization())
    assert response.status_code == 200
    assert '<label for="sub">Subject</label>' in response.text and 'value="organizer"' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "form-action 'self' http://127.0.0.1:8080 http://localhost:8080" in policy


def test_a_code_with_its_verifier_gives_an_access_token_and_an_id_token_once(client):
    code = sign_in(client, "alice", "organizer")
    response = redeem(client, code)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:8080"
    body = response.json()
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    identity = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert (access["sub"], access["aud"], access["roles"]) == ("alice", dev_issuer.DEFAULT_AUDIENCE, ["organizer"])
    assert (identity["sub"], identity["aud"], identity["nonce"]) == ("alice", dev_issuer.CLIENT_ID, "n1")
    again = redeem(client, code)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("verifier", "redirect_uri"),
    [("w" * 60, WEB_PAGE), (VERIFIER, "http://localhost:8080/")],
    ids=["another verifier", "another redirect_uri"],
)
def test_a_code_is_refused_with_another_verifier_or_redirect_and_is_then_spent(client, verifier, redirect_uri):
    code = sign_in(client)
    refused = redeem(client, code, verifier, redirect_uri)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert redeem(client, code).status_code == 400


def test_an_expired_code_is_refused(client, monkeypatch):
    code = sign_in(client)
    later = time.monotonic() + dev_issuer.CODE_SECONDS + 1
    monkeypatch.setattr(dev_issuer.time, "monotonic", lambda: later)
    assert redeem(client, code).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "http://evil.example/"},
        {"redirect_uri": "http://127.0.0.1:8081/"},
        {"client_id": "someone-else"},
        {"code_challenge_method": "plain"},
        {"code_challenge": "short"},
        {"response_type": "token"},
    ],
    ids=["foreign redirect", "another port", "unknown client", "plain pkce", "bad challenge", "implicit"],
)
def test_an_authorization_request_out_of_bounds_is_refused_without_a_redirect(client, overrides):
    response = client.get("/authorize", params=authorization(**overrides), follow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_the_token_endpoint_answers_no_other_origin(client):
    code = sign_in(client)
    response = client.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_PAGE, "code_verifier": VERIFIER},
        headers={"origin": "http://evil.example"},
    )
    assert "access-control-allow-origin" not in response.headers
