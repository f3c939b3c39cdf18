"""Private PostgreSQL and RabbitMQ on loopback, or reuse of ones that already answer at the configured URLs.

Usage: python -m scripts.infra up|down|status|restart-rabbitmq --state-dir DIR [--database-url URL] [--amqp-url URL]

<state-dir>/infra.json records what this state dir started, so that `down` stops exactly that and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import errno
import hashlib
import json
import logging
import os
import pwd
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import pika
import pika.exceptions
import psycopg2
import psycopg2.errors
from psycopg2 import sql
from sqlalchemy.engine import URL, make_url

from confbook_common.settings import MANAGEMENT_PORT_OFFSET, Env, amqp_nodes
from scripts.private_files import write_private

log = logging.getLogger("infra")

# The kinds of server; each runs as the OS user of the same name, as Debian's packages create them.
POSTGRES = "postgres"
# The superuser of a cluster we start: only this module logs in as it, to make the stack's admin role.
SUPERUSER = "postgres"
RABBITMQ = "rabbitmq"

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD = "/usr/bin/epmd"
START_TIMEOUT = {POSTGRES: 30.0, RABBITMQ: 60.0}
RABBITMQ_STOP_TIMEOUT = 30.0


class InfraError(Exception):
    """A server cannot be reused, started or stopped; the message says why."""


class Outcome(enum.Enum):
    """What `up` did about one server."""

    STARTED = "started a private instance"
    ALREADY_OURS = "already running, started earlier from this state dir"
    REUSED = "reused a server that already answered (not ours to stop)"


@dataclasses.dataclass
class Instance:
    """One server a state dir knows about; the other fields are set only for one it started itself."""

    host: str
    port: int
    started_by_us: bool
    url: str | None = None
    pid: int | None = None  # None while stopped
    data_dir: str | None = None
    log_file: str | None = None
    # RabbitMQ only: its data lives under its node name, so every start uses the same name; its ports are kept too.
    node_name: str | None = None
    epmd_port: int | None = None
    dist_port: int | None = None


Record = dict[str, Instance]

# More settings for a private PostgreSQL, decided by the caller from its data dir and port (WAL archiving:
# scripts.backup): `name=value` strings given to the server as `-c` options at each start.
PostgresSettings = Callable[[Path, int], list[str]]


# --- public API -----------------------------------------------------------------------------------------------


def up(
    state_dir: Path, database_url: str, amqp_url: str, postgres_settings: PostgresSettings | None = None
) -> dict[str, Outcome]:
    """Make PostgreSQL and RabbitMQ answer at their URLs, starting private ones on loopback where nothing does.

    A private PostgreSQL started here gets `postgres_settings` too. All or nothing: when one cannot be
    brought up, what this call started is stopped again.
    """
    state_dir = state_dir.resolve()
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, Outcome] = {}
    try:
        # Of a cluster's nodes, the first is probed: a cluster is reused, never started here.
        for kind, url in ((POSTGRES, database_url), (RABBITMQ, amqp_nodes(amqp_url)[0])):
            outcomes[kind] = _bring_up(state_dir, kind, url, postgres_settings)
    except BaseException:
        down(state_dir, [kind for kind, outcome in outcomes.items() if outcome is Outcome.STARTED])
        raise
    return outcomes


def down(state_dir: Path, kinds: Iterable[str] = (POSTGRES, RABBITMQ)) -> list[str]:
    """Stop what this state dir started (of `kinds`) and forget it; data dirs stay. Returns what was done."""
    record = load_record(state_dir)
    done = []
    for kind in kinds:
        instance = record.pop(kind, None)
        if instance is None:
            continue
        if instance.started_by_us:
            done.append(f"{kind} on {instance.host}:{instance.port}: {_stop(kind, instance)}")
        else:
            done.append(f"{kind} on {instance.host}:{instance.port}: left running (not ours)")
        _save_record(state_dir, record)
    return done


def status(state_dir: Path, database_url: str, amqp_url: str) -> list[str]:
    """One line per server: who started it, its process, and whether it answers now."""
    record = load_record(state_dir)
    lines = []
    for kind, url in ((POSTGRES, database_url), (RABBITMQ, amqp_nodes(amqp_url)[0])):
        instance = record.get(kind)
        if instance is None:
            owner = "not recorded in this state dir"
        elif instance.started_by_us:
            running = f"pid {instance.pid} running" if _is_ours(kind, instance) else "not running"
            owner = f"ours, {running}, data {instance.data_dir}, log {instance.log_file}"
        else:
            owner = "reused, not ours"
        problem = _probe(kind, instance.url if instance and instance.url else url)
        answers = "answers" if problem is None else f"does not answer ({problem})"
        lines.append(f"{kind}: {owner}; {answers}")
    return lines


def stop_rabbitmq(state_dir: Path) -> None:
    """Stop the private broker this state dir started but keep its record, so `start_rabbitmq` brings it back."""
    record = load_record(state_dir)
    instance = _own_rabbitmq(record, state_dir)
    log.info("rabbitmq: %s", _stop(RABBITMQ, instance))
    instance.pid = None
    _save_record(state_dir, record)


def start_rabbitmq(state_dir: Path) -> None:
    """Start the private broker again with the same node, data and ports; returns once AMQP answers."""
    record = load_record(state_dir)
    instance = _own_rabbitmq(record, state_dir)
    if not _is_ours(RABBITMQ, instance):
        _start_rabbitmq(state_dir, record, instance)


def restart_rabbitmq(state_dir: Path) -> None:
    """Stop and start the private broker; durable queues and persistent messages survive."""
    stop_rabbitmq(state_dir)
    start_rabbitmq(state_dir)


def pause_postgres(state_dir: Path) -> None:
    """SIGSTOP the private PostgreSQL this state dir started, every backend with it: connections stay open but
    nothing answers, as when its machine stalls. `resume_postgres` lets it go on."""
    os.killpg(_own_postgres(load_record(state_dir), state_dir), signal.SIGSTOP)


def resume_postgres(state_dir: Path) -> None:
    os.killpg(_own_postgres(load_record(state_dir), state_dir), signal.SIGCONT)


def _own_postgres(record: Record, state_dir: Path) -> int:
    """The pid of our running postmaster; it leads the process group of all its backends."""
    instance = record.get(POSTGRES)
    if instance is None or not instance.started_by_us or instance.pid is None or not _is_ours(POSTGRES, instance):
        raise InfraError(f"{state_dir} runs no PostgreSQL of its own")
    return instance.pid


def load_record(state_dir: Path) -> Record:
    path = state_dir / "infra.json"
    if not path.exists():
        return {}
    return {kind: Instance(**fields) for kind, fields in json.loads(path.read_text()).items()}


# --- processes and ports (also used by scripts.stack) -----------------------------------------------------------


def process_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie; reaps it if it is an exited child of ours."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def process_cmdline(pid: int) -> list[str]:
    """The process's argv, or [] when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def terminate_process_groups(pids: Iterable[int], timeout: float) -> None:
    """SIGTERM the process groups these pids lead, wait up to `timeout` for the leaders, then SIGKILL the rest."""
    pids = list(pids)
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    if wait_for_exit(pids, timeout):
        return
    for pid in pids:
        if process_alive(pid):
            log.warning("pid %d did not stop within %.0f s; killing it", pid, timeout)
            _signal_group(pid, signal.SIGKILL)
    wait_for_exit(pids, 5.0)


