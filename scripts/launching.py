"""Starting the stack's programs and waiting for them: what the supervised stack (scripts.stack),
the throw-away test stack (scripts.sandbox) and the benchmark share."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from confbook_common.settings import SERVICES
from scripts import infra

REPO_ROOT = Path(__file__).resolve().parent.parent
MODULES = {service: f"services.{service}" for service in SERVICES} | {"gateway": "gateway"}
READY_TIMEOUT = 60.0
# What begins each start's part of a log, and how a JSON line at level ERROR or above reads.
_START_MARK = "--- started at "
_ERROR_MARKS = ('"level": "ERROR"', '"level": "CRITICAL"')
_ERRORS_SHOWN = 10


class StackError(Exception):
    """The stack cannot start; the message says why, with the relevant log tails."""


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
        log_file.write(f"{_START_MARK}{time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
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


def exited_processes(processes: Mapping[str, subprocess.Popen[bytes]]) -> Callable[[], dict[str, str]]:
    """For wait_until_ready: which of these processes have exited, and how."""
    return lambda: {
        name: exit_reason(process.returncode) for name, process in processes.items() if process.poll() is not None
    }


def wait_until_ready(
    gateway_url: str,
    processes: Mapping[str, subprocess.Popen[bytes]] | Callable[[], dict[str, str]],
    log_dir: Path,
    timeout: float = READY_TIMEOUT,
) -> None:
    """Until GET /readyz answers 200; StackError, with the logs' last lines, if a process fails or time runs out.

    `processes` are the started processes, or a function naming the programs that failed and why.
    """
    wait_until_answers(f"{gateway_url}/readyz", processes, log_dir, timeout)


def wait_until_answers(
    url: str,
    processes: Mapping[str, subprocess.Popen[bytes]] | Callable[[], dict[str, str]],
    log_dir: Path,
    timeout: float = READY_TIMEOUT,
) -> None:
    """Until GET `url` answers 200 (the gateway's /readyz, the dev issuer's discovery); as wait_until_ready."""
    failures = processes if callable(processes) else exited_processes(processes)
    deadline = time.monotonic() + timeout
    while (problem := answer_problem(url)) is not None:
        if failed := failures():
            names = ", ".join(f"{name} ({reason})" for name, reason in failed.items())
            raise StackError(f"failed while starting: {names}\n" + log_sections(failed, log_dir))
        if time.monotonic() > deadline:
            tails = log_sections(processes if not callable(processes) else MODULES, log_dir)
            raise StackError(f"GET {url} did not answer 200 within {timeout:.0f} s ({problem})\n{tails}")
        time.sleep(0.2)


def readiness_problem(gateway_url: str) -> str | None:
    """None when GET /readyz answers 200, else what it said."""
    return answer_problem(f"{gateway_url}/readyz")


def answer_problem(url: str) -> str | None:
    """None when GET `url` answers 200, else what it said."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.read(300).decode(errors='replace')}".strip()
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def exit_reason(returncode: int) -> str:
    return f"killed by {signal.Signals(-returncode).name}" if returncode < 0 else f"exit code {returncode}"


def log_sections(names: Mapping[str, object], log_dir: Path) -> str:
    return "\n".join(log_section(name, log_dir) for name in names)


def log_section(name: str, log_dir: Path) -> str:
    path = log_dir / f"{name}.log"
    return f"--- last lines of {relative(path)} ---\n{infra.log_tail(path, 20)}"


def logged_errors(log_dir: Path) -> str:
    """The last lines at level ERROR or above that each program logged since it last started (a JSON
    line holds its traceback), or "" if none did: what explains a 5xx."""
    sections = []
    for name in MODULES:
        path = log_dir / f"{name}.log"
        try:
            lines = path.read_text(errors="replace").split(_START_MARK)[-1].splitlines()
        except FileNotFoundError:
            continue
        errors = [line for line in lines if any(mark in line for mark in _ERROR_MARKS)]
        if errors:
            sections.append(f"--- errors in {relative(path)} ---\n" + "\n".join(errors[-_ERRORS_SHOWN:]))
    return "\n".join(sections)


def relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
