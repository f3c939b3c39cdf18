"""Wake-ups for the streams watching bookings: one LISTEN connection per process, on its event loop.

The database NOTIFYs `confbook_booking_events` with the booking's id when a change
commits (migration 0004). A notice only says "read the history again": the events
themselves are always read from the table, so a notice lost while the connection
was down costs a re-read (every watcher is woken on reconnecting), never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions
from sqlalchemy.engine import Engine

from confbook_common.db import listening_connection
from confbook_common.worker import Backoff

log = logging.getLogger(__name__)

CHANNEL = "confbook_booking_events"


class ChangeNotices:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._watchers: defaultdict[int, set[asyncio.Event]] = defaultdict(set)
        self._connection: psycopg2.extensions.connection | None = None
        self._connecting: asyncio.Task[None] | None = None

    @contextmanager
    def watching(self, booking_id: int) -> Iterator[asyncio.Event]:
        """An event set whenever the booking may have changed; listening starts before the caller reads."""
        self._ensure_listening()
        changed = asyncio.Event()
        self._watchers[booking_id].add(changed)
        try:
            yield changed
        finally:
            watchers = self._watchers[booking_id]
            watchers.discard(changed)
            if not watchers:
                del self._watchers[booking_id]

    @property
    def watched(self) -> int:
        return sum(len(watchers) for watchers in self._watchers.values())

    def _ensure_listening(self) -> None:
        if self._connection is None and (self._connecting is None or self._connecting.done()):
            self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        backoff = Backoff(first=0.2, cap=5.0)
        while True:
            try:
                connection = await asyncio.to_thread(listening_connection, self._engine, CHANNEL)
            except psycopg2.Error as error:
                delay = backoff.next()
                log.warning("booking change notices unavailable (%s); retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                continue
            self._connection = connection
            asyncio.get_running_loop().add_reader(connection.fileno(), self._on_readable)
            self._wake_all()  # whatever changed while nobody listened is read now
            return

    def _on_readable(self) -> None:
        connection = self._connection
        assert connection is not None
        try:
            connection.poll()
        except psycopg2.Error as error:
            log.warning("booking change notices lost their connection (%s); reconnecting", error)
            asyncio.get_running_loop().remove_reader(connection.fileno())
            connection.close()
            self._connection = None
            self._ensure_listening()
            return
        while connection.notifies:
            notice = connection.notifies.pop(0)
            try:
                booking_id = int(notice.payload)
            except ValueError:
                continue
            for changed in self._watchers.get(booking_id, ()):
                changed.set()

    def _wake_all(self) -> None:
        for watchers in self._watchers.values():
            for changed in watchers:
                changed.set()

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(RuntimeError):  # no loop running any more
                asyncio.get_running_loop().remove_reader(self._connection.fileno())
            self._connection.close()
            self._connection = None
