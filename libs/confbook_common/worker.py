"""Background loops (outbox relay, consumers, sweepers) that survive errors and stop on request."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Backoff:
    """Exponential delays for retrying after a failure, reset after a success."""

    def __init__(self, first: float = 0.2, cap: float = 5.0) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._cap)
        return delay

    def reset(self) -> None:
        self._next = self._first


class Worker(threading.Thread):
    """Runs `loop()` until `stop()`; if it raises, logs and runs it again after a backoff."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    @property
    def healthy(self) -> bool:
        """False while the worker cannot reach what it depends on."""
        return self.is_alive()

    def loop(self) -> None:
        """Do the work until `self.stopping` is set."""
        raise NotImplementedError

    def run(self) -> None:
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                self.loop()
                backoff.reset()
            except Exception as error:  # noqa: BLE001 - a worker must outlive any single failure
                delay = backoff.next()
                log.warning("%s failed (%s: %s); retrying in %.1fs", self.name, type(error).__name__, error, delay)
                log.debug("%s failure", self.name, exc_info=True)
                self.stopping.wait(delay)
