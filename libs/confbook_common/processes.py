"""Running one service as several worker processes that share its port.

Python runs one thread at a time per process, so a service uses more than one
core only as several processes. Each worker is a complete service (gRPC
server, relay, consumers; or the gateway's HTTP server) that binds the port
with SO_REUSEPORT; the kernel spreads connections among them. Correctness
never rests on there being one process (see docs/adr/0009).

Two things start workers. Under `make up` and `make run`, supervisord starts
each worker itself (scripts/supervision.py), with CONFBOOK_WORKER_INDEX set.
Started directly (`python -m services.booking`, as in a container), the
process supervises WORKERS copies of its own command: it holds no state,
restarts a worker that dies and stops them all on SIGTERM or SIGINT.

Either way a worker never outlives whatever started it: it asks the kernel
for SIGTERM when its parent dies, and exits outright if that stop hangs, so a
supervisor killed with SIGKILL leaves no orphan holding the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from confbook_common.worker import Backoff

log = logging.getLogger(__name__)

# Set in each worker's environment: its index, and the sign that it serves rather than supervises.
WORKER_INDEX_VARIABLE = "CONFBOOK_WORKER_INDEX"
_POLL_SECONDS = 0.5
# A worker that lived this long before dying restarts at once; one that dies at start-up backs off.
_HEALTHY_LIFETIME_SECONDS = 30.0


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PARENT_PID_VARIABLE = "CONFBOOK_PARENT_PID"
_ORPHAN_POLL_SECONDS = 1.0


def is_worker() -> bool:
    return WORKER_INDEX_VARIABLE in os.environ


def end_with_parent(grace_seconds: float) -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux), and exit for good
    `grace_seconds` later if the graceful stop has not ended it by then."""
    # The parent as it was when this process started, if it said (its workers are told); else
    # now, which misses a parent that died while this process was still importing.
    parent = int(os.environ.get(_PARENT_PID_VARIABLE) or os.getppid())
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError):
        pass
    threading.Thread(target=_exit_when_orphaned, args=(parent, grace_seconds), name="orphan-watch", daemon=True).start()


def _exit_when_orphaned(parent: int, grace_seconds: float) -> None:
    while os.getppid() == parent:
        time.sleep(_ORPHAN_POLL_SECONDS)
    log.warning("parent %d is gone: stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)  # the kernel's may have come already; a second is harmless
    time.sleep(grace_seconds)
    os._exit(1)  # the graceful stop hangs: nobody is left to escalate but us


def serve_as_workers(name: str, count: int, serve: Callable[[], None], *, grace_seconds: float) -> None:
    """Serve in this process when it is a worker or the only one; else supervise `count` workers."""
    if is_worker():
        end_with_parent(grace_seconds)
    elif count > 1:
        sys.exit(supervise_workers(name, count, grace_seconds=grace_seconds))
    serve()


def supervise_workers(name: str, count: int, *, grace_seconds: float) -> int:
    """Run `count` workers of this very command until SIGTERM or SIGINT; returns the exit status."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    workers = {index: _start_worker(index) for index in range(count)}
    started_at = {index: time.monotonic() for index in workers}
    backoffs = {index: Backoff(first=1.0, cap=30.0) for index in workers}
    log.info("%s: %d worker processes: %s", name, count, ", ".join(str(p.pid) for p in workers.values()))
    while not stopping.wait(_POLL_SECONDS):
        for index, process in workers.items():
            if process.poll() is None:
                continue
            lived = time.monotonic() - started_at[index]
            if lived >= _HEALTHY_LIFETIME_SECONDS:
                backoffs[index].reset()
            delay = backoffs[index].next()
            log.warning(
                "%s: worker %d (pid %d) exited with %s after %.0f s; restarting in %.0f s",
                name, index, process.pid, process.returncode, lived, delay,
            )  # fmt: skip
            if stopping.wait(delay):
                break
            workers[index] = _start_worker(index)
            started_at[index] = time.monotonic()
    log.info("%s: stopping %d workers", name, len(workers))
    _stop_all(list(workers.values()), grace_seconds)
    return 0


def _start_worker(index: int) -> subprocess.Popen[bytes]:
    # The same interpreter and arguments (`python -m services.booking`), in our process group, so
    # that whoever stops the group stops the workers too.
    environment = {**os.environ, WORKER_INDEX_VARIABLE: str(index), _PARENT_PID_VARIABLE: str(os.getpid())}
    return subprocess.Popen(sys.orig_argv, env=environment)


def _stop_all(processes: list[subprocess.Popen[bytes]], grace_seconds: float) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
