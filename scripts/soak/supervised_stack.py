"""The soak's stack: the supervised stack of `make up` (scripts.stack.LocalStack), with two replicas
of each service and its development token issuer, on private PostgreSQL and RabbitMQ that the soak
may stop and pause.

A killed program is restarted by supervisord, as under `make up`: the soak only kills, and
the restarts it then sees are the product's own.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts import infra, sandbox
from scripts.sandbox import Infrastructure
from scripts.soak.options import Options
from scripts.soak.report import progress
from scripts.stack import LocalStack

REPLICAS = 2
# One process per replica: two replicas of three services, a gateway and both servers share two cores.
WORKERS_PER_REPLICA = 1
# Every client writes from this machine's one address, some users often: the gateway's bound on writes per
# subject is set out of reach (two bounds, as the default has). Failed authentications keep the default bound:
# the soak never fails one, and a 401 or 429 is a violation.
RATE_LIMITS = {"GATEWAY_RATE_LIMIT_WRITES": "100000/second;6000000/minute"}


@dataclass
class SupervisedStack:
    """SoakStack over a LocalStack; see scripts/soak/stack.py for what each method promises."""

    infrastructure: Infrastructure
    stack: LocalStack
    window_seconds: int

    @property
    def base_url(self) -> str:
        return self.stack.gateway_url

    @property
    def amqp_url(self) -> str:
        return self.infrastructure.amqp_url

    def database_url(self, service: str) -> str:
        return self.infrastructure.service_database_url(service)

    @property
    def issuer_url(self) -> str:
        return self.stack.issuer_url

    @property
    def audience(self) -> str:
        return self.stack.audience

    @property
    def issuer_keys_path(self) -> Path:
        return self.stack.issuer_keys_path

    def token(self, subject: str, role: str = "attendee", ttl: int = 3600) -> str:
        return self.stack.token(subject, role, ttl)

    def kill(self, name: str) -> None:
        killed = self.stack.kill(name, signal.SIGKILL)
        if not killed:
            raise RuntimeError(f"no running process of {name} to kill")
        infra.wait_for_exit(killed, timeout=10)

    def restarts(self) -> int:
        """How often supervisord has restarted a process that died unasked, in all."""
        return sum(process.restarts for process in self.stack.supervisor.processes())

    def stop_broker(self) -> None:
        infra.stop_rabbitmq(self.infrastructure.state_dir)

    def start_broker(self) -> None:
        infra.start_rabbitmq(self.infrastructure.state_dir)

    def pause_database(self) -> None:
        infra.pause_postgres(self.infrastructure.state_dir)

    def resume_database(self) -> None:
        infra.resume_postgres(self.infrastructure.state_dir)

    def close(self) -> None:
        try:
            # A stopped PostgreSQL cannot shut down; a stopped broker is fine, `release` knows it is not running.
            self.resume_database()
        finally:
            self.stack.stop_own()


@contextmanager
def open_stack(options: Options) -> Iterator[SupervisedStack]:
    """A fresh database and empty queues on the soak's own servers, the stack started and ready; stopped after."""
    progress(f"preparing PostgreSQL and RabbitMQ (state in {options.state_dir})")
    infrastructure = sandbox.prepare(
        options.state_dir, options.database_url, options.amqp_url, window_seconds=options.window_seconds
    )
    try:
        _require_own_servers(infrastructure)
        # With a port for the dev issuer, which the LocalStack runs under supervisord as `make up` does.
        environment = sandbox.environment(infrastructure, sandbox.free_ports(), options.window_seconds)
        environment |= {"WORKERS": str(WORKERS_PER_REPLICA), "REPLICAS": str(REPLICAS), **RATE_LIMITS}
        stack = LocalStack(options.state_dir / "stack", environment)
        soak_stack = SupervisedStack(infrastructure, stack, options.window_seconds)
        try:
            progress(f"starting {REPLICAS} replicas of each service and the gateway under supervisord")
            stack.up()
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
