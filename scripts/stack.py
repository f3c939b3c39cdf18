"""The whole stack on one machine: PostgreSQL, RabbitMQ, migrations, the three services and the gateway.

Usage: python -m scripts.stack run|up|down|status   (settings come from the environment, see README.md)

`run` stays in the foreground until Ctrl-C; `up` returns once GET /readyz answers 200 and `down` stops it.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from confbook_common.settings import ConfigError, Env
from scripts import infra
from scripts.migrate import SERVICES, migrate_all

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = REPO_ROOT / ".run" / "stack"
LOG_DIR = STATE_DIR / "logs"
PROCESSES_FILE = STATE_DIR / "processes.json"
MODULES = {service: f"services.{service}" for service in SERVICES} | {"gateway": "gateway"}
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class StackError(Exception):
    """The stack cannot start; the message says why, with the relevant log tails."""


@dataclasses.dataclass
class Child:
    """A recorded service process, as processes.json holds it."""

    name: str
    pid: int
    argv: list[str]
    log_file: str

    def is_running(self) -> bool:
        """Alive and still the program we started (pids get reused)."""
        return infra.process_alive(self.pid) and infra.process_cmdline(self.pid) == self.argv


@dataclasses.dataclass
class Stack:
    """What this invocation started, so that a failure or Ctrl-C stops exactly that."""

    processes: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)
    children: list[Child] = dataclasses.field(default_factory=list)
    infra_started: list[str] = dataclasses.field(default_factory=list)


# --- commands ---------------------------------------------------------------------------------------------------


def up(env: Env) -> int:
    stack = Stack()
    try:
        _start(env, stack)
        wait_until_ready(_gateway_url(env), stack.processes, LOG_DIR)
    except BaseException:  # a failure, a failed migration or Ctrl-C: leave nothing half-started behind
        _stop(stack)
        raise
    _print_summary(env, "Stop it with `make down`.")
    return 0


def run(env: Env) -> int:
    # SIGTERM ends `run` the way Ctrl-C does; the children, in their own sessions, see neither.
    signal.signal(signal.SIGTERM, _interrupt)
    stack = Stack()
    try:
        _start(env, stack)
        wait_until_ready(_gateway_url(env), stack.processes, LOG_DIR)
        _print_summary(env, "Ctrl-C stops everything.")
        name, code = _wait_for_first_exit(stack)
        print(f"\n{name} exited unexpectedly ({_exit_reason(code)})\n{_log_section(name, LOG_DIR)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    finally:
        _stop(stack)


def down() -> int:
    children = _recorded_children()
    if not children and not infra.load_record(STATE_DIR):
        print(f"nothing recorded in {_relative(STATE_DIR)}; nothing to stop")
        return 0
    for line in _stop_children(children) + infra.down(STATE_DIR):
        print(line)
    PROCESSES_FILE.unlink(missing_ok=True)
    return 0


def status(env: Env) -> int:
    children = _recorded_children()
    if not children:
        print(f"no services recorded in {_relative(PROCESSES_FILE)}")
    for child in children:
        state = "running" if child.is_running() else "NOT running"
        print(f"{child.name}: pid {child.pid} {state}; log {_relative(Path(child.log_file))}")
    problem = readiness_problem(_gateway_url(env))
    print(f"gateway {_gateway_url(env)}/readyz: {'ready (200)' if problem is None else f'not ready ({problem})'}")
    for line in infra.status(STATE_DIR, env.admin_database_url(), env.amqp_url()):
        print(line)
    return 0


# --- starting ---------------------------------------------------------------------------------------------------


def _start(env: Env, stack: Stack) -> None:
    if any(child.is_running() for child in _recorded_children()):
        raise StackError(f"already up (see {_relative(PROCESSES_FILE)}); make down first")
    _check_ports_free(env)
    outcomes = infra.up(STATE_DIR, env.admin_database_url(), env.amqp_url())
    stack.infra_started = [kind for kind, outcome in outcomes.items() if outcome is infra.Outcome.STARTED]
    for kind, outcome in outcomes.items():
        print(f"{kind}: {outcome.value}")
    migrate_all(env)
    for name in MODULES:
        process = launch(name, os.environ, LOG_DIR)
        stack.processes[name] = process
        stack.children.append(Child(name, process.pid, command(name), str(LOG_DIR / f"{name}.log")))
        _save_children(stack.children)


def command(name: str) -> list[str]:
    return [sys.executable, "-m", MODULES[name]]


def launch(
    name: str,
    environment: Mapping[str, str],
    log_dir: Path,
    *,
    log_name: str | None = None,
    argv: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start one service (or the gateway, or `argv`) in a session of its own, appending its output to
    <log_dir>/<log_name>.log (by default `name`). Its worker processes share the session."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{log_name or name}.log").open("ab") as log_file:
        log_file.write(f"--- started at {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        log_file.flush()
        return subprocess.Popen(
            argv or command(name),
            cwd=REPO_ROOT,
            # Unbuffered output, so that a crash's last words reach the log before we show its tail.
            env={**environment, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _check_ports_free(env: Env) -> None:
    """A stray server on our ports could answer /readyz in our place."""
    ports = {"gateway": env.port("GATEWAY_PORT", 8080)} | {service: env.grpc_port(service) for service in SERVICES}
    taken = [f"{port} ({name})" for name, port in ports.items() if infra.port_open("127.0.0.1", port)]
    if taken:
        raise StackError(f"ports already in use: {', '.join(taken)}; stop whatever holds them or choose others")
    for port in ports.values():
        infra.wait_until_bindable("127.0.0.1", port)


def wait_until_ready(
    gateway_url: str,
    processes: Mapping[str, subprocess.Popen[bytes]],
    log_dir: Path,
    timeout: float = READY_TIMEOUT,
) -> None:
    """Until GET /readyz answers 200; StackError, with the logs' last lines, if a process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while (problem := readiness_problem(gateway_url)) is not None:
        exited = {name: process.returncode for name, process in processes.items() if process.poll() is not None}
        if exited:
            raise StackError(_exit_report(exited, log_dir))
        if time.monotonic() > deadline:
            tails = "\n".join(_log_section(name, log_dir) for name in processes)
            raise StackError(f"GET /readyz did not answer 200 within {timeout:.0f} s ({problem})\n{tails}")
        time.sleep(0.2)


