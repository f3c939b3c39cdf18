"""Retention: every table that grows with traffic keeps its rows for a stated, configurable lifetime.

A service lists its rules (which rows have outlived their lifetime, and how old its oldest row
is); a RetentionWorker in each of its processes deletes expired rows in small batches, each in
a transaction of its own that skips rows others hold (FOR UPDATE SKIP LOCKED) and gives up
quickly on a lock it would wait for, so that nothing the product does waits behind it. Every
purge predicate has an index (docs/adr/0024). A collector shows each table's rows and the age
of its oldest row at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, Connection, Select, Table, delete, select, text, tuple_
from sqlalchemy.engine import Engine

from confbook_common.metrics import read_or_none
from confbook_common.settings import Env
from confbook_common.timestamps import utc_now
from confbook_common.worker import Worker

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_EVERY_SECONDS = 60
# A purge never waits long for a lock: it tries again on its next round instead.
_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '1s'")

PURGED = Counter(
    "confbook_retention_deleted_total", "Rows deleted because they outlived their lifetime", ["schema", "table"]
)

# Deletes at most `batch` rows that expired before `cutoff` (now minus the lifetime); returns how many.
Purge = Callable[[Connection, datetime, int], int]


@dataclass(frozen=True)
class RetentionRule:
    """One table's lifetime: what expires when, and how old its oldest row is."""

    table: Table
    lifetime: timedelta
    purge: Purge
    # One timestamp: the oldest row's (NULL when empty); an index answers it.
    oldest: Select

    @property
    def label(self) -> tuple[str, str]:
        return str(self.table.schema), self.table.name


@dataclass(frozen=True)
class RetentionSettings:
    """How the worker goes about it (RETENTION_BATCH_SIZE, RETENTION_EVERY_SECONDS)."""

    batch_size: int = DEFAULT_BATCH_SIZE
    every_seconds: float = DEFAULT_EVERY_SECONDS

    @classmethod
    def from_env(cls, env: Env) -> RetentionSettings:
        return cls(
            batch_size=env.integer("RETENTION_BATCH_SIZE", DEFAULT_BATCH_SIZE, minimum=1, maximum=100_000),
            every_seconds=env.integer("RETENTION_EVERY_SECONDS", DEFAULT_EVERY_SECONDS, minimum=1, maximum=86_400),
        )


def delete_expired(
    table: Table, expired: Callable[[datetime], ColumnElement[bool]], *, oldest_first: ColumnElement | None = None
) -> Purge:
    """The usual purge: rows matching `expired(cutoff)`, a batch at a time, by primary key.

    `oldest_first`: walk this indexed column upwards (a primary key that grows with time) instead
    of an index of the predicate's own, which a busy insert path would have to keep up to date.
    """
    key = tuple_(*table.primary_key.columns)

    def purge(connection: Connection, cutoff: datetime, batch: int) -> int:
        doomed = select(*table.primary_key.columns).where(expired(cutoff))
        if oldest_first is not None:
            doomed = doomed.order_by(oldest_first)
        doomed = doomed.limit(batch).with_for_update(skip_locked=True)
        return connection.execute(delete(table).where(key.in_(doomed))).rowcount or 0

    return purge


def oldest_by(column: ColumnElement, order: ColumnElement | None = None) -> Select:
    """The oldest row's `column`: the first by `order` (by `column` itself unless said), one index probe."""
    return select(column).order_by(order if order is not None else column).limit(1)


def purge_batch(engine: Engine, rule: RetentionRule, now: datetime, batch: int) -> int:
    """One batch of `rule`, in a transaction of its own; returns how many rows went."""
    with engine.begin() as connection:
        connection.execute(_LOCK_TIMEOUT)
        purged = rule.purge(connection, now - rule.lifetime, batch)
    if purged:
        PURGED.labels(*rule.label).inc(purged)
    return purged


def enforce(engine: Engine, rules: Sequence[RetentionRule], *, batch: int, now: datetime | None = None) -> int:
    """Every rule until nothing more has expired (in order: a rule may free rows for the next)."""
    total = 0
    for rule in rules:
        while True:
            purged = purge_batch(engine, rule, now or utc_now(), batch)
            total += purged
            if purged < batch:
                break
    return total


class RetentionWorker(Worker):
    """Enforces a service's rules every so often; every process of every replica may run one."""

    def __init__(self, engine: Engine, rules: Sequence[RetentionRule], settings: RetentionSettings) -> None:
        schemas = sorted({rule.label[0] for rule in rules})
        super().__init__(name=f"retention-{'-'.join(schemas)}")
        self._engine = engine
        self._rules = tuple(rules)
        self._settings = settings

    def loop(self) -> None:
        while not self.stopping.is_set():
            for rule in self._rules:
                while not self.stopping.is_set():
                    purged = purge_batch(self._engine, rule, utc_now(), self._settings.batch_size)
                    if purged < self._settings.batch_size:
                        break
                    log.info("retention: purged %d rows of %s.%s", purged, *rule.label)
            self.stopping.wait(self._settings.every_seconds)


