"""Serving one service: its servicers, health, reflection, background workers, clean shutdown."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from typing import TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import text
from sqlalchemy.engine import Engine

from confbook_common import processes
from confbook_common.logging_setup import configure_logging
from confbook_common.rpc.errors import ErrorMappingInterceptor
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
    """A gRPC server plus the service's workers; health is SERVING while every check passes."""

    def __init__(self, name: str, address: str, *, max_workers: int = 16) -> None:
        self.name = name
        self._address = address
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"{name}-rpc"),
            interceptors=[ErrorMappingInterceptor()],
            # Worker processes and replicas on one host share the port; the kernel spreads connections.
            # `make up` and the test stacks check that a port is free before starting anything on it.
            options=[("grpc.so_reuseport", 1)],
        )
        self._health = health.HealthServicer(experimental_non_blocking=True)
        self._service_names: list[str] = []
        self._workers: list[Worker] = []
        self._checks: dict[str, Callable[[], bool]] = {}
        self._stopping = threading.Event()

    def add_service(self, full_name: str, register: Callable[[grpc.Server], None]) -> None:
        """Register a servicer; `full_name` is what reflection and health report."""
        register(self._server)
        self._service_names.append(full_name)

    def add_worker(self, worker: Worker) -> None:
        self._workers.append(worker)
        self._checks[worker.name] = lambda: worker.healthy

    def add_check(self, name: str, check: Callable[[], bool]) -> None:
        self._checks[name] = check

    def serve(self) -> None:
        """Run until SIGTERM or SIGINT, then stop accepting calls, finish the ones under way, stop workers."""
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )
        self._server.add_insecure_port(self._address)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())

        self._server.start()
        for worker in self._workers:
            worker.start()
        log.info("%s serving gRPC on %s", self.name, self._address)

        monitor = threading.Thread(target=self._monitor_health, name=f"{self.name}-health", daemon=True)
        monitor.start()
        self._stopping.wait()

        log.info("%s shutting down", self.name)
        self._health.enter_graceful_shutdown()
        for worker in self._workers:
            worker.stop()
        self._server.stop(_SHUTDOWN_GRACE_SECONDS).wait()
        for worker in self._workers:
            worker.join(timeout=_SHUTDOWN_GRACE_SECONDS)
        log.info("%s stopped", self.name)

    def stop(self) -> None:
        self._stopping.set()

    def _monitor_health(self) -> None:
        last: dict[str, bool] = {}
        while not self._stopping.is_set():
            results = {name: check() for name, check in self._checks.items()}
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
                self._health.set(service, status)
            self._stopping.wait(_HEALTH_INTERVAL_SECONDS)


def run_service(name: str, load_config: Callable[[], Config], build: Callable[[Config], ServiceRuntime]) -> None:
    """The body of every service's main(): a bad setting ends the process with one clear line.

    With WORKERS above 1, and not itself a worker, this process only supervises that
    many workers, each of which runs the whole service (see confbook_common.processes).
    """
    try:
        configure_logging(name)
        config = load_config()
        workers = Env().workers()
    except ConfigError as error:
        sys.exit(f"{name}: {error}")
    processes.serve_as_workers(
        name, workers, lambda: build(config).serve(), grace_seconds=2 * _SHUTDOWN_GRACE_SECONDS + 1
    )