def port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_until_bindable(address: str, port: int, timeout: float = 65.0) -> None:
    """Wait while the port cannot be listened on because a closed connection holds it in TIME_WAIT.

    A client connection that once got this port as its ephemeral local port keeps it for 60 s after closing;
    SO_REUSEADDR does not help. Ports in the ephemeral range (32768-60999 on Linux) can meet this.
    """
    if _bindable(address, port):
        return
    log.info("port %d is held by a recently closed connection (TIME_WAIT); waiting for it", port)
    deadline = time.monotonic() + timeout
    while not _bindable(address, port):
        if port_open(address, port) or time.monotonic() > deadline:
            raise InfraError(f"cannot listen on {address}:{port}: the address is in use")
        time.sleep(1.0)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        # Our servers and services lead their own sessions; signalling the group reaches their helpers too.
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def wait_for_exit(pids: list[int], timeout: float) -> bool:
    """True once none of `pids` runs; False if some still do after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while any(process_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _process_environ(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return raw.decode(errors="replace").split("\0")


# --- deciding what to do ----------------------------------------------------------------------------------------


def _bring_up(state_dir: Path, kind: str, url: str, postgres_settings: PostgresSettings | None = None) -> Outcome:
    host, port = _address(kind, url)
    record = load_record(state_dir)
    existing = record.get(kind)
    if existing and existing.started_by_us and _is_ours(kind, existing):
        if existing.port != port:
            raise InfraError(f"{state_dir} already runs {kind} on port {existing.port}, not {port}; run down first")
        _wait_until_answers(kind, url, existing)
        return Outcome.ALREADY_OURS
    problem = _probe(kind, url)
    if problem is None:
        log.info("%s answers at %s:%d; reusing it", kind, host, port)
        # The record of our own stopped instance stays: its data dir and ports are still ours to reuse.
        if not (existing and existing.started_by_us):
            record[kind] = Instance(host=host, port=port, started_by_us=False)
            _save_record(state_dir, record)
        return Outcome.REUSED
    if port_open(host, port):
        raise InfraError(f"something listens on {host}:{port} but {kind} there does not let us in: {problem}")
    if host not in LOOPBACK_HOSTS:
        raise InfraError(f"{kind} does not answer at {host}:{port} ({problem}); a private one starts only on loopback")
    previous = existing if existing and existing.started_by_us else None
    if kind == POSTGRES:
        _start_postgres(state_dir, record, url, previous, postgres_settings)
    else:
        _start_rabbitmq(state_dir, record, previous or _new_rabbitmq(state_dir, url))
    return Outcome.STARTED


def _probe(kind: str, url: str) -> str | None:
    """None when the server at the URL lets us in, else why not."""
    return _probe_postgres(url) if kind == POSTGRES else _probe_rabbitmq(url)


def _address(kind: str, url: str) -> tuple[str, int]:
    if kind == POSTGRES:
        target = make_url(url)
        return target.host or "127.0.0.1", target.port or 5432
    params = pika.URLParameters(url)
    return params.host, params.port


def _is_ours(kind: str, instance: Instance) -> bool:
    """The recorded pid still runs the server we started (pids get reused)."""
    if instance.pid is None or not process_alive(instance.pid):
        return False
    if kind == POSTGRES:
        return process_cmdline(instance.pid)[1:3] == ["-D", instance.data_dir]
    # The pid leads the broker's shell wrapper (the Erlang VM is its child), started with our node name.
    return RABBITMQ_SERVER in process_cmdline(instance.pid) and (
        f"RABBITMQ_NODENAME={instance.node_name}" in _process_environ(instance.pid)
    )


def _await_start(state_dir: Path, record: Record, kind: str, instance: Instance, started: float) -> None:
    """Record the new process at once (so `down` can stop it whatever happens next), then wait for it to answer."""
    assert instance.url is not None
    record[kind] = instance
    _save_record(state_dir, record)
    try:
        _wait_until_answers(kind, instance.url, instance)
    except InfraError:
        _stop(kind, instance)
        instance.pid = None
        _save_record(state_dir, record)
        raise
    log.info("%s started on %s:%d in %.1f s", kind, instance.host, instance.port, time.monotonic() - started)


def _wait_until_answers(kind: str, url: str, instance: Instance) -> None:
    timeout = START_TIMEOUT[kind]
    deadline = time.monotonic() + timeout
    admin_ready = False
    while (problem := _probe(kind, url)) is not None:
        if kind == POSTGRES and not admin_ready and instance.data_dir:
            # Our own cluster: its superuser makes the URL's role once the server takes logins.
            admin_ready = _provide_admin_role(Path(instance.data_dir), make_url(url))
            if admin_ready:
                continue
        if instance.pid is not None and not process_alive(instance.pid):
            raise InfraError(f"{kind} exited while starting; {_log_hint(instance)}")
        if kind == RABBITMQ and instance.data_dir and _refused_login(problem):
            raise InfraError(
                f"the private RabbitMQ in {instance.data_dir} does not know the account in AMQP_URL: it was "
                "created with another (an earlier version's default was guest). Remove that directory to start "
                "it afresh, or set AMQP_URL to its account."
            )
        if time.monotonic() > deadline:
            raise InfraError(f"{kind} did not answer within {timeout:.0f} s ({problem}); {_log_hint(instance)}")
        time.sleep(0.3)


def _refused_login(problem: str) -> bool:
    return any(name in problem for name in ("AuthenticationError", "AccessDenied", "ACCESS_REFUSED"))


def _stop(kind: str, instance: Instance) -> str:
    """Stop our server if its process is still the one we started; says what happened."""
    if instance.pid is None:
        outcome = "was not running; nothing to stop"
    elif not _is_ours(kind, instance):
        outcome = f"pid {instance.pid} no longer runs it; nothing to stop"
    else:
        if kind == POSTGRES:
            _stop_postgres(instance)
        else:
            terminate_process_groups([instance.pid], RABBITMQ_STOP_TIMEOUT)
        outcome = f"stopped pid {instance.pid}"
    if kind == RABBITMQ:
        _stop_epmd(instance)
    return outcome


def _log_hint(instance: Instance) -> str:
    if not instance.log_file:
        return "no log"
    return f"last lines of {instance.log_file}:\n{log_tail(Path(instance.log_file))}"


# --- PostgreSQL -------------------------------------------------------------------------------------------------


def connect_postgres(target: URL, database: str | None = None) -> Any:
    """A psycopg2 connection with the URL's credentials, to its database or the one named."""
    return psycopg2.connect(
        host=target.host,
        port=target.port or 5432,
        user=target.username,
        password=target.password,
        dbname=database or target.database,
        connect_timeout=2,
    )


