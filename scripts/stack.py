"""The whole stack on one machine: PostgreSQL, RabbitMQ, migrations, the three services and the gateway,
and the development token issuer (scripts.dev_issuer) unless OIDC_ISSUER names a real one.

Usage: python -m scripts.stack run|up|down|status|backup|restore   (settings come from the environment, see README.md)

`up` returns once GET /readyz answers 200, and supervisord (scripts.supervision) then keeps every
process running: one that dies is restarted by itself. `run` is `up` in the foreground until
Ctrl-C; `down` stops everything `up` started, and nothing else. A private PostgreSQL archives its
WAL and is backed up on a schedule (scripts.backup); `backup` takes one now, and `restore --target`
brings the stack back to a moment (or the latest archived state).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url

from confbook_common.metrics import metrics_address
from confbook_common.settings import SERVICES, ConfigError, Env
from scripts import backup, dev_issuer, infra, observe
from scripts.launching import (
    MODULES,
    REPO_ROOT,
    StackError,
    readiness_problem,
    relative,
    wait_until_answers,
    wait_until_ready,
)
from scripts.migrate import empty_queues, migrate_all, migrate_broker
from scripts.private_files import write_private
from scripts.supervision import ProcessState, Program, Supervisor, SupervisorError

STATE_DIR = REPO_ROOT / ".run" / "stack"
# Processes that failed to start (BACKOFF: died within seconds; FATAL: gave up retrying).
_FAILED_STATES = frozenset({"BACKOFF", "FATAL"})
_SECRET_LENGTH = 64
# Where `up` writes whose tokens the stack accepts, for `make token` to find.
ISSUER_RECORD = "issuer.json"
ISSUER_PROGRAM = "issuer"
BACKUPS_PROGRAM = "backups"


class LocalStack:
    """One supervised stack, its state (infra.json, supervisord's files, logs) in `state_dir`.

    Settings come from `environment` (by default this process's): ports, URLs, WORKERS, and
    REPLICAS, how many copies of each service run (each with WORKERS processes), as replicas on
    one host would: they share the service's port. The first replica of a service is named after
    it, the others `<service>-2`, `<service>-3`...

    Every program accepts the access tokens of OIDC_ISSUER for OIDC_AUDIENCE; when the environment
    names no issuer, the stack runs the development one (program `issuer`, on DEV_ISSUER_PORT, its
    keys in the state dir) and names it.
    """

    def __init__(self, state_dir: Path, environment: Mapping[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.environment = dict(os.environ if environment is None else environment)
        self.env = Env(self.environment)
        self.supervisor = Supervisor(state_dir, self.log_dir)
        self._infra_started: list[str] = []
        # Decided by the environment given, before `up` adds the dev issuer's URL to it.
        self.dev_issuer = not self.env.text("OIDC_ISSUER", "")

    @property
    def gateway_url(self) -> str:
        # A wildcard listen address is reached on loopback.
        host = self.env.listen_host()
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.env.port('GATEWAY_PORT', 8080)}"

    @property
    def issuer_url(self) -> str:
        """Whose access tokens the programs accept: this stack's dev issuer, or OIDC_ISSUER."""
        if self.dev_issuer:
            return dev_issuer.issuer_url(self.env.port("DEV_ISSUER_PORT", dev_issuer.DEFAULT_PORT))
        return self.env.text("OIDC_ISSUER", "")

    @property
    def audience(self) -> str:
        return self.env.text("OIDC_AUDIENCE", dev_issuer.DEFAULT_AUDIENCE if self.dev_issuer else "")

    @property
    def issuer_keys_path(self) -> Path:
        """The dev issuer's keys (private keys included: readable by their owner only)."""
        return Path(self.env.text("DEV_ISSUER_KEYS", str(self.state_dir / dev_issuer.KEYS_FILE_NAME)))

    def token(self, subject: str, role: str = "attendee", ttl: int = 3600) -> str:
        """An access token for `subject` from this stack's dev issuer."""
        if not self.dev_issuer:
            raise StackError(f"the stack accepts the tokens of {self.issuer_url} (OIDC_ISSUER), not the dev issuer's")
        return dev_issuer.request_token(self.issuer_url, subject, role, ttl)

    def programs(self) -> list[Program]:
        workers = self.env.workers()
        replicas = self.env.integer("REPLICAS", 1, minimum=1, maximum=8)
        replica_names = [
            (service, service if replica == 1 else f"{service}-{replica}")
            for service in SERVICES
            for replica in range(1, replicas + 1)
        ]
        samples = self.state_dir / "metrics"
        services = [Program(name, MODULES[service], workers, samples / service) for service, name in replica_names]
        programs = [*services, Program("gateway", MODULES["gateway"], workers, samples / "gateway")]
        if self.dev_issuer:
            # One process: it holds the keys, and a second one would rotate them on its own.
            programs.insert(0, Program(ISSUER_PROGRAM, "scripts.dev_issuer", 1, priority=100))
        if observe.wanted(self.env):
            command = tuple(observe.prometheus_command(self.env, self.state_dir))
            programs.append(Program("prometheus", "", 1, command=command))
        if self._postgres_is_ours():
            # Its first backup is taken at once, in the background: `up` does not wait for it.
            command = (sys.executable, "-m", "scripts.backup", "schedule", "--state-dir", str(self.state_dir))
            programs.append(Program(BACKUPS_PROGRAM, "scripts.backup", 1, command=command))
        return programs

    # --- commands --------------------------------------------------------------------------------------------

    def up(self) -> list[str]:
        """Start what is missing and wait until /readyz answers 200; on any failure, stop what this call started."""
        if self.supervisor.running():
            raise StackError(f"already up (supervisord of {relative(self.state_dir)}); make down first")
        issuer = self._issuer_settings()  # a half-named issuer is refused before anything starts
        self._check_ports_free()
        outcomes = self._infra_up()
        self._infra_started = [kind for kind, outcome in outcomes.items() if outcome is infra.Outcome.STARTED]
        try:
            self.environment = {**self._made_secrets(), **self.environment, **issuer}
            self.env = Env(self.environment)
            migrate_all(self.env)
            migrate_broker(self.env)
            IssuerRecord(self.issuer_url, self.audience, self.dev_issuer).save(self.state_dir)
            self.supervisor.start(self.programs(), self.environment)
            if self.dev_issuer:
                # The services fetch its keys on their first token; waiting here says at once if it failed.
                url = dev_issuer.discovery_url(self.issuer_url)
                wait_until_answers(url, self._failed_programs, self.log_dir)
            wait_until_ready(self.gateway_url, self._failed_programs, self.log_dir)
        except BaseException:  # a failure, a failed migration or Ctrl-C: leave nothing half-started behind
            self.stop_own()
            raise
        return [f"{kind}: {outcome.value}" for kind, outcome in outcomes.items()]

    def stop_own(self) -> list[str]:
        """Stop the processes, and the servers that this object's `up` started."""
        lines = ["services and gateway: stopped"] if self.supervisor.stop() else []
        lines += infra.down(self.state_dir, self._infra_started) if self._infra_started else []
        self._infra_started = []
        return lines

    def down(self) -> list[str]:
        """Stop the processes and every server this state dir records as its own."""
        lines = ["services and gateway: stopped"] if self.supervisor.stop() else []
        lines += infra.down(self.state_dir)
        return lines or [f"nothing recorded in {relative(self.state_dir)}; nothing to stop"]

    def status(self) -> list[str]:
        lines = []
        if self.supervisor.running():
            lines += [_describe(process) for process in self.supervisor.processes()]
        else:
            lines.append(f"services and gateway: not running (no supervisord for {relative(self.state_dir)})")
        problem = readiness_problem(self.gateway_url)
        readiness = "ready (200)" if problem is None else f"not ready ({problem})"
        lines.append(f"gateway {self.gateway_url}/readyz: {readiness}")
        lines += backup.status(self.state_dir, self.backup_settings)
        lines += infra.status(self.state_dir, self.env.admin_database_url(), self.env.amqp_url())
        return lines

    @property
    def backup_settings(self) -> backup.BackupSettings:
        return backup.BackupSettings.from_env(self.env)

    def backup(self, kind: str) -> str:
        """Take a backup of the private PostgreSQL now; says which."""
        taken = backup.Repository.of(self.state_dir, self.backup_settings).backup(kind)
        return f"{taken.type} backup {taken.label} finished at {taken.finished:%Y-%m-%d %H:%M:%S} UTC"

    def restore(self, target: datetime | None) -> list[str]:
        """Stop the services, restore the database to `target` (None: the latest archived state), empty
        the broker, and start the stack again on it (docs/adr/0025); works whether the stack was up or not."""
        # The servers run, from their data dirs, whether or not the stack was up: the WAL written last is archived.
        self._infra_up()
        backup.restore(
            self.state_dir,
            target,
            self.backup_settings,
            stop_services=self.supervisor.stop,
            empty_broker=lambda: empty_queues(self.env.amqp_url(), self.env.confirmation_window_seconds()),
            start_services=self.up,
        )
        moment = f"{target:%Y-%m-%d %H:%M:%S.%f} UTC" if target else "the latest archived state"
        return [f"the database is back at {moment}; the broker was emptied and the services started on it"]

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> list[int]:
        """Signal every worker of a program (`booking-2`), or of every replica of a service (`booking`)."""
        matches = (lambda program: _service_of(program) == name) if name in MODULES else name.__eq__
        chosen = [p for p in self.supervisor.processes() if matches(p.program) and p.pid]
        signalled = []
        for process in chosen:
            try:
                os.kill(process.pid, sig)
            except ProcessLookupError:  # it died since supervisord was asked
                continue
            signalled.append(process.pid)
        return signalled

    # --- internals -------------------------------------------------------------------------------------------

    def _infra_up(self) -> dict[str, infra.Outcome]:
        """PostgreSQL and RabbitMQ; a private PostgreSQL archives its WAL into the state dir's repository."""
        database_url = self.env.admin_database_url()
        archiving = backup.archiving(self.backup_settings, make_url(database_url).username or "")
        return infra.up(self.state_dir, database_url, self.env.amqp_url(), archiving)

    def _postgres_is_ours(self) -> bool:
        instance = infra.load_record(self.state_dir).get(infra.POSTGRES)
        return instance is not None and instance.started_by_us

    def _issuer_settings(self) -> dict[str, str]:
        """What every program is told of the issuer: the environment's, or this stack's dev issuer."""
        if not self.dev_issuer:
            if not self.audience:
                raise ConfigError(
                    "OIDC_ISSUER is set, so OIDC_AUDIENCE must be too: the audience (`aud`) that the "
                    "issuer's access tokens for this API name"
                )
            return {"OIDC_ISSUER": self.issuer_url, "OIDC_AUDIENCE": self.audience}
        return {
            "OIDC_ISSUER": self.issuer_url,
            "OIDC_AUDIENCE": self.audience,
            "DEV_ISSUER_KEYS": str(self.issuer_keys_path),
        }

    def _made_secrets(self) -> dict[str, str]:
        """The secrets a local stack makes for itself unless given: the promotion token, and each
        service's broker password (a default that anyone can guess would undo the broker's trust)."""
        made = {"PROMOTION_TOKEN": "promotion-token"}
        made |= {f"{service.upper()}_AMQP_PASSWORD": f"{service}-amqp-password" for service in SERVICES}
        return {name: self._local_secret(file) for name, file in made.items() if name not in self.environment}

    def _local_secret(self, name: str) -> str:
        """A secret kept in the state dir (readable by its owner only), made the first time it is needed."""
        path = self.state_dir / name
        try:
            secret = path.read_text().strip()
        except FileNotFoundError:
            secret = ""
        if len(secret) >= _SECRET_LENGTH:
            return secret
        secret = secrets.token_hex(_SECRET_LENGTH // 2)
        write_private(path, secret)
        return secret

    def _failed_programs(self) -> dict[str, str]:
        return {p.program: f"{p.name} {p.state}" for p in self.supervisor.processes() if p.state in _FAILED_STATES}

    def _check_ports_free(self) -> None:
        """A stray server on our ports could answer /readyz in our place."""
        ports = {"gateway": self.env.port("GATEWAY_PORT", 8080)}
        ports |= {service: self.env.grpc_port(service) for service in SERVICES}
        ports |= {f"{name} metrics": metrics_address(name, self.env)[1] for name in MODULES}
        if self.dev_issuer:
            ports["issuer"] = self.env.port("DEV_ISSUER_PORT", dev_issuer.DEFAULT_PORT)
        if observe.wanted(self.env):
            ports["prometheus"] = observe.prometheus_port(self.env)
        taken = [f"{port} ({name})" for name, port in ports.items() if infra.port_open("127.0.0.1", port)]
        if taken:
            raise StackError(f"ports already in use: {', '.join(taken)}; stop whatever holds them or choose others")
        for port in ports.values():
            infra.wait_until_bindable("127.0.0.1", port)


@dataclasses.dataclass(frozen=True)
class IssuerRecord:
    """Whose tokens a started stack accepts, kept in its state dir: `make token` runs in another environment."""

    url: str
    audience: str
    dev_issuer: bool  # the stack's own development issuer, rather than OIDC_ISSUER's

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / ISSUER_RECORD).write_text(json.dumps(dataclasses.asdict(self)) + "\n")

    @classmethod
    def load(cls, state_dir: Path) -> IssuerRecord | None:
        try:
            return cls(**json.loads((state_dir / ISSUER_RECORD).read_text()))
        except (OSError, ValueError, TypeError):  # none, or not one this code wrote
            return None


def _service_of(program: str) -> str:
    """`booking-2` → `booking`; the gateway and first replicas are named after themselves."""
    base, _, replica = program.rpartition("-")
    return base if replica.isdigit() and base else program


def _describe(process: ProcessState) -> str:
    hours, rest = divmod(process.uptime_seconds, 3600)
    up_for = f", up {hours}:{rest // 60:02d}:{rest % 60:02d}" if process.pid else ""
    restarts = f", restarted {process.restarts} time{'s' if process.restarts != 1 else ''}" if process.restarts else ""
    pid = f" pid {process.pid}" if process.pid else ""
    return f"{process.name}: {process.state}{pid}{up_for}{restarts}"


# --- the command line -------------------------------------------------------------------------------------------


def _print_summary(stack: LocalStack, how_to_stop: str) -> None:
    url = stack.gateway_url
    print(
        f"\nThe stack is up.\n  web page  {url}/  (sign in, book, organise)\n  gateway   {url}\n  API docs  {url}/docs"
    )
    for service in SERVICES:
        print(f"  gRPC      {service:<10} {stack.env.listen_host()}:{stack.env.grpc_port(service)}")
    for name in MODULES:
        host, port = metrics_address(name, stack.env)
        print(f"  metrics   {name:<10} http://{host}:{port}/metrics")
    if observe.wanted(stack.env):
        print(f"  prometheus           http://127.0.0.1:{observe.prometheus_port(stack.env)}/")
    if stack.dev_issuer:
        print(f"  issuer    {stack.issuer_url}  (development only; `make token SUB=alice ROLE=organizer`)")
    else:
        print(f"  issuer    {stack.issuer_url}  (OIDC_ISSUER, audience {stack.audience})")
    print(f"  logs      {relative(stack.log_dir)}/")
    print(f"supervisord restarts any process that dies; `make status` shows them. {how_to_stop}")


def _up(stack: LocalStack) -> int:
    for line in stack.up():
        print(line)
    _print_summary(stack, "Stop it with `make down`.")
    return 0


def _run(stack: LocalStack) -> int:
    # SIGTERM ends `run` the way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        for line in stack.up():
            print(line)
        _print_summary(stack, "Ctrl-C stops everything.")
        while stack.supervisor.running():
            time.sleep(0.5)
        print(f"\nsupervisord exited unexpectedly; see {relative(stack.supervisor.log_file)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    finally:
        # Cleanup must not be cut short by a second Ctrl-C or SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for line in stack.stop_own():
            print(line)


def _restore(stack: LocalStack, target: str | None) -> int:
    if not target:
        raise backup.BackupError('say which moment: make restore TARGET_TIME="2026-12-06 08:30:00" or TARGET=latest')
    for line in stack.restore(backup.parse_target(target)):
        print(line)
    _print_summary(stack, "Stop it with `make down`.")
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.stack", description="The whole stack on this machine.")
    parser.add_argument("command", choices=["run", "up", "down", "status", "backup", "restore"])
    parser.add_argument("--type", default="full", choices=backup.BACKUP_TYPES, help="backup: which kind")
    parser.add_argument("--target", help="restore: an ISO 8601 time (UTC unless an offset is given), or latest")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # keeps our lines in order with the log lines on stderr
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stack = LocalStack(STATE_DIR)
    commands = {
        "run": lambda: _run(stack),
        "up": lambda: _up(stack),
        "down": lambda: print("\n".join(stack.down())) or 0,
        "status": lambda: print("\n".join(stack.status())) or 0,
        "backup": lambda: print(stack.backup(args.type)) or 0,
        "restore": lambda: _restore(stack, args.target),
    }
    try:
        return commands[args.command]()
    except (ConfigError, StackError, SupervisorError, infra.InfraError, backup.BackupError) as error:
        print(f"stack {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
