"""Access tokens made to order, for tests: well-formed ones, and each way a token can be wrong.

A TokenForge signs with a private key, either its own (unit tests verify against it directly) or the
development issuer's (end-to-end tests, where the stack fetches the public key by discovery).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from confbook_common.auth import TokenRules, TokenVerifier
from confbook_common.auth.keys import SigningKey

ROLE_CLAIMS = {"attendee": [], "organizer": ["organizer"], "admin": ["admin"]}


@dataclass
class TokenForge:
    private_key: rsa.RSAPrivateKey
    kid: str
    issuer: str
    audience: str

    @classmethod
    def generated(cls, issuer: str = "https://issuer.test", audience: str = "confbook") -> TokenForge:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), "test-key", issuer, audience)

    @classmethod
    def of_issuer_keys(cls, keys_file: Path, issuer: str, audience: str) -> TokenForge:
        """Signs as the development issuer does, with its current key."""
        newest = json.loads(keys_file.read_text())["keys"][-1]
        key = serialization.load_pem_private_key(newest["private_key_pem"].encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(key, newest["kid"], issuer, audience)

    def claims(self, subject: str, role: str = "attendee", ttl: int = 300) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "exp": now + ttl,
            "iat": now,
            "nbf": now,
            "jti": str(uuid.uuid4()),
            "client_id": "confbook-test",
            "roles": ROLE_CLAIMS[role],
        }

    def token(
        self,
        subject: str,
        role: str = "attendee",
        *,
        ttl: int = 300,
        claims: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        """A signed access token; `claims` and `header` override or add (a header None is left out),
        `drop` removes claims."""
        payload = {**self.claims(subject, role, ttl), **(claims or {})}
        for name in drop:
            payload.pop(name, None)
        headers = {"typ": "at+jwt", "kid": self.kid, **(header or {})}
        headers = {name: value for name, value in headers.items() if value is not None}  # None: left out
        return jwt.encode(payload, self.private_key, algorithm="RS256", headers=headers)

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verifier(self, **rules: Any) -> TokenVerifier:
        """A verifier that knows this forge's key without fetching it."""
        return TokenVerifier(TokenRules(issuer=self.issuer, audience=self.audience, **rules), keys=_Known(self))


class _Known:
    def __init__(self, forge: TokenForge) -> None:
        self._keys = {forge.kid: SigningKey(forge.private_key.public_key(), "RS256")}

    def key(self, kid: str) -> SigningKey | None:
        return self._keys.get(kid)

    known = True

    def fetch_now(self) -> bool:
        return True


def unsigned(claims: Mapping[str, Any], header: Mapping[str, Any] | None = None) -> str:
    """`alg: none`: a token with no signature at all."""

    def part(value: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'at+jwt', **(header or {})})}.{part(claims)}."


def tampered(token: str, **changes: Any) -> str:
    """The token with its payload changed and the original signature kept."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{changed}.{signature}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hs256_signed_with_public_key(forge: TokenForge, claims: Mapping[str, Any]) -> str:
    """The algorithm-confusion attack: HMAC keyed with the published public key (PyJWT refuses to make it)."""
    import hashlib
    import hmac

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "at+jwt", "kid": forge.kid}
    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(forge.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"
