"""Fetching the issuer's keys as a service process starts, rather than on its first caller's request."""

from __future__ import annotations

from confbook_common.auth.keys import KeySource
from confbook_common.worker import Worker

_RETRY_SECONDS = 1.0


class SigningKeysWarmup(Worker):
    """Fetches the keys until they are known, then rests.

    A process restarted while the issuer is away learns the keys the moment it is back, not
    on the next token with an unknown key (which the cooldown may delay); and until then the
    service's health says NOT_SERVING, so `/readyz` and `make up` wait for a stack that can
    verify tokens. Once known, the keys stay in use whatever happens to the issuer.
    """

    def __init__(self, keys: KeySource) -> None:
        super().__init__(name="issuer-keys")
        self._keys = keys

    @property
    def healthy(self) -> bool:
        return self._keys.known

    def loop(self) -> None:
        while not self._keys.fetch_now():
            if self.stopping.wait(_RETRY_SECONDS):
                return
        self.stopping.wait()
