"""Ceilings, measured in the same run on the same machine as the figures they bound.

- The raw-SQL booking transaction: the least a correct booking must do in PostgreSQL (check-and-take a seat
  or join the line, look for the user's overlapping bookings, insert the booking under the same constraints,
  commit), from
  Python threads with a connection each, in a scratch schema of the bench's own database.
- The framework floor: the real gateway, without its token check, in front of a gRPC server that answers
  GetBooking with a constant, so every cost of the HTTP and gRPC path but the token's is there and none of the
  service's work. For information, the same with the gateway's token check.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2.extras import DateTimeTZRange
from sqlalchemy.engine import make_url

from confbook_common.settings import DEFAULT_GRPC_PORTS
from scripts import infra
from scripts.bench.report import PERCENTILES, Rate
from scripts.launching import launch, wait_until_ready
from scripts.sandbox import Stack

SCHEMA = "bench_ceiling"
# Every conference of the ceiling has the same two hours; only the seat ledger differs between them.
_START = datetime(2030, 6, 15, 9, tzinfo=UTC)
DURING = DateTimeTZRange(_START, _START + timedelta(hours=2), "[)")

_CREATE = f"""
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.ledger (
    conference_id bigint PRIMARY KEY,
    slots integer NOT NULL,
    seats_held integer NOT NULL DEFAULT 0,
    waiting integer NOT NULL DEFAULT 0,
    CHECK (seats_held <= slots)
);
CREATE TABLE {SCHEMA}.bookings (
    booking_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    conference_id bigint NOT NULL,
    status text NOT NULL,
    during tstzrange NOT NULL,
    EXCLUDE USING gist (user_id WITH =, during WITH &&) WHERE (status = 'CONFIRMED')
);
CREATE UNIQUE INDEX ON {SCHEMA}.bookings (user_id, conference_id) WHERE status <> 'CANCELED';
INSERT INTO {SCHEMA}.ledger (conference_id, slots) SELECT n, %(slots)s FROM generate_series(1, %(conferences)s) n;
"""
# A seat while one is free and nobody waits, else a place at the end of the line: either way the ledger row,
# since a seat freed later goes to the line only if whoever frees it sees the line's count (docs/benchmarks.md).
# Seated exactly when the line is still empty afterwards: joining it makes it longer.
_TAKE_SEAT_OR_JOIN = f"""
UPDATE {SCHEMA}.ledger
SET seats_held = seats_held + CASE WHEN seats_held < slots AND waiting = 0 THEN 1 ELSE 0 END,
    waiting = waiting + CASE WHEN seats_held < slots AND waiting = 0 THEN 0 ELSE 1 END
WHERE conference_id = %s RETURNING waiting = 0
"""
_OVERLAPPING = f"SELECT booking_id FROM {SCHEMA}.bookings WHERE user_id = %s AND status <> 'CANCELED' AND during && %s"
_INSERT = f"INSERT INTO {SCHEMA}.bookings (user_id, conference_id, status, during) VALUES (%s, %s, %s, %s)"
# Conferences whose seats held or line differ from their CONFIRMED or WAITLISTED bookings.
_LEDGER_MISMATCHES = f"""
SELECT count(*) FROM {SCHEMA}.ledger l
WHERE seats_held <> (SELECT count(*) FROM {SCHEMA}.bookings b WHERE b.conference_id = l.conference_id
                     AND b.status = 'CONFIRMED')
   OR waiting <> (SELECT count(*) FROM {SCHEMA}.bookings b WHERE b.conference_id = l.conference_id
                  AND b.status = 'WAITLISTED')
