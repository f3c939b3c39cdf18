"""The issuer's signing keys, found by OpenID Connect discovery and kept, refetched when a token
names a key not seen yet (at most once per cooldown) and when they grow old."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt

from confbook_common.auth.rules import TokenRules

log = logging.getLogger(__name__)

_FETCH_TIMEOUT_SECONDS = 3.0


_ASYMMETRIC_KEY_TYPES = ("RSA", "EC", "OKP")


@dataclass(frozen=True)
class SigningKey:
    public_key: Any
    declared_algorithm: str | None  # the JWK's `alg`, when it names one


class KeySource(Protocol):
    """Where a verifier finds the key a token names."""

    def key(self, kid: str) -> SigningKey | None: ...

    @property
    def known(self) -> bool: ...

    def fetch_now(self) -> bool: ...


class IssuerKeys:
    def __init__(self, rules: TokenRules, *, clock: Any = time.monotonic) -> None:
        self._rules = rules
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> SigningKey | None:
        """The key with this id, or None if the issuer does not publish it (fail closed)."""
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at > self._rules.jwks_max_age_seconds:
            self._refresh(now)
        elif kid not in self._keys:
            self._refresh(now, cooldown=self._rules.jwks_refresh_cooldown_seconds)
        return self._keys.get(kid)

    @property
    def known(self) -> bool:
        """Whether the keys have been fetched at least once."""
        return self._fetched_at is not None

    def fetch_now(self) -> bool:
        """Fetch the keys now (at most once a second); whether they are known."""
        self._refresh(self._clock())
        return self.known

    def _refresh(self, now: float, *, cooldown: float = 0.0) -> None:
        with self._lock:
            if self._tried_at is not None and now - self._tried_at < max(cooldown, 1.0):
                return  # another thread just fetched, or the cooldown holds: no storm at the issuer
            self._tried_at = now
            try:
                self._keys = self._fetch()
                self._fetched_at = now
            except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWKError, jwt.PyJWKSetError) as error:
                # The keys already known stay in use; unknown ones are refused until a fetch succeeds.
                log.warning("could not fetch the signing keys of %s: %s", self._rules.issuer, error)

    def _fetch(self) -> dict[str, SigningKey]:
        with httpx.Client(timeout=_FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client:
            discovery = client.get(f"{self._rules.issuer.rstrip('/')}/.well-known/openid-configuration")
            discovery.raise_for_status()
            document = discovery.json()
            # OpenID Connect Discovery 1.0, 4.3: the document must name exactly the issuer asked.
            if document.get("issuer") != self._rules.issuer:
                raise ValueError(f"the discovery document names issuer {document.get('issuer')!r}")
            answer = client.get(str(document["jwks_uri"]))
            answer.raise_for_status()
            key_set = answer.json()
        keys: dict[str, SigningKey] = {}
        for entry in key_set.get("keys", []):
            # Public keys for signatures only: a symmetric ("oct") key published here would be anyone's.
            if entry.get("use", "sig") != "sig" or "kid" not in entry or entry.get("kty") not in _ASYMMETRIC_KEY_TYPES:
                continue
            try:
                keys[str(entry["kid"])] = SigningKey(jwt.PyJWK(entry).key, entry.get("alg"))
            except (jwt.PyJWKError, jwt.InvalidKeyError) as error:
                log.warning("skipping key %s of %s: %s", entry.get("kid"), self._rules.issuer, error)
        log.info("fetched %d signing keys of %s", len(keys), self._rules.issuer)
        return keys
