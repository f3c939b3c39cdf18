"""Verifying an access token: its signature against the issuer's keys, then every claim that makes it ours."""

from __future__ import annotations

import binascii
import collections
import hashlib
import json
import threading
import time
from typing import Any

import jwt
from jwt.utils import base64url_decode

from confbook_common.auth.caller import Caller, Role
from confbook_common.auth.keys import IssuerKeys, KeySource
from confbook_common.auth.rules import TokenRules
from confbook_common.errors import Unauthenticated

# Tokens are at most this long: a real one is a few hundred bytes to a few kilobytes.
MAX_TOKEN_LENGTH = 8192
# Verified tokens kept, so that a caller's next request costs a hash rather than a signature check.
CACHED_TOKENS = 10_000
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]


class TokenVerifier:
    """Verifies access tokens of one issuer for one audience; safe to share between threads."""

    def __init__(self, rules: TokenRules, keys: KeySource | None = None, *, clock: Any = time.time) -> None:
        self.rules = rules
        self.keys = keys or IssuerKeys(rules)
        self._clock = clock
        self._verified: collections.OrderedDict[bytes, Caller] = collections.OrderedDict()
        self._lock = threading.Lock()

    def cached(self, token: str) -> Caller | None:
        """The caller of a token verified before and not expired yet, without a signature check."""
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            caller = self._verified.get(digest)
            if caller is None:
                return None
            if caller.expires_at + self.rules.leeway_seconds <= self._clock():
                del self._verified[digest]
                return None
            return caller

    def verify(self, token: str) -> Caller:
        """The caller a token speaks for; Unauthenticated, saying why, if it does not count.

        May fetch the issuer's keys (blocking); an asyncio caller tries cached() first.
        """
        if (caller := self.cached(token)) is not None:
            return caller
        caller = self._verify(token)
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            self._verified[digest] = caller
            while len(self._verified) > CACHED_TOKENS:
                self._verified.popitem(last=False)
        return caller

    def _verify(self, token: str) -> Caller:
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("the access token is too long")
        header = _header(token)
        algorithm = header.get("alg")
        if algorithm not in self.rules.algorithms:
            raise Unauthenticated(f"the access token's algorithm is not one of {', '.join(self.rules.algorithms)}")
        if str(header.get("typ", "")).lower() not in self.rules.token_types:
            raise Unauthenticated("the token is not an access token (RFC 9068 typ at+jwt)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the access token names no signing key (kid)")
        key = self.keys.key(kid)
        if key is None:
            raise Unauthenticated("the access token is signed by a key the issuer does not publish")
        if key.declared_algorithm not in (None, algorithm):
            raise Unauthenticated("the access token's algorithm is not its key's")
        try:
            claims = jwt.decode(
                token,
                key=key.public_key,
                algorithms=[algorithm],
                audience=self.rules.audience,
                issuer=self.rules.issuer,
                leeway=self.rules.leeway_seconds,
                options={"require": _REQUIRED_CLAIMS, "strict_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the access token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the access token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the access token is from another issuer") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"the access token has no {error.claim!r} claim") from None
        except jwt.PyJWTError:  # a bad signature, a malformed claim, a key of another type
            raise Unauthenticated("the access token's signature or claims are invalid") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise Unauthenticated("the access token's subject must be a string of 1 to 255 characters")
        return Caller(subject=subject, roles=self._roles(claims), expires_at=float(claims["exp"]))

    def _roles(self, claims: dict[str, Any]) -> frozenset[Role]:
        granted = _claim(claims, self.rules.roles_claim)
        names = set(granted.split()) if isinstance(granted, str) else {str(each) for each in granted or ()}
        roles = {Role.ATTENDEE}
        if self.rules.organizer_role in names:
            roles.add(Role.ORGANIZER)
        if self.rules.admin_role in names:
            roles.add(Role.ADMIN)
        return frozenset(roles)


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A top-level claim by its whole name, else by a dotted path into nested objects."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, which names the key and algorithm, read before the signature can be checked.

    Only the first segment is decoded here: PyJWT's get_unverified_header() checks and decodes all
    three, as decode() then does again, which made a third of a new token's cost (docs/benchmarks.md).
    Nothing read here is trusted: decode() checks the whole token against the key named.
    """
    segment, dot, _ = token.partition(".")
    try:
        header = json.loads(base64url_decode(segment)) if dot else None
    except (ValueError, binascii.Error):
        header = None
    if not isinstance(header, dict):
        raise Unauthenticated("the access token is not a JWT")
    return header
