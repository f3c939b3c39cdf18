"""A worker never outlives its parent, even one that ignores the stop it is sent (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from scripts import infra
from tests.waiting import eventually

# A worker that ignores SIGTERM, as one whose graceful stop hangs would.
_STUBBORN_WORKER = textwrap.dedent(
    """
    import signal, time
    from confbook_common.processes import end_with_parent
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    end_with_parent(grace_seconds=0.5)
    print("ready", flush=True)
    time.sleep(60)
    """
)


def _start_worker(parent_pid: int) -> subprocess.Popen[str]:
    environment = {**os.environ, "CONFBOOK_PARENT_PID": str(parent_pid)}
    worker = subprocess.Popen(
        [sys.executable, "-c", _STUBBORN_WORKER], env=environment, stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    return worker


# A parent that starts such a worker, says its pid, and waits to be killed.
_PARENT = textwrap.dedent(
    f"""
    import os, subprocess, sys, time
    environment = {{**os.environ, "CONFBOOK_PARENT_PID": str(os.getpid())}}
    print(subprocess.Popen([sys.executable, "-c", {_STUBBORN_WORKER!r}], env=environment).pid, flush=True)
    time.sleep(60)
    """
)


def test_a_worker_whose_parent_is_killed_exits_even_if_it_ignores_sigterm():
    middle = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    assert middle.stdout is not None
    worker_pid = int(middle.stdout.readline())
    eventually(lambda: infra.process_alive(worker_pid) and _parent_of(worker_pid) == middle.pid, timeout=10)

    middle.send_signal(signal.SIGKILL)
    middle.wait()

    assert eventually(lambda: not infra.process_alive(worker_pid), timeout=10)


def test_a_worker_whose_parent_died_before_it_looked_exits_too():
    # The parent it was started by is already gone when it starts watching: its parent now is the test.
    worker = _start_worker(parent_pid=2**22 + 1)
    assert worker.wait(timeout=10) != 0


def _parent_of(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[1])
