"""Batches: calls in this process for one key wait in line while that key's batch runs, and go together in the next.

Every booking of a conference locks its seat ledger row until it commits, so bookings of a
popular conference run one after another whatever happens; what each costs while it holds
the row is what limits them. Booked together, they share one statement, one hold of the
row and one commit (docs/adr/0019). A line holds at most one batch under way per key; the
calls that come meanwhile wait here, costing a thread each and nothing of the database's,
and the first of them leads the next batch. It is only a queue in front of the row: the
database's locks still keep every rule, across processes and replicas alike.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Item = TypeVar("Item")
Result = TypeVar("Result")


class NoTurnInTime(Exception):
    """The caller's time ran out before a batch took its call."""


class BatchFailed(Exception):
    """The batch this call shared with others raised (the error is the cause), maybe for another's item."""


class Batches(Generic[Key, Item, Result]):
    """Runs `run(key, items)` (one result per item, in order) over the calls waiting for `key`,
    first come first served, at most `most` items at a time and one batch per key at a time.

    If `run` raises, a call alone in its batch gets that error; calls that shared the batch get
    BatchFailed, since the error may be another item's."""

    def __init__(self, run: Callable[[Key, list[Item]], list[Result]], *, most: int) -> None:
        self._run = run
        self._most = most
        self._guard = threading.Lock()
        self._lines: dict[Key, _Line[Item, Result]] = {}

    def submit(self, key: Key, item: Item, timeout: float | None = None) -> Result:
        """`item`'s result, from the first batch for `key` with room for it once it is this call's
        turn; NoTurnInTime if no batch took it within `timeout` seconds (None: no limit)."""
        if timeout is not None and timeout >= threading.TIMEOUT_MAX:  # what "no deadline" may look like
            timeout = None
        call: _Call[Item, Result] = _Call(item)
        with self._guard:
            line = self._lines.setdefault(key, _Line())
            line.waiting.append(call)
            if not line.running:
                line.running = True
                call.state = _State.LEADING
        if call.state is not _State.LEADING and not call.woken.wait(timeout):
            with self._guard:
                if call.state is _State.WAITING:
                    line.waiting.remove(call)
                    raise NoTurnInTime
            call.woken.wait()  # taken into a batch, or made its leader, as the time ran out
        if call.state is _State.LEADING:
            self._lead(key, line)
        if call.error is not None:
            if call.alone:
                raise call.error  # a batch of one is just this call, and its error is the call's own
            raise BatchFailed from call.error
        return call.result  # type: ignore[return-value]  # set with DONE

    def callers(self) -> int:
        """Calls waiting for a batch or in one, over every key."""
        with self._guard:
            return sum(len(line.waiting) + len(line.running_calls) for line in self._lines.values())

    def _lead(self, key: Key, line: _Line[Item, Result]) -> None:
        """Run the next batch of `line` (the leader is its first call), then pass the lead on."""
        with self._guard:
            batch = [line.waiting.popleft() for _ in range(min(self._most, len(line.waiting)))]
            for call in batch:
                call.state = _State.TAKEN
                call.alone = len(batch) == 1
            line.running_calls = batch
        error: Exception | None = None
        try:
            results = self._run(key, [call.item for call in batch])
            if len(results) != len(batch):
                raise AssertionError(f"{len(results)} results for {len(batch)} items")
        except Exception as raised:  # noqa: BLE001 - every caller of the batch learns of it, and the line goes on
            error = raised
        with self._guard:
            for place, call in enumerate(batch):
                if error is None:
                    call.result = results[place]
                call.error = error
                call.state = _State.DONE
                call.woken.set()
            line.running_calls = []
            if line.waiting:
                following = line.waiting[0]
                following.state = _State.LEADING
                following.woken.set()
            else:
                line.running = False
                del self._lines[key]


class _State(Enum):
    WAITING = auto()
    LEADING = auto()  # runs the next batch, with itself first in it
    TAKEN = auto()  # in a batch under way
    DONE = auto()  # its batch has finished: `result` or `error` is set


@dataclass(eq=False)
class _Call(Generic[Item, Result]):
    item: Item
    state: _State = _State.WAITING
    woken: threading.Event = field(default_factory=threading.Event)
    alone: bool = False  # in a batch of its own
    result: Result | None = None
    error: Exception | None = None


@dataclass
class _Line(Generic[Item, Result]):
    running: bool = False  # a batch is under way, or its leader is on the way to take it
    running_calls: list[_Call[Item, Result]] = field(default_factory=list)
    waiting: deque[_Call[Item, Result]] = field(default_factory=deque)
