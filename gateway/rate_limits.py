"""Bounds per caller at the gateway, with the `limits` library: writes per subject, failed authentications
per client address. Over a bound: 429 with Retry-After and the IETF draft's RateLimit headers.

Each gateway process counts on its own (memory storage) unless GATEWAY_RATE_LIMIT_STORAGE names a shared
one (redis://, memcached://), so with N processes behind one port a caller gets up to N times the bound.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import limits
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from gateway.errors import ApiError


@dataclass(frozen=True)
class RateLimitSettings:
    writes: str = "20/second;600/minute"  # per subject: POST, PATCH, DELETE
    failed_authentications: str = "30/minute"  # per client address
    storage: str = "memory://"  # or redis://..., memcached://... (the library's async storages)


class RateLimits:
    def __init__(self, settings: RateLimitSettings) -> None:
        self._writes = limits.parse_many(settings.writes)
        self._failures = limits.parse_many(settings.failed_authentications)
        # A sliding window of two counters per caller: no list of every request to keep and sweep, as the
        # moving window has.
        self._limiter = SlidingWindowCounterRateLimiter(_storage(settings.storage))

    async def check_write(self, subject: str) -> dict[str, str]:
        """Counts a write of `subject`; 429 when it is over a bound. Returns the RateLimit headers."""
        return await self._take(self._writes, "write", subject)

    async def check_failed_authentications(self, address: str) -> None:
        """429 while `address` has failed to authenticate too often (before any signature is checked)."""
        for item in self._failures:
            if not await self._limiter.test(item, "auth-failure", address):
                raise await self._refusal(item, "auth-failure", address, "too many failed authentications")

    async def failed_authentication(self, address: str) -> None:
        for item in self._failures:
            await self._limiter.hit(item, "auth-failure", address)

    async def _take(self, items: list[limits.RateLimitItem], kind: str, key: str) -> dict[str, str]:
        for item in items:
            if not await self._limiter.hit(item, kind, key):
                raise await self._refusal(item, kind, key, "too many requests")
        tightest = items[0]
        stats = await self._limiter.get_window_stats(tightest, kind, key)
        return _headers(tightest, stats.remaining, stats.reset_time)

    async def _refusal(self, item: limits.RateLimitItem, kind: str, key: str, what: str) -> ApiError:
        stats = await self._limiter.get_window_stats(item, kind, key)
        headers = _headers(item, 0, stats.reset_time)
        headers["Retry-After"] = headers["RateLimit-Reset"]
        return ApiError(429, "RATE_LIMITED", f"{what}: at most {item}; retry later", headers=headers)


SWEEP_SECONDS = 10.0


class SweptMemoryStorage(MemoryStorage):
    """The library's asyncio memory storage, sweeping expired counters at most every SWEEP_SECONDS.

    As it comes, it starts a sweep of every key after each write as soon as the last one ended, so
    with thousands of callers it sweeps without end: a booking from each of thousands of new users
    cost the gateway a third of its bookings (docs/benchmarks.md). Its reads expire a counter by
    themselves, so a later sweep only frees the memory.
    """

    _last_sweep = float("-inf")

    # The name the library's own calls look up (Python mangles `self.__schedule_expiry` so).
    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = now
            await MemoryStorage._MemoryStorage__schedule_expiry(self)  # type: ignore[attr-defined]


def _storage(uri: str) -> Storage:
    """The library's asyncio storage for `uri` (it picks them by the "async+" prefix); memory, swept less often."""
    if uri.startswith("memory://"):
        return SweptMemoryStorage(uri)
    storage = storage_from_string(f"async+{uri}")
    assert isinstance(storage, Storage)
    return storage


def _headers(item: limits.RateLimitItem, remaining: int, reset_time: float) -> dict[str, str]:
    reset = max(1, math.ceil(reset_time - time.time()))
    return {
        "RateLimit-Limit": str(item.amount),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(reset),
        "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
    }
