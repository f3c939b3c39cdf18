"""The booking service's own metrics: bookings by transition, and the lines and offers the database holds."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import Engine

from confbook_common.metrics import read_or_none
from services.booking.adapters.tables import bookings, conference_seats
from services.booking.domain.model import Status

# The state a booking comes from when it is created.
NEW = "NEW"
# Only the longest lines get a series of their own: at most this many, whatever the number of conferences.
LONGEST_LINES = 10

TRANSITIONS = Counter(
    "confbook_booking_transitions_total",
    "Bookings that changed state (from NEW when created), counted once committed",
    ["from_status", "to_status"],
)

# How many waiting bookings of one conference each statement made (docs/adr/0019): 1 when nobody waited.
BOOKINGS_TOGETHER = Histogram(
    "confbook_bookings_made_together",
    "Bookings of one conference made in one statement, per statement",
    buckets=(1, 2, 4, 8, 16, 32),
)


class TransitionLog:
    """The transitions one transaction wrote; counted when it commits, forgotten when it rolls back."""

    def __init__(self) -> None:
        self._pending: Tally[tuple[str, str]] = Tally()

    def add(self, source: Status | str, target: Status, count: int = 1) -> None:
        self._pending[(str(getattr(source, "value", source)), target.value)] += count

    def committed(self) -> None:
        for (source, target), count in self._pending.items():
            TRANSITIONS.labels(source, target).inc(count)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()


class WaitlistCollector(Collector):
    """Waiting bookings and pending offers in all, and the longest lines by conference, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        figures = read_or_none(self._engine, _read)
        if figures is None:
            return
        waiting, pending, longest = figures
        yield GaugeMetricFamily("confbook_bookings_waiting", "WAITLISTED bookings, all lines together", value=waiting)
        yield GaugeMetricFamily(
            "confbook_offers_pending", "CONFIRMATION_PENDING bookings: seats offered, not yet confirmed", value=pending
        )
        lines = GaugeMetricFamily(
            "confbook_waitlist_length",
            f"Bookings waiting in each of the {LONGEST_LINES} longest lines",
            labels=["conference"],
        )
        for name, length in longest:
            lines.add_metric([name], length)
        yield lines


def _read(connection: Connection) -> tuple[int, int, list[tuple[str, int]]]:
    waiting = connection.execute(select(func.coalesce(func.sum(conference_seats.c.waiting), 0))).scalar_one()
    pending = connection.execute(
        select(func.count()).where(bookings.c.status == Status.CONFIRMATION_PENDING.value)
    ).scalar_one()
    longest = connection.execute(
        select(conference_seats.c.name, conference_seats.c.waiting)
        .where(conference_seats.c.waiting > 0)
        .order_by(conference_seats.c.waiting.desc(), conference_seats.c.name)
        .limit(LONGEST_LINES)
    ).all()
    return int(waiting), int(pending), [(str(name), int(length)) for name, length in longest]