def _probe_postgres(url: str) -> str | None:
    """None when the URL's database lets us in (created first if only it was missing), else why not."""
    target = make_url(url)
    try:
        connect_postgres(target).close()
    except psycopg2.OperationalError as error:
        if f'database "{target.database}" does not exist' not in str(error):
            return " ".join(str(error).split())
        _create_database(target)
    return None


def _create_database(target: URL) -> None:
    try:
        connection = connect_postgres(target, database="postgres")
    except psycopg2.Error as error:
        raise InfraError(f"database {target.database} does not exist and we cannot create it: {error}") from None
    connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.database)))
        log.info("created database %s", target.database)
    except psycopg2.errors.DuplicateDatabase:
        pass  # someone else created it between our two connections
    except psycopg2.Error as error:
        raise InfraError(f"database {target.database} does not exist and we cannot create it: {error}") from None
    finally:
        connection.close()


def _postgres_bin() -> Path:
    initdbs = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if not initdbs:
        raise InfraError("no PostgreSQL server under /usr/lib/postgresql/*/bin; run `make system-deps`")
    return initdbs[-1].parent


def _start_postgres(
    state_dir: Path, record: Record, url: str, previous: Instance | None, settings: PostgresSettings | None = None
) -> None:
    started = time.monotonic()
    host, port = _address(POSTGRES, url)
    bin_dir = _postgres_bin()
    log_path = state_dir / "logs" / "postgres.log"
    with log_path.open("a") as log_file:
        known = previous.data_dir if previous else None
        data_dir = Path(known) if known else _data_dir(state_dir, POSTGRES, log_file)
        if not (data_dir / "PG_VERSION").exists():
            _initdb(bin_dir, data_dir, log_file)
        wait_until_bindable(_listen_address(host), port)
        socket_dir = postgres_socket_dir(data_dir)
        command = [str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port)]
        command += ["-c", f"listen_addresses={_listen_address(host)}", "-c", f"unix_socket_directories={socket_dir}"]
        # Each service process keeps a pool; several workers and replicas of each need more than the default 100.
        command += ["-c", "max_connections=400"]
        for setting in settings(data_dir, port) if settings else []:
            command += ["-c", setting]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            cwd=data_dir, start_new_session=True, **run_as(POSTGRES),
        )  # fmt: skip
    instance = Instance(
        host=host,
        port=port,
        started_by_us=True,
        url=url,
        pid=process.pid,
        data_dir=str(data_dir),
        log_file=str(log_path),
    )
    _await_start(state_dir, record, POSTGRES, instance, started)


