"""Serving one service: its servicers, health, reflection, background workers, bounds, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from typing import TypeVar, cast

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import _async as reflection_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.engine import Engine

from confbook_common import processes, tracing
from confbook_common.logging_setup import configure_logging
from confbook_common.metrics import start_metrics_server
from confbook_common.rpc.bounds import StreamBounds, StreamLimiter, server_options
from confbook_common.rpc.errors import guarded
from confbook_common.rpc.health import HealthServicer
from confbook_common.rpc.registration import WrappingRegistrar
from confbook_common.settings import ConfigError, Env
from confbook_common.worker import Worker

log = logging.getLogger(__name__)

Config = TypeVar("Config")

_HEALTH_INTERVAL_SECONDS = 1.0
_SHUTDOWN_GRACE_SECONDS = 5.0


def database_reachable(engine: Engine) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False

    return check


class ServiceRuntime:
    """A gRPC server plus the service's workers; health is SERVING while every check passes.

    The server is grpc.aio's: the servicers (sync code) run on its thread pool, while
    streams (reflection, health Watch) wait on the event loop and hold no thread, so
    open streams cannot take the threads the calls need (docs/adr/0011).
    """

    def __init__(
        self, name: str, address: str, *, max_workers: int = 16, stream_bounds: StreamBounds | None = None
    ) -> None:
        self.name = name
        self._address = address
        self._max_workers = max_workers
        self._stream_bounds = stream_bounds or StreamBounds.from_env()
        self._registrations: list[Callable[[grpc.aio.Server], None]] = []
        self._service_names: list[str] = []
        self._workers: list[Worker] = []
        self._checks: dict[str, Callable[[], bool]] = {}
        self._collectors: list[Collector] = []
        self._stopping = threading.Event()

    def add_service(self, full_name: str, register: Callable[[grpc.aio.Server], None]) -> None:
        """Register a servicer; `full_name` is what reflection and health report."""
        self._registrations.append(register)
        self._service_names.append(full_name)

    def add_worker(self, worker: Worker) -> None:
        self._workers.append(worker)
        self._checks[worker.name] = lambda: worker.healthy

    def add_check(self, name: str, check: Callable[[], bool]) -> None:
        self._checks[name] = check

    def add_collector(self, collector: Collector) -> None:
        """Metrics read at scrape time (from the database, say), served beside the workers' own."""
        self._collectors.append(collector)

    def serve(self) -> None:
        """Run until SIGTERM or SIGINT, then stop accepting calls, finish the ones under way, stop workers."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())
        # uvloop, as the gateway's: every call wakes the loop from gRPC's poller thread and, for a
        # sync handler, from the pool thread that ran it; uvloop's wakeups cost less (docs/benchmarks.md).
        uvloop.run(self._serve())

    def stop(self) -> None:
        self._stopping.set()

    async def _serve(self) -> None:
        # The server belongs to the loop it is created on, so it is made here, not in __init__.
        server = grpc.aio.server(
            migration_thread_pool=futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix=f"{self.name}-rpc"
            ),
            options=server_options(),
            maximum_concurrent_rpcs=self._stream_bounds.max_concurrent_rpcs,
        )
        limiter = StreamLimiter(self._stream_bounds)

        def wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
            return limiter.bounded(guarded(handler, method) or handler)

        # What the generated add_*_to_server functions call on a server, and only that.
        registrar = cast(grpc.aio.Server, WrappingRegistrar(server, wrap))
        for register in self._registrations:
            register(registrar)
        health_servicer = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registrar)
        names = [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection_aio.ReflectionServicer(names), registrar)
        server.add_insecure_port(self._address)
        await server.start()
        metrics_server = start_metrics_server(self.name, self._collectors)
        for worker in self._workers:
            worker.start()
        log.info("%s serving gRPC on %s", self.name, self._address)

        monitor = asyncio.create_task(self._monitor_health(health_servicer))
        await asyncio.to_thread(self._stopping.wait)

        log.info("%s shutting down", self.name)
        monitor.cancel()
        health_servicer.enter_graceful_shutdown()
        for worker in self._workers:
            worker.stop()
        await server.stop(_SHUTDOWN_GRACE_SECONDS)
        if metrics_server is not None:
            metrics_server.stop()
        for worker in self._workers:
            await asyncio.to_thread(worker.join, timeout=_SHUTDOWN_GRACE_SECONDS)
        log.info("%s stopped", self.name)

    async def _monitor_health(self, health_servicer: HealthServicer) -> None:
        last: dict[str, bool] = {}
        while True:
            # The checks block (a database round trip): off the loop, on the default executor.
            results = await asyncio.to_thread(lambda: {name: check() for name, check in self._checks.items()})
            for name, ok in results.items():
                if name not in last:
                    log.info("%s: %s is %s", self.name, name, "up" if ok else "starting")
                elif last[name] != ok:
                    (log.info if ok else log.warning)("%s: %s is %s", self.name, name, "up" if ok else "down")
            last = results
            status = health_pb2.HealthCheckResponse.SERVING
            if not all(results.values()):
                status = health_pb2.HealthCheckResponse.NOT_SERVING
            for service in ("", *self._service_names):
                health_servicer.set(service, status)
            await asyncio.sleep(_HEALTH_INTERVAL_SECONDS)


def run_service(name: str, load_config: Callable[[], Config], build: Callable[[Config], ServiceRuntime]) -> None:
    """The body of every service's main(): a bad setting ends the process with one clear line.

    With WORKERS above 1, and not itself a worker, this process only supervises that
    many workers, each of which runs the whole service (see confbook_common.processes).
    """
    try:
        configure_logging(name)
        config = load_config()
        workers = Env().workers()
        StreamBounds.from_env()  # read again by each worker's runtime; a bad value stops the supervisor here
    except ConfigError as error:
        sys.exit(f"{name}: {error}")

    def serve() -> None:
        # Here, in the worker: the exporter's thread and the engines' instrumentation are per process.
        tracing.configure_tracing(name)
        build(config).serve()

    processes.serve_as_workers(name, workers, serve, grace_seconds=2 * _SHUTDOWN_GRACE_SECONDS + 1)
