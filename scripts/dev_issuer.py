"""A development OpenID Connect issuer: signed access tokens (RFC 9068) and ID tokens for `make up`,
the tests and the benchmark.

FOR DEVELOPMENT ONLY. It listens on loopback and asks nobody who they are: anyone who can reach
127.0.0.1 on this machine can mint a token for any subject, admin included. Where tokens must mean
something, set OIDC_ISSUER and OIDC_AUDIENCE to a real issuer instead (`make up` then starts none).

  GET  /.well-known/openid-configuration   discovery: where the keys and the endpoints are
  GET  /jwks.json                          the public keys of every key still valid
  GET  /authorize                          the sign-in page of the web page's code flow: pick a subject and a role
  POST /token  {"sub", "role", "ttl", "kind"}   a token signed with the current key
  POST /token  grant_type=authorization_code    the code flow's exchange (RFC 6749 4.1.3, PKCE S256 checked)
  POST /rotate                             a new current key; the previous one stays published

Settings: DEV_ISSUER_PORT [8079] (the issuer is http://127.0.0.1:<port>, which is what `iss`
says), DEV_ISSUER_KEYS [.run/stack/issuer-keys.json], DEV_ISSUER_ROTATE_SECONDS [86400],
OIDC_AUDIENCE [confbook], GATEWAY_PORT [8080] (the web page at http://127.0.0.1:<port>/ and
http://localhost:<port>/ is the only place a code is sent to, and the only origin the endpoints answer
across origins).

The keys file, readable by its owner only, is {"keys": [{"kid", "private_key_pem", "created_at"}]},
newest last, at most two: a restarted issuer signs with the same key, and tests may read it to sign
tokens of their own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import json
import logging
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from confbook_common.processes import end_with_parent, is_worker
from confbook_common.settings import ConfigError, Env

log = logging.getLogger(__name__)

DEFAULT_PORT = 8079
DEFAULT_AUDIENCE = "confbook"
DEFAULT_ROTATE_SECONDS = 86400
KEYS_FILE_NAME = "issuer-keys.json"
DEFAULT_KEYS_PATH = Path(__file__).resolve().parent.parent / ".run" / "stack" / KEYS_FILE_NAME
CLIENT_ID = "confbook-dev"
ALGORITHM = "RS256"
# What each role puts in the `roles` claim; an attendee is anyone with a valid token.
ROLES: dict[str, list[str]] = {"attendee": [], "organizer": ["organizer"], "admin": ["admin"]}
MAX_TTL_SECONDS = 86400
MAX_SUBJECT_LENGTH = 255  # what the services accept in `sub`
# The current key and the one before it: a token signed just before a rotation still verifies.
KEPT_KEYS = 2
# /token takes a JSON body and no client credentials, which is no OAuth grant: a private name says so.
GRANT_TYPE = "urn:confbook:dev-issuer:token"
# The code flow: a code is good once, for this long; its tokens for the usual hour.
CODE_GRANT = "authorization_code"
CODE_SECONDS = 60
CODE_TOKEN_TTL_SECONDS = 3600
# RFC 7636 4.1: a verifier (so an S256 challenge, base64url of 32 bytes) is 43 to 128 characters.
PKCE_CHALLENGE_LENGTH = 43


def issuer_url(port: int) -> str:
    """The issuer at `port`: exactly what its tokens' `iss` says and what OIDC_ISSUER must be."""
    return f"http://127.0.0.1:{port}"


def web_page_redirects(gateway_port: int) -> tuple[str, ...]:
    """Where the code flow may send a code: the web page the gateway on `gateway_port` serves, by either
    loopback name, and nowhere else."""
    return tuple(f"http://{host}:{gateway_port}/" for host in ("127.0.0.1", "localhost"))


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