def readiness_problem(gateway_url: str) -> str | None:
    """None when GET /readyz answers 200, else what it said."""
    try:
        with urllib.request.urlopen(f"{gateway_url}/readyz", timeout=2) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.read(300).decode(errors='replace')}".strip()
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def _wait_for_first_exit(stack: Stack) -> tuple[str, int]:
    while True:
        for name, process in stack.processes.items():
            if process.poll() is not None:
                return name, process.returncode
        time.sleep(0.5)


# --- stopping ---------------------------------------------------------------------------------------------------


def _stop(stack: Stack) -> None:
    """Stop what this invocation started, children first; the stack is empty afterwards."""
    # Cleanup must not be cut short by a second Ctrl-C or SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lines = _stop_children(stack.children)
    if stack.infra_started:
        lines += infra.down(STATE_DIR, stack.infra_started)
    for line in lines:
        print(line)
    if stack.children:  # with none, processes.json may describe a stack that is not ours, as in a refused `up`
        PROCESSES_FILE.unlink(missing_ok=True)
    stack.processes, stack.children, stack.infra_started = {}, [], []


def _stop_children(children: list[Child]) -> list[str]:
    running = [child for child in children if child.is_running()]
    infra.terminate_process_groups([child.pid for child in running], STOP_TIMEOUT)
    return [
        f"{child.name}: stopped pid {child.pid}" if child in running else f"{child.name}: pid {child.pid} had exited"
        for child in children
    ]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# --- records and reports ----------------------------------------------------------------------------------------


def _save_children(children: list[Child]) -> None:
    PROCESSES_FILE.write_text(json.dumps([dataclasses.asdict(child) for child in children], indent=2) + "\n")


def _recorded_children() -> list[Child]:
    if not PROCESSES_FILE.exists():
        return []
    return [Child(**fields) for fields in json.loads(PROCESSES_FILE.read_text())]


def _gateway_url(env: Env) -> str:
    # A wildcard listen address is reached on loopback.
    host = env.listen_host()
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{f'[{host}]' if ':' in host else host}:{env.port('GATEWAY_PORT', 8080)}"


def _exit_report(exited: dict[str, int], log_dir: Path) -> str:
    names = ", ".join(f"{name} ({_exit_reason(code)})" for name, code in exited.items())
    return f"exited while starting: {names}\n" + "\n".join(_log_section(name, log_dir) for name in exited)


def _exit_reason(returncode: int) -> str:
    return f"killed by {signal.Signals(-returncode).name}" if returncode < 0 else f"exit code {returncode}"


def _log_section(name: str, log_dir: Path) -> str:
    path = log_dir / f"{name}.log"
    return f"--- last lines of {_relative(path)} ---\n{infra.log_tail(path, 20)}"


def _print_summary(env: Env, how_to_stop: str) -> None:
    url = _gateway_url(env)
    print(f"\nThe stack is up.\n  gateway   {url}\n  API docs  {url}/docs")
    for service in SERVICES:
        print(f"  gRPC      {service:<10} {env.listen_host()}:{env.grpc_port(service)}")
    for path in sorted(LOG_DIR.glob("*.log")):
        print(f"  log       {_relative(path)}")
    print(how_to_stop)


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.stack", description="The whole stack on this machine.")
    parser.add_argument("command", choices=["run", "up", "down", "status"])
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # keeps our lines in order with the log lines on stderr
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    env = Env()
    commands = {"run": lambda: run(env), "up": lambda: up(env), "down": down, "status": lambda: status(env)}
    try:
        return commands[args.command]()
    except (ConfigError, StackError, infra.InfraError) as error:
        print(f"stack {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
