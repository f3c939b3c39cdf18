"""The soak's stack for now: scripts.sandbox.Stack with two replicas of each service, on private PostgreSQL and
RabbitMQ that it may stop and pause.

Nothing supervises the sandbox's processes, so `kill` here also starts the killed program again after a short
delay, as a supervisor would. That restart is the part to replace once the stack runs under a supervisor:
`open_stack` is the one place the soak learns which stack it runs on.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from scripts import infra, sandbox
from scripts.sandbox import Infrastructure, Stack
from scripts.soak.options import Options
from scripts.soak.report import progress

REPLICAS = 2
# One process per replica: two replicas of three services, a gateway and both servers share two cores.
WORKERS_PER_REPLICA = 1
# About how long a supervisor takes to notice an exit and start the program again.
RESTART_DELAY_SECONDS = 1.0


class SoakSandbox(Stack):
    def env(self) -> Mapping[str, str]:
        return {**super().env(), "WORKERS": str(WORKERS_PER_REPLICA)}


@dataclass
class SandboxStack:
    """SoakStack over a sandbox; see scripts/soak/stack.py for what each method promises."""

    infrastructure: Infrastructure
    stack: SoakSandbox
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _restarts: list[threading.Timer] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    @property
    def amqp_url(self) -> str:
        return self.infrastructure.amqp_url

    @property
    def window_seconds(self) -> int:
        return self.stack.window_seconds

    def database_url(self, service: str) -> str:
        return self.infrastructure.service_database_url(service)

    def kill(self, name: str) -> None:
        with self._lock:
            self.stack.kill(name, signal.SIGKILL)
        # The stand-in for a supervisor: to be removed with this module.
        restart = threading.Timer(RESTART_DELAY_SECONDS, self._start, args=(name,))
        self._restarts.append(restart)
        restart.start()

    def _start(self, name: str) -> None:
        with self._lock:
            self.stack.start(name)

    def stop_broker(self) -> None:
        infra.stop_rabbitmq(self.infrastructure.state_dir)

    def start_broker(self) -> None:
        infra.start_rabbitmq(self.infrastructure.state_dir)

    def pause_database(self) -> None:
        infra.pause_postgres(self.infrastructure.state_dir)

    def resume_database(self) -> None:
        infra.resume_postgres(self.infrastructure.state_dir)

    def close(self) -> None:
        for restart in self._restarts:
            restart.join()
        try:
            # A stopped PostgreSQL cannot shut down; a stopped broker is fine, `release` knows it is not running.
            self.resume_database()
        finally:
            self.stack.stop()


@contextmanager
def open_stack(options: Options) -> Iterator[SandboxStack]:
    """A fresh database and empty queues on the soak's own servers, the stack started and ready; stopped after."""
    progress(f"preparing PostgreSQL and RabbitMQ (state in {options.state_dir})")
    infrastructure = sandbox.prepare(
        options.state_dir, options.database_url, options.amqp_url, window_seconds=options.window_seconds
    )
    try:
        _require_own_servers(infrastructure)
        stack = SoakSandbox(
            infrastructure,
            window_seconds=options.window_seconds,
            log_dir=options.state_dir / "logs",
            replicas=REPLICAS,
        )
        soak_stack = SandboxStack(infrastructure, stack)
        try:
            progress(f"starting {REPLICAS} replicas of each service and the gateway")
            stack.start()
            stack.wait_ready()
            yield soak_stack
        finally:
            progress("stopping the stack")
            soak_stack.close()
    finally:
        sandbox.release(infrastructure)


def _require_own_servers(infrastructure: Infrastructure) -> None:
    record = infra.load_record(infrastructure.state_dir)
    for kind in (infra.POSTGRES, infra.RABBITMQ):
        if not record[kind].started_by_us:
            raise infra.InfraError(
                f"the {kind} server at the soak's URL was not started by it, so it may not be stopped or paused; "
                "choose free ports (--database-url, --amqp-url)"
            )