"""


# --- the raw-SQL booking transaction ------------------------------------------------------------------------------


@dataclass
class SqlRun:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    statuses: dict[str, int] = field(default_factory=dict)
    ledger_mismatches: int = 0

    @property
    def transactions(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0

    def rate(self, label: str, load: str) -> Rate:
        ordered = sorted(self.latencies)
        # Nearest rank, as wrk reports its percentiles.
        latency = {p: ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)] for p in PERCENTILES} if ordered else {}
        return Rate(label, load, self.per_second, latency, self.errors)


async def raw_sql(database_url: str, *, threads: int, seconds: int, conferences: int, slots: int) -> SqlRun:
    """Bookings from `threads` threads for `seconds`, round the conferences, each with a user of its own."""
    with _scratch_schema(database_url, conferences, slots):
        stop = threading.Event()
        try:
            run = await asyncio.to_thread(_drive, database_url, threads, seconds, conferences, stop)
        finally:
            stop.set()  # on cancellation the threads would otherwise go on until their time is up
        _count(database_url, run)
        return run


@contextlib.contextmanager
def _scratch_schema(database_url: str, conferences: int, slots: int) -> Iterator[None]:
    connection = _connect(database_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            # The product's migrations create it; a server prepared otherwise may lack it.
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'")
            if cursor.fetchone() is None:
                cursor.execute("CREATE EXTENSION btree_gist")
            cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            cursor.execute(_CREATE, {"slots": slots, "conferences": conferences})
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        connection.close()


def _drive(database_url: str, threads: int, seconds: int, conferences: int, stop: threading.Event) -> SqlRun:
    runs = [SqlRun() for _ in range(threads)]
    # The clock starts once every thread has its connection, as wrk's connections are open before it counts.
    connected = threading.Barrier(threads + 1)
    workers = [
        threading.Thread(target=_book, args=(database_url, index, conferences, connected, stop, runs[index]))
        for index in range(threads)
    ]
    for worker in workers:
        worker.start()
    connected.wait()
    started = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    total = SqlRun(seconds=time.perf_counter() - started)
    for run in runs:
        total.latencies += run.latencies
        total.errors += run.errors
        total.first_error = total.first_error or run.first_error
    return total


def _book(
    database_url: str,
    index: int,
    conferences: int,
    connected: threading.Barrier,
    stop: threading.Event,
    run: SqlRun,
) -> None:
    """One thread's bookings until `stop`: BEGIN (implicit), take a seat or join the line, look for overlaps,
    insert, COMMIT."""
    try:
        connection = _connect(database_url)
    except psycopg2.Error as error:
        run.errors += 1
        run.first_error = " ".join(str(error).split())
        connected.wait()
        return
    connected.wait()
    threads = connected.parties - 1
    serial = 0
    try:
        with connection.cursor() as cursor:
            while not stop.is_set():
                conference = 1 + (index + serial * threads) % conferences
                user = f"c{index}n{serial}"
                serial += 1
                started = time.perf_counter()
                try:
                    cursor.execute(_TAKE_SEAT_OR_JOIN, (conference,))
                    (seated,) = cursor.fetchone()
                    cursor.execute(_OVERLAPPING, (user, DURING))
                    cursor.fetchall()
                    cursor.execute(_INSERT, (user, conference, "CONFIRMED" if seated else "WAITLISTED", DURING))
                    connection.commit()
                except psycopg2.Error as error:  # counted and shown; the run goes on
                    connection.rollback()
                    run.errors += 1
                    run.first_error = run.first_error or " ".join(str(error).split())
                    continue
                run.latencies.append(time.perf_counter() - started)
    finally:
        connection.close()


def _count(database_url: str, run: SqlRun) -> None:
    connection = _connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(f"SELECT status, count(*) FROM {SCHEMA}.bookings GROUP BY status")
            run.statuses = {status: count for status, count in cursor.fetchall()}
            cursor.execute(_LEDGER_MISMATCHES)
            run.ledger_mismatches = cursor.fetchone()[0]
    finally:
        connection.close()


def _connect(database_url: str) -> Any:
    return infra.connect_postgres(make_url(database_url))


# --- the framework floor -------------------------------------------------------------------------------------------

FLOOR_SERVER = "bench-floor"


@dataclass
class Floor:
    """The real gateway, on a port of its own, with every service's address pointing at the no-op server.

    Without its token check (scripts/bench/floor_gateway.py) unless `checks_tokens`: then it is the product's
    gateway itself, which needs a token of the stack's issuer on every request to the no-op server."""

    environment: Mapping[str, str]
    log_dir: Path
    gateway_port: int
    grpc_port: int
    checks_tokens: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def beside(cls, stack: Stack, log_dir: Path, *, checks_tokens: bool = False) -> Floor:
        """The product gateway's environment (WORKERS, the issuer and the like included), with the floor's ports."""
        gateway_port, grpc_port = infra.free_ports(2)
        return cls(stack.env(), log_dir, gateway_port, grpc_port, checks_tokens)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(self) -> None:
        env = {
            **self.environment,
            "GATEWAY_PORT": str(self.gateway_port),
            **{f"{service.upper()}_GRPC_PORT": str(self.grpc_port) for service in DEFAULT_GRPC_PORTS},
        }
        self.processes[FLOOR_SERVER] = launch(
            FLOOR_SERVER,
            env,
            self.log_dir,
            argv=[sys.executable, "-m", "scripts.bench.floor_server", str(self.grpc_port)],
        )
        if self.checks_tokens:
            self.processes["gateway"] = launch("gateway", env, self.log_dir, log_name="gateway-checking-tokens")
        else:
            argv = [sys.executable, "-m", "scripts.bench.floor_gateway"]
            self.processes["gateway"] = launch("gateway", env, self.log_dir, argv=argv)
        # /readyz asks every "service" for its health: here, three times the no-op server's.
        wait_until_ready(self.base_url, self.processes, self.log_dir)

    def stop(self) -> None:
        infra.terminate_process_groups([process.pid for process in self.processes.values()], timeout=15)
        for process in self.processes.values():
            process.wait()
        self.processes.clear()
