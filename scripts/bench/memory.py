"""Resident memory of each service and the gateway, idle and at its peak under load.

scripts/stack.py launches each in a session of its own; a service may fork workers, so its memory is the sum
over every process of that session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TypeVar

SAMPLE_SECONDS = 0.5

T = TypeVar("T")


def session_of(pid: int) -> int | None:
    """Field 6 of /proc/<pid>/stat; None once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; the fields after its closing one are plain.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[3])


def rss_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0  # a kernel thread or a zombie


def sessions() -> dict[int, list[int]]:
    """Every process on the machine by its session id, from one pass over /proc."""
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (session := session_of(int(entry.name))) is not None:
            found.setdefault(session, []).append(int(entry.name))
    return found


class MemoryWatch:
    """Snapshots of every launched process's session: once idle, and sampled while work runs."""

    def __init__(self, leaders: Mapping[str, int]) -> None:
        self._leaders = dict(leaders)
        self.idle: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.processes: dict[str, int] = {}

    @property
    def names(self) -> list[str]:
        return list(self._leaders)

    def take_idle(self) -> None:
        self.idle = self._rss()

    def sample(self) -> None:
        for name, rss in self._rss().items():
            self.peak[name] = max(self.peak.get(name, 0), rss)

    async def during(self, work: Awaitable[T]) -> T:
        """Await `work`, sampling every SAMPLE_SECONDS until it is done."""
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                self.sample()
                await asyncio.wait([task], timeout=SAMPLE_SECONDS)
            return task.result()
        finally:
            task.cancel()  # a no-op once done; otherwise we were cancelled and it must stop too

    def _rss(self) -> dict[str, int]:
        """Each name's RSS summed over its session's processes."""
        members = sessions()
        totals = {}
        for name, leader in self._leaders.items():
            pids = members.get(leader, [])
            self.processes[name] = max(self.processes.get(name, 0), len(pids))
            totals[name] = sum(rss_bytes(pid) for pid in pids)
        return totals