class RetentionCollector(Collector):
    """Each table's rows (PostgreSQL's running count of live rows) and its oldest row's age."""

    def __init__(self, engine: Engine, rules: Iterable[RetentionRule]) -> None:
        self._engine = engine
        self._rules = tuple(rules)

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        read = read_or_none(self._engine, self._read)
        if read is None:
            return
        rows = GaugeMetricFamily(
            "confbook_table_rows",
            "Rows of a table that grows with traffic (PostgreSQL's live-row count, updated within seconds)",
            labels=["schema", "table"],
        )
        ages = GaugeMetricFamily(
            "confbook_table_oldest_age_seconds",
            "Age of the oldest row of a table that grows with traffic (0 when empty)",
            labels=["schema", "table"],
        )
        lifetimes = GaugeMetricFamily(
            "confbook_table_lifetime_seconds", "How long a row of the table is kept", labels=["schema", "table"]
        )
        now = datetime.now(UTC)
        for rule, (count, oldest) in zip(self._rules, read, strict=True):
            rows.add_metric(list(rule.label), count)
            ages.add_metric(list(rule.label), max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
            lifetimes.add_metric(list(rule.label), rule.lifetime.total_seconds())
        yield rows
        yield ages
        yield lifetimes

    def _read(self, connection: Connection) -> list[tuple[int, datetime | None]]:
        counts: dict[str, int] = dict(
            (name, count)
            for name, count in connection.execute(
                text(
                    "SELECT schemaname || '.' || relname, n_live_tup FROM pg_stat_user_tables"
                    " WHERE schemaname = ANY(:schemas)"
                ),
                {"schemas": sorted({rule.label[0] for rule in self._rules})},
            )
        )
        return [
            (int(counts.get(f"{rule.label[0]}.{rule.label[1]}", 0)), connection.execute(rule.oldest).scalar())
            for rule in self._rules
        ]


# --- the tables every service has ------------------------------------------------------------------------

# Their settings and defaults (README, "Retention"): published outbox rows are kept a day for
# inspection; handled message ids a week (redeliveries come within minutes); idempotency keys as
# long as a retry may replay them (24 hours: shorter shortens that window).
OUTBOX_LIFETIME = ("RETENTION_OUTBOX", timedelta(days=1))
INBOX_LIFETIME = ("RETENTION_INBOX", timedelta(days=7))
IDEMPOTENCY_KEYS_LIFETIME = ("RETENTION_IDEMPOTENCY_KEYS", timedelta(hours=24))


def lifetime(env: Env, setting: tuple[str, timedelta]) -> timedelta:
    name, default = setting
    return env.duration(name, default)


@dataclass(frozen=True)
class CommonLifetimes:
    outbox: timedelta = OUTBOX_LIFETIME[1]
    inbox: timedelta = INBOX_LIFETIME[1]
    idempotency_keys: timedelta = IDEMPOTENCY_KEYS_LIFETIME[1]

    @classmethod
    def from_env(cls, env: Env) -> CommonLifetimes:
        return cls(
            outbox=lifetime(env, OUTBOX_LIFETIME),
            inbox=lifetime(env, INBOX_LIFETIME),
            idempotency_keys=lifetime(env, IDEMPOTENCY_KEYS_LIFETIME),
        )


def outbox_rule(table: Table, lifetimes: CommonLifetimes) -> RetentionRule:
    """Published rows, oldest id first; a row not yet published is never purged."""
    return RetentionRule(
        table,
        lifetimes.outbox,
        delete_expired(table, lambda cutoff: table.c.published_at < cutoff, oldest_first=table.c.id),
        oldest_by(table.c.created_at, table.c.id),
    )


def inbox_rule(table: Table, lifetimes: CommonLifetimes) -> RetentionRule:
    """Ids of handled messages (`processed_messages_by_age`)."""
    return RetentionRule(
        table,
        lifetimes.inbox,
        delete_expired(table, lambda cutoff: table.c.processed_at < cutoff),
        oldest_by(table.c.processed_at),
    )


def idempotency_keys_rule(table: Table, lifetimes: CommonLifetimes) -> RetentionRule:
    """Recorded answers to keyed requests (`idempotency_keys_by_age`)."""
    return RetentionRule(
        table,
        lifetimes.idempotency_keys,
        delete_expired(table, lambda cutoff: table.c.created_at < cutoff),
        oldest_by(table.c.created_at),
    )