def postgres_socket_dir(data_dir: Path) -> str:
    """Where a private PostgreSQL puts its Unix socket (pgBackRest reaches it there): its data dir, or, when
    that path is too long for a socket (at most 107 bytes), a short directory of its own under /tmp."""
    if len(str(data_dir)) < 80:
        return str(data_dir)
    directory = Path("/tmp") / f"confbook-pg-{hashlib.sha256(str(data_dir).encode()).hexdigest()[:10]}"
    directory.mkdir(mode=0o755, exist_ok=True)
    chown(directory, POSTGRES)
    return str(directory)


def stop_postgres(state_dir: Path) -> None:
    """Stop the private PostgreSQL this state dir started but keep its record (its data dir and port), so
    that `start_postgres` brings it back."""
    record = load_record(state_dir)
    instance = record.get(POSTGRES)
    if instance is None or not instance.started_by_us:
        raise InfraError(f"{state_dir} did not start PostgreSQL (it reuses one that is not its own, or none)")
    log.info("postgres: %s", _stop(POSTGRES, instance))
    instance.pid = None
    _save_record(state_dir, record)


def start_postgres(state_dir: Path, settings: PostgresSettings | None = None) -> None:
    """Start the private PostgreSQL again with the same data dir and port; returns once it lets us in."""
    record = load_record(state_dir)
    instance = record.get(POSTGRES)
    if instance is None or not instance.started_by_us or instance.url is None:
        raise InfraError(f"{state_dir} did not start PostgreSQL (it reuses one that is not its own, or none)")
    if not _is_ours(POSTGRES, instance):
        _start_postgres(state_dir, record, instance.url, instance, settings)


