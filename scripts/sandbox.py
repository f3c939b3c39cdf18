"""A private, throw-away copy of the whole stack: fresh database, empty queues, processes on free ports,
and the development token issuer (scripts.dev_issuer) whose access tokens the processes accept.

The end-to-end tests and the benchmark run against it; `make run`/`make up` are scripts/stack.py.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from psycopg2 import sql
from sqlalchemy.engine import make_url

from confbook_common import metrics_dir
from confbook_common.settings import SERVICES, Env
from scripts import dev_issuer, infra
from scripts.launching import MODULES, launch, wait_until_answers, wait_until_ready
from scripts.migrate import empty_queues, migrate_all, migrate_broker

ISSUER = "issuer"  # the dev issuer's name among a stack's ports and processes


@dataclass(frozen=True)
class Infrastructure:
    database_url: str
    amqp_url: str
    state_dir: Path
    broker_is_ours: bool

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "AMQP_URL": self.amqp_url}

    def service_database_url(self, service: str) -> str:
        return Env(self.env()).service_database_url(service)


def prepare(
    state_dir: Path,
    database_url: str,
    amqp_url: str,
    *,
    window_seconds: int,
    postgres_settings: infra.PostgresSettings | None = None,
) -> Infrastructure:
    """PostgreSQL and RabbitMQ at the URLs (private ones started if none answer, PostgreSQL with
    `postgres_settings`), a freshly migrated database, and none of the queues an earlier run may
    have left messages in."""
    outcomes = infra.up(state_dir, database_url, amqp_url, postgres_settings)
    try:
        recreate_database(database_url)
        env = Env(
            {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, "CONFIRMATION_WINDOW_SECONDS": str(window_seconds)}
        )
        migrate_all(env)
        migrate_broker(env)
        empty_queues(amqp_url, window_seconds)
    except BaseException:  # a failure or Ctrl-C: stop what `up` started
        infra.down(state_dir)
        raise
    return Infrastructure(
        database_url, amqp_url, state_dir, broker_is_ours=outcomes[infra.RABBITMQ] is not infra.Outcome.REUSED
    )


def release(infrastructure: Infrastructure) -> None:
    infra.down(infrastructure.state_dir)


def recreate_database(database_url: str) -> None:
    """The URL's database, empty: dropped (its sessions ended) and created again by the URL's role."""
    url = make_url(database_url)
    connection = infra.connect_postgres(url, database="postgres")
    connection.autocommit = True  # DROP/CREATE DATABASE cannot run in a transaction
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(url.database)))
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
    connection.close()


_SETTINGS = (
    "DATABASE_URL", "DB_PASSWORD", "GRPC_HOST", "GRPC_PORT", "AMQP_URL", "AMQP_PASSWORD", "AMQP_MANAGEMENT_URL",
    "GATEWAY_PORT", "LISTEN_HOST", "PROMOTION_TOKEN", "METRICS_PORT", "METRICS_HOST",
)  # fmt: skip


def _is_setting(name: str) -> bool:
    return (
        name.endswith(_SETTINGS)
        or name.startswith(("OIDC_", "DEV_ISSUER_"))
        or name in ("CONFIRMATION_WINDOW_SECONDS", metrics_dir.VARIABLE)
    )


def environment(
    infrastructure: Infrastructure, ports: Mapping[str, int], window_seconds: int, promotion_token: str | None = None
) -> dict[str, str]:
    """The settings of a stack on `ports` (by program name) using `infrastructure`, over this process's
    environment without its own confbook settings (a BOOKING_DATABASE_URL, say), which must not leak in.
    Every process of one stack must get the same `promotion_token` (by default, a new secret).

    No OIDC_ISSUER: a supervised stack (scripts.stack) given these runs its dev issuer on ports["issuer"]
    and names it itself; Stack.env() names its own."""
    inherited = {key: value for key, value in os.environ.items() if not _is_setting(key)}
    return {
        **inherited,
        **infrastructure.env(),
        "GATEWAY_PORT": str(ports["gateway"]),
        **{f"{service.upper()}_GRPC_PORT": str(ports[service]) for service in MODULES if service != "gateway"},
        **{f"{name.upper()}_METRICS_PORT": str(ports[metrics_port_name(name)]) for name in MODULES},
        "CONFIRMATION_WINDOW_SECONDS": str(window_seconds),
        "PROMOTION_TOKEN": promotion_token or secrets.token_hex(16),
        "DEV_ISSUER_PORT": str(ports[ISSUER]),
    }


def metrics_port_name(program: str) -> str:
    """The key in a stack's ports of a program's metrics endpoint."""
    return f"{program}-metrics"


def free_ports() -> dict[str, int]:
    """A free port for each program (the gateway, each service and the issuer), and for each one's metrics,
    all distinct."""
    names = [*MODULES, *(metrics_port_name(name) for name in MODULES), ISSUER]
    return dict(zip(names, infra.free_ports(len(names)), strict=True))


def replicas_from_env() -> int:
    """REPLICAS: how many copies of each service a throw-away stack runs (default 1)."""
    return Env().integer("REPLICAS", 1, minimum=1, maximum=8)


@dataclass
class Stack:
    """The three services, the gateway and the dev issuer as processes, each startable and killable on its own.

    With `replicas` above 1, each service runs that many times on its one port, as
    replicas on one host would (the kernel spreads connections among them); each
    replica runs its own WORKERS processes. The gateway runs once, with its workers.
    `processes` names a service's first replica after the service, the others
    `<service>-2`, `<service>-3`...

    Every process accepts the access tokens of the dev issuer (`issuer_url`) for `audience`;
    `token()` gets one, and a test may sign its own with the keys in `issuer_keys_path`.
    """

    infrastructure: Infrastructure
    window_seconds: int
    log_dir: Path
    replicas: int = field(default_factory=replicas_from_env)
    ports: dict[str, int] = field(default_factory=free_ports)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    promotion_token: str = field(default_factory=lambda: secrets.token_hex(16))
    # More settings for every process (short bounds in the tests, say).
    settings: Mapping[str, str] = field(default_factory=dict)
    audience: str = dev_issuer.DEFAULT_AUDIENCE

    @property
    def issuer_url(self) -> str:
        return dev_issuer.issuer_url(self.ports[ISSUER])

    @property
    def issuer_keys_path(self) -> Path:
        """The dev issuer's keys file (scripts/dev_issuer.py says its shape), beside the logs."""
        return self.log_dir.parent / dev_issuer.KEYS_FILE_NAME

    def token(self, subject: str, role: str = "attendee", ttl: int = 3600) -> str:
        """An access token for `subject` with `role` (attendee, organizer, admin), valid `ttl` seconds."""
        return dev_issuer.request_token(self.issuer_url, subject, role, ttl)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def grpc_target(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def metrics_url(self, program: str) -> str:
        return f"http://127.0.0.1:{self.ports[metrics_port_name(program)]}/metrics"

    def env(self) -> Mapping[str, str]:
        return {
            **environment(self.infrastructure, self.ports, self.window_seconds, self.promotion_token),
            "OIDC_ISSUER": self.issuer_url,
            "OIDC_AUDIENCE": self.audience,
            "DEV_ISSUER_KEYS": str(self.issuer_keys_path),
            **self.settings,
        }

    def instances(self, name: str) -> list[str]:
        """The names in `processes` of one service's replicas (or of the gateway, or the issuer)."""
        count = self.replicas if name in SERVICES else 1
        return [name, *(f"{name}-{index}" for index in range(2, count + 1))]

    def start(self, name: str | None = None) -> None:
        """Start one service (every replica of it), the gateway or the issuer, or everything."""
        for each in [name] if name else [ISSUER, *MODULES]:
            if each == ISSUER:
                self.processes[ISSUER] = launch(ISSUER, self.env(), self.log_dir, argv=dev_issuer.command())
                continue
            # One directory of samples for all the program's processes, replicas included: its endpoint adds them up.
            samples = self.log_dir.parent / "metrics" / each
            metrics_dir.reset(samples)
            env = {**self.env(), metrics_dir.VARIABLE: str(samples)}
            for instance in self.instances(each):
                self.processes[instance] = launch(each, env, self.log_dir, log_name=instance)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        """Signal every process of a service (all replicas, all workers) and wait; the first one's exit status."""
        codes = []
        for instance in self.instances(name):
            process = self.processes.pop(instance)
            os.killpg(process.pid, sig)  # each replica leads its own session, with its workers
            codes.append(process.wait(timeout=15))
        return codes[0]

    def pause(self, name: str) -> None:
        """SIGSTOP every process of a service: it holds its connections but does nothing."""
        for instance in self.instances(name):
            os.killpg(self.processes[instance].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        for instance in self.instances(name):
            os.killpg(self.processes[instance].pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM everything, and SIGKILL whatever has not stopped after 15 s."""
        infra.terminate_process_groups([process.pid for process in self.processes.values()], timeout=15)
        for process in self.processes.values():
            process.wait()
        self.processes.clear()

    def wait_ready(self) -> None:
        """Until the issuer answers and /readyz says every service, and the database and broker each uses, is up."""
        wait_until_answers(dev_issuer.discovery_url(self.issuer_url), self.processes, self.log_dir)
        wait_until_ready(self.base_url, self.processes, self.log_dir)
