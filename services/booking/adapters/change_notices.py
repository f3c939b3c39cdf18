"""Wake-ups for the streams watching bookings: one poll per process, of the bookings it watches.

Every booking change records its event in its own transaction (migrations 0004, 0006).
While this process has watchers, it asks every `poll_seconds` for the latest event of
each booking they watch, and wakes the watchers of a booking whose latest event is new
to it. A wake-up only says "read the history again": the events themselves are always
read from the table, so a poll that failed delays an event, never loses it. Polling, not
a NOTIFY per change: PostgreSQL serializes the commits of the transactions that NOTIFY,
which made every booking wait on the others (docs/adr/0017).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from confbook_common.worker import Backoff
from services.booking.adapters.event_history import EventHistory

log = logging.getLogger(__name__)


class ChangeNotices:
    def __init__(self, engine: Engine, *, poll_seconds: float = 0.1) -> None:
        self._engine = engine
        self._poll_seconds = poll_seconds
        self._watchers: defaultdict[int, set[asyncio.Event]] = defaultdict(set)
        # The latest event of each watched booking, as the last poll saw it.
        self._latest: dict[int, int] = {}
        self._polling: asyncio.Task[None] | None = None

    @contextmanager
    def watching(self, booking_id: int) -> Iterator[asyncio.Event]:
        """An event set whenever the booking may have changed; watching starts before the caller reads."""
        changed = asyncio.Event()
        self._watchers[booking_id].add(changed)
        if self._polling is None or self._polling.done():
            self._polling = asyncio.get_running_loop().create_task(self._poll())
        try:
            yield changed
        finally:
            watchers = self._watchers[booking_id]
            watchers.discard(changed)
            if not watchers:
                del self._watchers[booking_id]
                self._latest.pop(booking_id, None)

    @property
    def watched(self) -> int:
        return sum(len(watchers) for watchers in self._watchers.values())

    async def _poll(self) -> None:
        """Until nobody watches: the latest events, and a wake-up for the bookings with a new one."""
        backoff = Backoff(first=0.2, cap=5.0)
        while self._watchers:
            await asyncio.sleep(self._poll_seconds)
            try:
                latest = await asyncio.to_thread(self._read_latest, list(self._watchers))
            except SQLAlchemyError as error:
                delay = backoff.next()
                log.warning("booking changes unreadable (%s); retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for booking_id, sequence in latest.items():
                # One seen for the first time wakes its watchers too: they may have read before it.
                if self._latest.get(booking_id) != sequence and booking_id in self._watchers:
                    self._latest[booking_id] = sequence
                    for changed in self._watchers[booking_id]:
                        changed.set()

    def _read_latest(self, booking_ids: Sequence[int]) -> dict[int, int]:
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return EventHistory(connection).latest_sequences(booking_ids)