def _initdb(bin_dir: Path, data_dir: Path, log_file: IO[str]) -> None:
    """A new cluster whose superuser is `postgres`, with a password of its own kept beside the data dir.

    The stack's admin role (DATABASE_URL's) is made afterwards, without superuser (_provide_admin_role).
    """
    password = secrets.token_urlsafe(24)
    write_private(_superuser_password_file(data_dir), password)
    with tempfile.NamedTemporaryFile("w", dir=data_dir.parent, prefix=".pwfile-") as password_file:
        password_file.write(password)
        password_file.flush()
        chown(Path(password_file.name), POSTGRES)
        command = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER]
        command += [f"--pwfile={password_file.name}", "--auth-host=scram-sha-256", "--auth-local=peer"]
        command += ["-E", "UTF8", "--locale=C.UTF-8"]
        log_file.flush()
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            cwd=data_dir.parent, check=False, **run_as(POSTGRES),
        )  # fmt: skip
    if result.returncode != 0:
        raise InfraError(f"initdb failed; last lines of {log_file.name}:\n{log_tail(Path(log_file.name))}")


def _superuser_password_file(data_dir: Path) -> Path:
    return data_dir.with_name(f"{data_dir.name}-superuser-password")


def superuser_name(data_dir: Path, admin_user: str) -> str:
    """The superuser of the private cluster in `data_dir`: `postgres`, or, in a cluster made before the
    admin role was separate (it has no superuser password), the admin role itself."""
    made_before = (data_dir / "PG_VERSION").exists() and not _superuser_password_file(data_dir).exists()
    return admin_user if made_before else SUPERUSER


def superuser_url(data_dir: Path, port: int) -> URL | None:
    """How to log in as the private cluster's superuser over TCP; None for a cluster made before the
    admin role was separate (its socket trusts local logins)."""
    try:
        password = _superuser_password_file(data_dir).read_text().strip()
    except FileNotFoundError:
        return None
    return URL.create("postgresql", SUPERUSER, password, "127.0.0.1", port, "postgres")


def _provide_admin_role(data_dir: Path, target: URL) -> bool:
    """The URL's role (creating roles and databases, not superuser) and its database, made by the cluster's
    superuser; False while the server does not take logins yet. A cluster made before there was a separate
    superuser (no password file) has the URL's role as its superuser, and is left so."""
    superuser = superuser_url(data_dir, target.port or 5432)
    if superuser is None:
        return True
    superuser = superuser.set(host=target.host)
    try:
        connection = connect_postgres(superuser, database="postgres")
    except psycopg2.OperationalError:
        return False
    connection.autocommit = True
    admin = sql.Identifier(target.username or "")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (target.username,))
            verb = sql.SQL("ALTER" if cursor.fetchone() else "CREATE")
            cursor.execute(
                sql.SQL("{} ROLE {} LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD %s").format(verb, admin),
                (target.password,),
            )
            # DROP DATABASE ... WITH (FORCE) of a test database ends the services' sessions in it.
            cursor.execute(sql.SQL("GRANT pg_signal_backend TO {}").format(admin))
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(target.database), admin))
    finally:
        connection.close()
    return True


def _stop_postgres(instance: Instance) -> None:
    assert instance.pid is not None and instance.data_dir is not None
    command = [str(_postgres_bin() / "pg_ctl"), "stop", "-m", "fast", "-D", instance.data_dir, "-t", "30"]
    subprocess.run(command, capture_output=True, cwd="/", check=False, **run_as(POSTGRES))
    # pg_ctl returns once postmaster.pid is gone; the postmaster itself may be our child, still to be reaped.
    if not wait_for_exit([instance.pid], 30.0):
        terminate_process_groups([instance.pid], 5.0)


