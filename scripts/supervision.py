"""The local stack's processes under supervisord.

Every worker process of every service replica and of the gateway is a process
of its own in supervisord, started with CONFBOOK_WORKER_INDEX set so that it
serves rather than supervises (see confbook_common.processes). supervisord
restarts one that dies: at once if it had been running, with a growing delay
if it keeps failing to start. Workers end with supervisord (they ask the
kernel for SIGTERM when their parent dies), so nothing outlives it.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from confbook_common import metrics_dir
from confbook_common.processes import WORKER_INDEX_VARIABLE
from scripts import infra

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0
STOP_TIMEOUT = 30.0
# A worker that stays up this long counts as started; one that dies sooner is retried with a delay
# growing by a second each time, up to this many tries, and then left FATAL for a person to look at.
_START_SECONDS = 2
_START_RETRIES = 30
_WORKER_STOP_SECONDS = 15
# supervisord's log line for a process that died without being asked to.
_UNEXPECTED_EXIT = re.compile(r"exited: (\S+) \(.*not expected\)")
_SUPERVISORD_STARTED = "supervisord started with pid"


@dataclasses.dataclass(frozen=True)
class Program:
    """One replica of a service, or the gateway: `workers` processes running `python -m module`."""

    name: str
    module: str
    workers: int
    # Where its workers keep their Prometheus samples; replicas of one service share it (confbook_common.metrics_dir).
    metrics_dir: Path | None = None
    # Another program than `python -m module` (Prometheus under OBSERVE=1).
    command: tuple[str, ...] = ()
    # supervisord starts lower numbers first (its default is 999): the dev issuer before those it issues for.
    priority: int = 999

    def process_names(self) -> list[str]:
        return [self.process_name(index) for index in range(self.workers)]

    def process_name(self, index: int) -> str:
        return f"{self.name}-w{index}"


@dataclasses.dataclass(frozen=True)
class ProcessState:
    name: str
    program: str
    state: str  # supervisord's: RUNNING, STARTING, BACKOFF, EXITED, FATAL, STOPPED...
    pid: int
    uptime_seconds: int
    restarts: int


class SupervisorError(Exception):
    """supervisord cannot be started or reached; the message says why."""


class Supervisor:
    """The supervisord of one state dir: its config, socket, pid file and logs live there."""

    def __init__(self, state_dir: Path, log_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.config_file = state_dir / "supervisord.conf"
        self.socket_file = state_dir / "supervisord.sock"
        self.pid_file = state_dir / "supervisord.pid"
        self.log_file = log_dir / "supervisord.log"

    # --- starting and stopping -------------------------------------------------------------------------------

    def start(self, programs: list[Program], environment: Mapping[str, str]) -> None:
        """Write the config and start supervisord (which starts every program); returns once it answers.

        The programs inherit `environment`, which is supervisord's own: nothing in it is parsed
        by supervisord, so URLs with '%' in them need no escaping.
        """
        if self.running():
            raise SupervisorError(f"supervisord already runs for {self.state_dir} (pid {self._pid()})")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for samples in {program.metrics_dir for program in programs if program.metrics_dir is not None}:
            metrics_dir.reset(samples)  # an earlier run's counts must not add to this one's
        self.config_file.write_text(self._config(programs))
        command = [sys.executable, "-m", "supervisor.supervisord", "--configuration", str(self.config_file)]
        # supervisord forks into the background; the parent exits once the child has taken over.
        result = subprocess.run(
            command,
            env={**environment, "PYTHONUNBUFFERED": "1"},
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SupervisorError(f"supervisord did not start: {(result.stderr or result.stdout).strip()}")
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if time.monotonic() > deadline:
                raise SupervisorError(f"supervisord did not answer within {START_TIMEOUT:.0f} s; see {self.log_file}")
            time.sleep(0.1)

    def stop(self) -> bool:
        """Stop every program, then supervisord; False when there was nothing running to stop."""
        pid = self._pid()
        if pid is None or not infra.process_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return False
        try:
            self._rpc().supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            os.kill(pid, signal.SIGTERM)  # it stops its programs on SIGTERM too
        deadline = time.monotonic() + STOP_TIMEOUT
        while infra.process_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)  # its workers get SIGTERM from the kernel as it dies
                break
            time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def running(self) -> bool:
        pid = self._pid()
        return pid is not None and infra.process_alive(pid)

    # --- looking -------------------------------------------------------------------------------------------------

    def processes(self) -> list[ProcessState]:
        """Every process supervisord manages, with how often each died unasked since supervisord started."""
        restarts = self._unexpected_exits()
        try:
            infos: list[dict[str, Any]] = self._rpc().supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error) as error:
            raise SupervisorError(f"supervisord for {self.state_dir} does not answer ({error})") from None
        return [
            ProcessState(
                name=info["name"],
                program=info["group"],
                state=info["statename"],
                pid=info["pid"],
                uptime_seconds=max(info["now"] - info["start"], 0) if info["pid"] else 0,
                restarts=restarts[info["name"]],
            )
            for info in infos
        ]

    def pids(self, program: str) -> list[int]:
        """The live pids of a program's workers."""
        return [process.pid for process in self.processes() if process.program == program and process.pid]

    # --- internals -----------------------------------------------------------------------------------------------

    def _config(self, programs: list[Program]) -> str:
        sections = [
            "[unix_http_server]",
            f"file = {self.socket_file}",
            "chmod = 0700",
            "",
            "[supervisord]",
            f"logfile = {self.log_file}",
            "logfile_maxbytes = 10MB",
            "logfile_backups = 2",
            f"pidfile = {self.pid_file}",
            f"directory = {REPO_ROOT}",
            "identifier = confbook",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl = unix://{self.socket_file}",
        ]
        for program in programs:
            environment = f'{WORKER_INDEX_VARIABLE}="%(process_num)d"'
            if program.metrics_dir is not None:
                environment += f',{metrics_dir.VARIABLE}="{program.metrics_dir}"'
            sections += [
                "",
                f"[program:{program.name}]",
                f"command = {' '.join(program.command) or f'{sys.executable} -m {program.module}'}",
                f"process_name = {program.name}-w%(process_num)d",
                f"numprocs = {program.workers}",
                f"priority = {program.priority}",
                f"environment = {environment}",
                "autorestart = true",
                f"startsecs = {_START_SECONDS}",
                f"startretries = {_START_RETRIES}",
                "stopsignal = TERM",
                f"stopwaitsecs = {_WORKER_STOP_SECONDS}",
                "redirect_stderr = true",
                # One log per program: its workers append to the same file, which is never rotated
                # under them (logs stay in .run/, removed with it).
                f"stdout_logfile = {self.log_dir / program.name}.log",
                "stdout_logfile_maxbytes = 0",
            ]
        return "\n".join(sections) + "\n"

    def _rpc(self) -> Any:
        transport = SupervisorTransport(None, None, serverurl=f"unix://{self.socket_file}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def _answers(self) -> bool:
        try:
            return self._rpc().supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def _pid(self) -> int | None:
        """supervisord's pid, if the pid file names a process that is still this one's supervisord:
        after a reboot the number may belong to anything."""
        try:
            pid = int(self.pid_file.read_text().strip())
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        ours = (
            any(argument.endswith(b"supervisord") for argument in arguments)
            and os.fsencode(self.config_file) in arguments
        )
        return pid if ours else None

    def _unexpected_exits(self) -> collections.Counter[str]:
        """Counted from supervisord's log since its latest start (the log is shared by earlier runs)."""
        counts: collections.Counter[str] = collections.Counter()
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return counts
        for line in lines:
            if _SUPERVISORD_STARTED in line:
                counts.clear()
            elif match := _UNEXPECTED_EXIT.search(line):
                counts[match.group(1)] += 1
        return counts