# --- keys ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    created_at: datetime

    @classmethod
    def new(cls) -> SigningKey:
        now = datetime.now(UTC)
        # Dated, so that a person reading the JWKS or a token's header sees which key is newer.
        kid = f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048), now)

    @classmethod
    def from_record(cls, record: dict[str, str]) -> SigningKey:
        private_key = serialization.load_pem_private_key(record["private_key_pem"].encode(), password=None)
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError(f"key {record['kid']} is not an RSA key")
        return cls(record["kid"], private_key, datetime.fromisoformat(record["created_at"]))

    def record(self) -> dict[str, str]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {"kid": self.kid, "private_key_pem": pem.decode(), "created_at": self.created_at.isoformat()}

    def jwk(self) -> dict[str, Any]:
        public = dict(RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True))
        public.pop("key_ops", None)  # RFC 7517: `use` or `key_ops`, not both
        return {**public, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


class KeyRing:
    """The signing keys, newest last, kept in `path` so that a restarted issuer signs with the same key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys = self._load()
        if not self.keys:
            self.rotate()

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self) -> SigningKey:
        self.keys = [*self.keys, SigningKey.new()][-KEPT_KEYS:]
        self._save()
        log.info("signing with key %s; publishing %s", self.current.kid, ", ".join(key.kid for key in self.keys))
        return self.current

    def _load(self) -> list[SigningKey]:
        try:
            records = json.loads(self.path.read_text())["keys"]
            return [SigningKey.from_record(record) for record in records][-KEPT_KEYS:]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as error:
            problem = f"{self.path} is not a key file of the dev issuer ({error}); remove it to start anew"
            raise ConfigError(problem) from None

    def _save(self) -> None:
        # Written whole under another name, then renamed: a reader never sees half a file. mkstemp
        # creates it readable by its owner only, as the private keys in it must be.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, draft = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(descriptor, "w") as file:
                json.dump({"keys": [key.record() for key in self.keys]}, file, indent=2)
                file.flush()
                os.fsync(file.fileno())
            os.replace(draft, self.path)
        except BaseException:
            Path(draft).unlink(missing_ok=True)
            raise


# --- tokens ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    subject: str
    role: str = "attendee"
    ttl: int = 3600
    kind: str = "access"  # or "id"

    @classmethod
    def parse(cls, body: object) -> TokenRequest:
        """ValueError, saying what is wrong, unless `body` is a valid request."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        if unknown := sorted(set(body) - {"sub", "role", "ttl", "kind"}):
            raise ValueError(f"unknown fields: {', '.join(unknown)}")
        subject, role = body.get("sub"), body.get("role", "attendee")
        ttl, kind = body.get("ttl", 3600), body.get("kind", "access")
        if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT_LENGTH:
            raise ValueError(f"sub must be a string of 1 to {MAX_SUBJECT_LENGTH} characters")
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if type(ttl) is not int or not 1 <= ttl <= MAX_TTL_SECONDS:  # `type`: true is no number of seconds
            raise ValueError(f"ttl must be an integer number of seconds from 1 to {MAX_TTL_SECONDS}")
        if kind not in ("access", "id"):
            raise ValueError("kind must be access or id")
        return cls(subject, role, ttl, kind)


def sign(request: TokenRequest, key: SigningKey, issuer: str, audience: str, *, nonce: str | None = None) -> str:
    """An access token as RFC 9068 has it (typ at+jwt, for `audience`), or an ID token (for the client)."""
    issued_at = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": request.subject,
        "aud": audience if request.kind == "access" else CLIENT_ID,
        "exp": issued_at + request.ttl,
        "iat": issued_at,
        "nbf": issued_at,
        "jti": str(uuid.uuid4()),
        "roles": list(ROLES[request.role]),
    }
    if request.kind == "access":
        claims |= {"client_id": CLIENT_ID, "scope": "openid"}
    elif nonce is not None:
        claims["nonce"] = nonce
    header = {"typ": "at+jwt" if request.kind == "access" else "JWT", "kid": key.kid}
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers=header)


# --- the authorization code flow (RFC 6749 4.1, with PKCE, RFC 7636) -------------------------------------------


class AuthorizeError(ValueError):
    """An authorization request that cannot be answered by a redirect (the redirect itself is in doubt)."""