# --- RabbitMQ ---------------------------------------------------------------------------------------------------


def _probe_rabbitmq(url: str) -> str | None:
    """A real AMQP handshake: an open port alone may be a broker still booting."""
    params = pika.URLParameters(url)
    params.socket_timeout = 2
    params.stack_timeout = 5
    params.blocked_connection_timeout = 2
    params.connection_attempts = 1
    with _quiet_pika():
        try:
            pika.BlockingConnection(params).close()
        except (pika.exceptions.AMQPError, OSError) as error:
            return repr(error)
    return None


@contextlib.contextmanager
def _quiet_pika() -> Iterator[None]:
    """pika logs every refused connection at ERROR; while probing, a refusal is an expected answer."""
    pika_log = logging.getLogger("pika")
    level = pika_log.level
    pika_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        pika_log.setLevel(level)


def _new_rabbitmq(state_dir: Path, url: str) -> Instance:
    """A fresh private broker's fixed facts (its config files are written at each start)."""
    params = pika.URLParameters(url)
    log_path = state_dir / "logs" / "rabbitmq.log"
    with log_path.open("a") as log_file:
        base = _data_dir(state_dir, RABBITMQ, log_file)
    epmd_port, dist_port = free_ports(2)
    return Instance(
        host=params.host,
        port=params.port,
        started_by_us=True,
        url=url,
        data_dir=str(base),
        log_file=str(log_path),
        node_name=f"confbook{params.port}@localhost",
        epmd_port=epmd_port,
        dist_port=dist_port,
    )


def _write_rabbitmq_config(base: Path, url: str) -> None:
    """Written at every start, so that a data dir made by an earlier version gets today's settings."""
    params = pika.URLParameters(url)
    credentials = params.credentials
    assert isinstance(credentials, pika.PlainCredentials)
    address = _listen_address(params.host)
    config = [
        f"listeners.tcp.default = {address}:{params.port}",
        # The URL's account is the broker's first and only one (no guest); used on first start only.
        f"default_user = {credentials.username}",
        f"default_pass = {credentials.password}",
        f"default_vhost = {params.virtual_host}",
        # The management API, on loopback only, is how the migrations provision each service's user.
        f"management.tcp.ip = {address}",
        f"management.tcp.port = {params.port + MANAGEMENT_PORT_OFFSET}",
    ]
    base.mkdir(parents=True, exist_ok=True)  # removed by hand since the last start, perhaps
    write_private(base / "rabbitmq.conf", "\n".join(config) + "\n", owner=RABBITMQ)
    (base / "enabled_plugins").write_text("[rabbitmq_management].\n")
    # Empty on purpose: keeps the machine's /etc/rabbitmq/rabbitmq-env.conf away from this broker.
    (base / "rabbitmq-env.conf").write_text("")


def _start_rabbitmq(state_dir: Path, record: Record, instance: Instance) -> None:
    assert instance.data_dir and instance.log_file and instance.node_name and instance.url
    started = time.monotonic()
    base = Path(instance.data_dir)
    _write_rabbitmq_config(base, instance.url)
    # Erlang ports taken since the last start are replaced; the data depends only on the node name.
    if not all(port is not None and _bindable("127.0.0.1", port) for port in (instance.epmd_port, instance.dist_port)):
        instance.epmd_port, instance.dist_port = free_ports(2)
    wait_until_bindable(_listen_address(instance.host), instance.port)
    wait_until_bindable(_listen_address(instance.host), instance.port + MANAGEMENT_PORT_OFFSET)
    for directory in (base / "mnesia", base / "log"):
        directory.mkdir(exist_ok=True)
    _chown_tree(base, RABBITMQ)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(base),  # the Erlang cookie is created here
        "RABBITMQ_NODENAME": instance.node_name,
        "RABBITMQ_NODE_IP_ADDRESS": _listen_address(instance.host),
        "RABBITMQ_NODE_PORT": str(instance.port),
        "RABBITMQ_DIST_PORT": str(instance.dist_port),
        "ERL_EPMD_PORT": str(instance.epmd_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),  # the server appends .conf
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),  # absent: keeps /etc's out
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }
    with open(instance.log_file, "a") as log_file:
        process = subprocess.Popen(
            [RABBITMQ_SERVER], env=environment, stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT, cwd=base, start_new_session=True, **run_as(RABBITMQ),
        )  # fmt: skip
    instance.pid = process.pid
    _await_start(state_dir, record, RABBITMQ, instance, started)


