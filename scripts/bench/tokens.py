"""Access tokens for the bench: the stack's dev issuer's own tokens, signed here with its current key.

Tens of thousands are needed (a token per user of each booking scenario); asking the issuer for each over HTTP
would take minutes, so they are signed with the key it keeps in its keys file (scripts/dev_issuer.py), by its
own `sign()`: the same claims, header and key as one from its /token. Big batches are signed by a process per CPU.

Every bench user belongs to the subject named like it (user `wa17`, subject `wa17`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from scripts import dev_issuer
from scripts.private_files import write_private

# Long enough for any run: tokens are made as their scenario starts, and the longest run takes under an hour.
TTL_SECONDS = dev_issuer.MAX_TTL_SECONDS
ORGANIZER = "bench-organizer"
ADMIN = "bench-admin"
# Below this many, signing here beats starting processes.
_POOL_FROM = 2000

_signer: Signer | None = None  # in each pool process


class Signer:
    """Signs access tokens for one issuer and audience with one key."""

    def __init__(self, key_record: dict[str, str], issuer: str, audience: str) -> None:
        self.key_record = key_record
        self.issuer = issuer
        self.audience = audience
        self._key = dev_issuer.SigningKey.from_record(key_record)

    @classmethod
    def of_issuer(cls, keys_path: Path, issuer: str, audience: str) -> Signer:
        """With the issuer's current key (the newest in its keys file): what its /token signs with now."""
        record = json.loads(keys_path.read_text())["keys"][-1]
        return cls(record, issuer, audience)

    def token(self, subject: str, role: str = "attendee") -> str:
        request = dev_issuer.TokenRequest(subject, role, TTL_SECONDS)
        return dev_issuer.sign(request, self._key, self.issuer, self.audience)

    def tokens(self, subjects: Sequence[str]) -> list[str]:
        """An attendee's token for each subject, in order."""
        if len(subjects) < _POOL_FROM:
            return [self.token(subject) for subject in subjects]
        processes = os.cpu_count() or 1
        chunk = -(-len(subjects) // (processes * 4))
        chunks = [list(subjects[start : start + chunk]) for start in range(0, len(subjects), chunk)]
        # Spawned, not forked: this process has gRPC's and asyncio's threads, which a fork would copy mid-step.
        with ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_signer,
            initargs=(self.key_record, self.issuer, self.audience),
        ) as pool:
            return [token for signed in pool.map(_sign_all, chunks) for token in signed]


def _start_signer(key_record: dict[str, str], issuer: str, audience: str) -> None:
    global _signer
    _signer = Signer(key_record, issuer, audience)


def _sign_all(subjects: list[str]) -> list[str]:
    assert _signer is not None  # the pool's initializer made it
    return [_signer.token(subject) for subject in subjects]


def write_tokens(path: Path, tokens: Sequence[str]) -> None:
    """One token a line, for a wrk script to read."""
    write_private(path, "".join(f"{token}\n" for token in tokens))