@dataclass(frozen=True)
class AuthorizeRequest:
    """What the web page asked for at /authorize, checked; carried through the sign-in form unchanged."""

    redirect_uri: str
    state: str
    code_challenge: str
    nonce: str | None

    @classmethod
    def parse(cls, params: dict[str, str], redirects: tuple[str, ...]) -> AuthorizeRequest:
        if params.get("client_id") != CLIENT_ID:
            raise AuthorizeError(f"unknown client_id; this issuer knows {CLIENT_ID}")
        if params.get("redirect_uri") not in redirects:
            raise AuthorizeError(f"redirect_uri must be one of {', '.join(redirects)}")
        if params.get("response_type") != "code":
            raise AuthorizeError("response_type must be code")
        if params.get("code_challenge_method") != "S256":
            raise AuthorizeError("PKCE is required: code_challenge_method must be S256")
        challenge = params.get("code_challenge", "")
        if len(challenge) != PKCE_CHALLENGE_LENGTH or not _is_base64url(challenge):
            raise AuthorizeError("code_challenge must be the base64url SHA-256 of the code verifier")
        if "openid" not in params.get("scope", "").split():
            raise AuthorizeError("scope must include openid")
        return cls(params["redirect_uri"], params.get("state", ""), challenge, params.get("nonce") or None)

    def fields(self) -> dict[str, str]:
        """As the sign-in form carries it back."""
        fields = {
            "client_id": CLIENT_ID,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": "openid",
            "state": self.state,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        return fields | ({"nonce": self.nonce} if self.nonce else {})


def _is_base64url(text: str) -> bool:
    return all(char.isascii() and (char.isalnum() or char in "-_") for char in text)


def pkce_challenge(verifier: str) -> str:
    """The S256 challenge of a code verifier (RFC 7636 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class IssuedCode:
    request: AuthorizeRequest
    wanted: TokenRequest
    expires_at: float


class Codes:
    """Codes given out and not yet used: each is good once, for CODE_SECONDS."""

    def __init__(self) -> None:
        self._codes: dict[str, IssuedCode] = {}

    def issue(self, request: AuthorizeRequest, wanted: TokenRequest) -> str:
        now = time.monotonic()
        self._codes = {code: issued for code, issued in self._codes.items() if issued.expires_at > now}
        code = secrets.token_urlsafe(32)
        self._codes[code] = IssuedCode(request, wanted, now + CODE_SECONDS)
        return code

    def redeem(self, code: str, redirect_uri: str, verifier: str) -> IssuedCode:
        """The code's grant, once; ValueError if it is unknown, used, expired, or the checks fail."""
        issued = self._codes.pop(code, None)  # gone whatever follows: a code that failed a check is spent
        if issued is None or issued.expires_at <= time.monotonic():
            raise ValueError("the code is unknown, used or expired")
        if redirect_uri != issued.request.redirect_uri:
            raise ValueError("redirect_uri differs from the authorization request's")
        if not 43 <= len(verifier) <= 128 or pkce_challenge(verifier) != issued.request.code_challenge:
            raise ValueError("code_verifier does not match the code_challenge")
        return issued


def _sign_in_page(request: AuthorizeRequest, issuer: str, problem: str = "") -> str:
    hidden = "\n".join(
        f'    <input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name, value in request.fields().items()
    )
    roles = "\n".join(
        f'      <label><input type="radio" name="role" value="{role}"{checked}> {role}</label>'
        for role, checked in ((role, " checked" if role == "attendee" else "") for role in ROLES)
    )
    alert = f'  <p role="alert">{html.escape(problem)}</p>\n' if problem else ""
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign in: development issuer</title>
</head>
<body>
<main>
  <h1>Sign in</h1>
  <p>Development issuer at {html.escape(issuer)}: anyone may be anyone here. Pick who you are.</p>
{alert}  <form method="post" action="/authorize">
{hidden}
    <p><label for="sub">Subject</label><br>
      <input id="sub" name="sub" required maxlength="{MAX_SUBJECT_LENGTH}" autocomplete="username" autofocus></p>
    <fieldset>
      <legend>Role</legend>
{roles}
    </fieldset>
    <p><button type="submit">Sign in</button></p>
  </form>
</main>
</body>
</html>
"""


# --- the app ---------------------------------------------------------------------------------------------------


def create_app(
    issuer: str,
    keys_path: Path,
    audience: str = DEFAULT_AUDIENCE,
    rotate_seconds: int = DEFAULT_ROTATE_SECONDS,
    redirects: tuple[str, ...] = web_page_redirects(8080),
) -> Starlette:
    """The issuer `issuer` (its own URL), signing with the keys in `keys_path` (made if missing), sending
    codes only to `redirects`."""
    ring = KeyRing(keys_path)
    codes = Codes()
    origins = sorted({_origin(url) for url in redirects})
    # The sign-in page has no script and no style; its form posts here and redirects to the web page.
    page_csp = f"default-src 'none'; form-action 'self' {' '.join(origins)}; frame-ancestors 'none'; base-uri 'none'"

    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}/jwks.json",
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "id_token_signing_alg_values_supported": [ALGORITHM],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "scopes_supported": ["openid"],
                "grant_types_supported": [CODE_GRANT, GRANT_TYPE],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
            }
        )

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse({"keys": [key.jwk() for key in ring.keys]})

    def page(content: str, status_code: int = 200) -> HTMLResponse:
        headers = {"content-security-policy": page_csp, "cache-control": "no-store", "referrer-policy": "no-referrer"}
        return HTMLResponse(content, status_code=status_code, headers=headers)

    async def authorize(request: Request) -> Response:
        fields = dict(request.query_params) if request.method == "GET" else _form(await request.body())
        try:
            wanted = AuthorizeRequest.parse(fields, redirects)
        except AuthorizeError as error:
            # Not sent back to a redirect_uri that may not be the web page's (RFC 6749 4.1.2.1).
            return page(f"<!doctype html><title>Sign-in refused</title><p>{html.escape(str(error))}</p>", 400)
        if request.method == "GET":
            return page(_sign_in_page(wanted, issuer))
        try:
            grant = TokenRequest.parse({"sub": fields.get("sub", "").strip(), "role": fields.get("role", "attendee")})
        except ValueError as error:
            return page(_sign_in_page(wanted, issuer, str(error)), 400)
        code = codes.issue(wanted, grant)
        query = httpx.QueryParams({"code": code, "state": wanted.state, "iss": issuer})
        return RedirectResponse(f"{wanted.redirect_uri}?{query}", status_code=303)

    def exchange(fields: dict[str, str]) -> JSONResponse:
        if fields.get("client_id", CLIENT_ID) != CLIENT_ID:
            return _oauth_error("invalid_client", f"unknown client_id; this issuer knows {CLIENT_ID}")
        try:
            issued = codes.redeem(
                fields.get("code", ""), fields.get("redirect_uri", ""), fields.get("code_verifier", "")
            )
        except ValueError as error:
            return _oauth_error("invalid_grant", str(error))
        access = TokenRequest(issued.wanted.subject, issued.wanted.role, CODE_TOKEN_TTL_SECONDS, "access")
        identity = TokenRequest(issued.wanted.subject, issued.wanted.role, CODE_TOKEN_TTL_SECONDS, "id")
        return JSONResponse(
            {
                "access_token": sign(access, ring.current, issuer, audience),
                "id_token": sign(identity, ring.current, issuer, audience, nonce=issued.request.nonce),
                "token_type": "Bearer",
                "expires_in": CODE_TOKEN_TTL_SECONDS,
                "scope": "openid",
            },
            headers={"cache-control": "no-store"},
        )

    async def token(request: Request) -> JSONResponse:
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            fields = _form(await request.body())
            if fields.get("grant_type") != CODE_GRANT:
                return _oauth_error("unsupported_grant_type", f"a form's grant_type must be {CODE_GRANT}")
            return exchange(fields)
        try:
            body = json.loads(await request.body())
        except ValueError:  # not JSON, or not UTF-8
            return _invalid("the body must be a JSON object")
        try:
            wanted = TokenRequest.parse(body)
        except ValueError as error:
            return _invalid(str(error))
        field = "access_token" if wanted.kind == "access" else "id_token"
        signed = sign(wanted, ring.current, issuer, audience)
        return JSONResponse({field: signed, "token_type": "Bearer", "expires_in": wanted.ttl})

    async def rotate(request: Request) -> JSONResponse:
        return JSONResponse({"kid": ring.rotate().kid})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        timer = asyncio.create_task(_rotate_when_due(ring, rotate_seconds))
        try:
            yield
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    routes = [
        Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/jwks.json", jwks, methods=["GET"]),
        Route("/authorize", authorize, methods=["GET", "POST"]),
        Route("/token", token, methods=["POST"]),
        Route("/rotate", rotate, methods=["POST"]),
    ]
    # The web page, at another origin, reads the discovery document and redeems its code from the browser.
    cors = Middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"], allow_headers=["*"])
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[cors])
    app.state.keys = ring
    return app


def _form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body, the first value of each field."""
    return {name: value for name, value in reversed(httpx.QueryParams(body.decode("utf-8", "replace")).multi_items())}


def _oauth_error(error: str, description: str) -> JSONResponse:
    """A token endpoint's error as RFC 6749 5.2 has it."""
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _invalid(message: str) -> JSONResponse:
    """The gateway's error shape, so that a client of both reads one."""
    return JSONResponse({"error": {"code": "VALIDATION_ERROR", "message": message}}, status_code=400)


async def _rotate_when_due(ring: KeyRing, rotate_seconds: int) -> None:
    """Rotate once the current key is `rotate_seconds` old, counted from when it was made: a key kept
    across restarts, or one /rotate made, is not used longer, nor replaced sooner."""
    while True:
        due = ring.current.created_at + timedelta(seconds=rotate_seconds)
        wait = (due - datetime.now(UTC)).total_seconds()
        if wait <= 0:
            ring.rotate()
        else:
            await asyncio.sleep(wait)


# --- for the stacks, the tests and `make token` ----------------------------------------------------------------


class IssuerError(Exception):
    """The dev issuer refused a request; the message says why."""


def request_token(url: str, subject: str, role: str = "attendee", ttl: int = 3600, *, kind: str = "access") -> str:
    """A token from the dev issuer at `url`; IssuerError if it refuses, httpx.HTTPError if it cannot be reached."""
    response = httpx.post(f"{url}/token", json={"sub": subject, "role": role, "ttl": ttl, "kind": kind}, timeout=10)
    if response.status_code != 200:
        raise IssuerError(f"{url}/token answered {response.status_code}: {response.text}")
    return str(response.json()["access_token" if kind == "access" else "id_token"])


def discovery_url(url: str) -> str:
    return f"{url}/.well-known/openid-configuration"


def command() -> list[str]:
    return [sys.executable, "-m", "scripts.dev_issuer"]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    env = Env()
    port = env.port("DEV_ISSUER_PORT", DEFAULT_PORT)
    keys_path = Path(env.text("DEV_ISSUER_KEYS", str(DEFAULT_KEYS_PATH)))
    audience = env.text("OIDC_AUDIENCE", DEFAULT_AUDIENCE)
    rotate_seconds = env.integer("DEV_ISSUER_ROTATE_SECONDS", DEFAULT_ROTATE_SECONDS, minimum=1)
    redirects = web_page_redirects(env.port("GATEWAY_PORT", 8080))
    if is_worker():  # under supervisord, as the services' workers are: never outlive it
        end_with_parent(grace_seconds=5)
    app = create_app(issuer_url(port), keys_path, audience, rotate_seconds, redirects)
    log.info("dev issuer %s for audience %s, keys in %s (development only)", issuer_url(port), audience, keys_path)
    # Loopback only, whatever LISTEN_HOST says: it mints tokens for anyone who asks.
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="info")


if __name__ == "__main__":
    main()