def _stop_epmd(instance: Instance) -> None:
    """The broker's private epmd daemonizes out of its process group; ask it to go, by its port."""
    if instance.epmd_port is None or not port_open("127.0.0.1", instance.epmd_port):
        return
    environment = {"ERL_EPMD_PORT": str(instance.epmd_port), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    subprocess.run([EPMD, "-kill"], env=environment, capture_output=True, check=False)
    deadline = time.monotonic() + 5.0
    while port_open("127.0.0.1", instance.epmd_port) and time.monotonic() < deadline:
        time.sleep(0.1)


def _own_rabbitmq(record: Record, state_dir: Path) -> Instance:
    instance = record.get(RABBITMQ)
    if instance is None or not instance.started_by_us:
        raise InfraError(f"{state_dir} did not start RabbitMQ (it reuses one that is not its own, or none)")
    return instance


# --- files, users and ports -------------------------------------------------------------------------------------


def _save_record(state_dir: Path, record: Record) -> None:
    path = state_dir / "infra.json"
    if not record:
        path.unlink(missing_ok=True)
        return
    # It holds the admin URLs, passwords and all.
    write_private(path, json.dumps({kind: dataclasses.asdict(i) for kind, i in record.items()}, indent=2) + "\n")


def _data_dir(state_dir: Path, kind: str, log_file: IO[str]) -> Path:
    """<state-dir>/<kind>, or a directory under /var/tmp when the server's OS user cannot reach the state dir."""
    if _reachable(state_dir, kind):
        directory = state_dir / kind
    else:
        digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:10]
        parent = Path("/var/tmp") / f"confbook-{digest}"
        parent.mkdir(exist_ok=True)
        parent.chmod(0o755)
        directory = parent / kind
        message = f"{state_dir} is not reachable by the {kind} user; keeping {kind} data in {directory}"
        log.warning(message)
        log_file.write(message + "\n")
        log_file.flush()
    directory.mkdir(exist_ok=True)
    chown(directory, kind)
    # The server's files (its configuration with the admin password, its users' password hashes) are its own.
    directory.chmod(0o700)
    return directory


def run_as(user: str) -> dict[str, Any]:
    """Popen arguments that drop root to the server's own user (initdb and postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": user, "group": user, "extra_groups": []}


def _reachable(directory: Path, user: str) -> bool:
    result = subprocess.run(["test", "-x", str(directory)], cwd="/", check=False, **run_as(user))
    return result.returncode == 0


def chown(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.lchown(path, entry.pw_uid, entry.pw_gid)


def _chown_tree(root: Path, user: str) -> None:
    chown(root, user)
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            chown(Path(directory, name), user)


def _listen_address(host: str) -> str:
    return "::1" if host == "::1" else "127.0.0.1"


def _bindable(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers themselves do
        try:
            probe.bind((address, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nothing is bound to now.

    Every probe stays bound until all are chosen: one probe after another, the kernel may hand out
    the same port twice, and two of our gRPC servers given one port would share it (SO_REUSEPORT)
    without a word, each then getting the other's calls.
    """
    with contextlib.ExitStack() as probes:
        sockets = [probes.enter_context(socket.socket()) for _ in range(count)]
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in sockets]


# --- command line -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    env = Env()
    parser = argparse.ArgumentParser(prog="python -m scripts.infra", description="Private PostgreSQL and RabbitMQ.")
    parser.add_argument("command", choices=["up", "down", "status", "restart-rabbitmq"])
    parser.add_argument("--state-dir", type=Path, required=True, help="where infra.json, logs and data live")
    parser.add_argument("--database-url", default=env.admin_database_url())
    parser.add_argument("--amqp-url", default=env.amqp_url())
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    state_dir: Path = args.state_dir.resolve()
    try:
        if args.command == "up":
            for kind, outcome in up(state_dir, args.database_url, args.amqp_url).items():
                print(f"{kind}: {outcome.value}")
        elif args.command == "down":
            print("\n".join(down(state_dir) or [f"nothing recorded in {state_dir}; nothing to stop"]))
        elif args.command == "status":
            print("\n".join(status(state_dir, args.database_url, args.amqp_url)))
        else:
            restart_rabbitmq(state_dir)
            print("rabbitmq: restarted")
    except InfraError as error:
        print(f"infra {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
