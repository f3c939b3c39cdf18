"""Waiting for something that happens asynchronously, without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll until `probe` returns something truthy (and return it), or fail with its last answer."""
    deadline = time.monotonic() + timeout
    result = probe()
    while not result and time.monotonic() < deadline:
        time.sleep(interval)
        result = probe()
    assert result, f"still {result!r} after {timeout}s"
    return result
