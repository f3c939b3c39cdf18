"""Prometheus metrics: the families every process shares, and the endpoint that serves a program's.

prometheus-client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, see metrics_dir): each worker
process writes its counters and histograms to files of its own, and the endpoint, which every worker
serves on one shared port, adds up the files of all of them. Gauges of what the database holds
(waiting bookings, outbox backlog) are read from the database at scrape time instead, by whichever
worker answers, so they need no per-process bookkeeping. Labels take only values from small fixed
sets (methods, routes, status codes, queue names), never ids or user input (docs/adr/0016).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.exposition import MetricsHandler
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine

from confbook_common.settings import Env

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_METRICS_PORTS = {"gateway": 9180, "conference": 9181, "booking": 9182, "waitlist": 9183}

# Seconds; from a cheap read (a millisecond) to a call's deadline.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- HTTP (the gateway) -------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered, by route template and status", ["method", "route", "status"]
)
HTTP_REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)

# --- gRPC servers, as go-grpc-prometheus and py-grpc-prometheus name them --------------------------------------

GRPC_STARTED = Counter(
    "grpc_server_started_total", "RPCs started on the server", ["grpc_type", "grpc_service", "grpc_method"]
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to answer an RPC",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)

# --- events ---------------------------------------------------------------------------------------------------

CONSUMED = Counter("confbook_consumer_messages_total", "Messages consumed, by queue and outcome", ["queue", "outcome"])
REDELIVERIES = Counter(
    "confbook_consumer_redeliveries_total",
    "Messages that arrived flagged redelivered (not acked on an earlier delivery)",
    ["queue"],
)
FORGED_MESSAGES = Counter(
    "confbook_consumer_forged_messages_total",
    "Messages refused because they did not come from the service that owns their event",
    ["queue"],
)
PUBLISHED = Counter("confbook_outbox_published_total", "Outbox rows published and confirmed", ["schema"])


class OutboxCollector(Collector):
    """The outbox's backlog and the age of its oldest unpublished row, read at scrape time."""

    def __init__(self, engine: Engine, table: Table) -> None:
        self._engine = engine
        self._table = table

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        table = self._table
        schema = str(table.schema)
        rows = read_or_none(
            self._engine,
            lambda connection: connection.execute(
                select(func.count(), func.min(table.c.created_at)).where(table.c.published_at.is_(None))
            ).one(),
        )
        if rows is None:
            return
        backlog, oldest = rows
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        pending = GaugeMetricFamily("confbook_outbox_backlog", "Outbox rows not yet published", labels=["schema"])
        pending.add_metric([schema], backlog)
        oldest_age = GaugeMetricFamily(
            "confbook_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none waits)",
            labels=["schema"],
        )
        oldest_age.add_metric([schema], max(age, 0.0))
        yield pending
        yield oldest_age


def read_or_none(engine: Engine, read: Callable[..., T]) -> T | None:
    """One read for a scrape; None (the families left out of this scrape) when the database is away."""
    try:
        with engine.connect() as connection:
            return read(connection)
    except Exception as error:  # noqa: BLE001 - a scrape must answer even without its database
        log.warning("metrics: database read failed: %s", error)
        return None


# --- the endpoint ---------------------------------------------------------------------------------------------


def metrics_address(program: str, env: Env | None = None) -> tuple[str, int]:
    """METRICS_HOST (loopback unless told) and <PROGRAM>_METRICS_PORT (a default for the product's programs)."""
    env = env or Env()
    host = env.text("METRICS_HOST", "127.0.0.1")
    return host, env.port(f"{program.upper().replace('-', '_')}_METRICS_PORT", DEFAULT_METRICS_PORTS.get(program, 0))


class _SharedPortServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[MetricsHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # Every worker of the program serves the same port; any one of them answers for all.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class MetricsServer:
    """GET /metrics on a thread of its own: the samples of every worker of the program, plus `collectors`."""

    def __init__(self, host: str, port: int, collectors: Iterable[Collector] = ()) -> None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in collectors:
            registry.register(collector)
        self._server = _SharedPortServer((host, port), MetricsHandler.factory(registry))
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", *self._server.server_address[:2])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_metrics_server(program: str, collectors: Iterable[Collector] = ()) -> MetricsServer | None:
    """The program's endpoint, started; None (and one ERROR line) if its port cannot be had.

    A worker without its endpoint still does its work: metrics never take a service down.
    """
    host, port = metrics_address(program)
    if port == 0:
        return None  # not one of the product's programs (the benchmark's no-op service), and no port given
    try:
        server = MetricsServer(host, port, collectors)
    except OSError as error:
        log.error("metrics: cannot listen on %s:%d (%s); serving without metrics", host, port, error)
        return None
    server.start()
    return server
