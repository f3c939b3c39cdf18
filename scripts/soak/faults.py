"""The fault schedule: each service, the gateway and the token issuer SIGKILLed, RabbitMQ stopped for longer than
the confirmation window, PostgreSQL SIGSTOPped; spread evenly over the operations, one at a time, each while the
load runs."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from scripts import dev_issuer
from scripts.soak.report import progress
from scripts.soak.stack import ISSUER, PROGRAMS, SoakStack

RECOVERY_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Fault:
    name: str
    program: str  # what it hurts: one of PROGRAMS, "broker" or "database"
    inject: Callable[[], None]
    hold_seconds: float = 0.0  # how long the fault lasts before `recover`
    recover: Callable[[], None] | None = None  # None: the stack recovers by itself


@dataclass(frozen=True)
class Injected:
    name: str
    program: str
    started: float  # time.monotonic()
    recovered: float | None  # when /readyz answered 200 again; None if it never did

    @property
    def seconds(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.started


@dataclass
class FaultLog:
    injected: list[Injected] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # a fault that could not be injected or recovered from


def faults(stack: SoakStack, *, broker_outage: float, database_pause: float) -> list[Fault]:
    """One of each kind."""
    kills = [
        Fault(f"SIGKILL {name}", name, lambda name=name: stack.kill(name))  # type: ignore[misc]
        for name in PROGRAMS
        if name != ISSUER
    ]
    # Nothing asks the issuer while the clients run but a process fetching its keys (every token was made before):
    # so it is back when it answers again. Its keys are in its keys file: the same ones after a restart, so the
    # tokens stay valid, and a service restarted later fetches the keys its tokens were signed with.
    kills.append(Fault(f"SIGKILL {ISSUER}", ISSUER, lambda: stack.kill(ISSUER), recover=lambda: issuer_back(stack)))
    return [
        *kills,
        Fault(
            f"RabbitMQ stopped for {broker_outage:.0f} s", "broker", stack.stop_broker, broker_outage,
            stack.start_broker,
        ),
        Fault(
            f"PostgreSQL SIGSTOPped for {database_pause:.0f} s", "database", stack.pause_database, database_pause,
            stack.resume_database,
        ),
    ]  # fmt: skip


class Gates:
    """Holds the workload at each fault's share of the operations until that fault is injected, so that every
    fault meets load; the fault waits for its share to be reached. Shared by the fault thread and the clients."""

    def __init__(self, thresholds: list[int]) -> None:
        self._thresholds = thresholds
        self._opened = 0
        self._lock = threading.Lock()
        self.issued = 0  # operations the clients have started; written only by the workload

    def allows(self, operation: int) -> bool:
        with self._lock:
            return self._opened >= len(self._thresholds) or operation < self._thresholds[self._opened]

    def reached(self, index: int) -> bool:
        return self.issued >= self._thresholds[index]

    def open(self, index: int) -> None:
        with self._lock:
            self._opened = max(self._opened, index + 1)

    def open_all(self) -> None:
        self.open(len(self._thresholds) - 1)


class FaultSchedule(threading.Thread):
    def __init__(self, stack: SoakStack, schedule: list[Fault], operations: int, log: FaultLog) -> None:
        super().__init__(name="faults", daemon=True)
        self._stack = stack
        self._schedule = schedule
        self.log = log
        self.count = len(schedule)
        self.gates = Gates(thresholds(schedule, operations))
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            for index, fault in enumerate(self._schedule):
                while not self.gates.reached(index):
                    time.sleep(0.05)
                if not self._inflict(fault, index):
                    break
        finally:
            self.gates.open_all()  # never leave the workload waiting
            self.finished.set()

    def _inflict(self, fault: Fault, index: int) -> bool:
        progress(f"fault {index + 1}/{len(self._schedule)}: {fault.name}")
        started = time.monotonic()
        self.gates.open(index)  # the load goes on while the fault is being injected
        try:
            fault.inject()
        except Exception as error:  # noqa: BLE001 - reported as a violation; the workload must go on
            self.log.failures.append(f"{fault.name}: could not inject it: {error!r}")
            return False
        try:
            time.sleep(fault.hold_seconds)
            if fault.recover is not None:
                fault.recover()
        except Exception as error:  # noqa: BLE001 - as above
            self.log.failures.append(f"{fault.name}: could not end it: {error!r}")
        recovered = wait_until_ready(self._stack.base_url, RECOVERY_TIMEOUT_SECONDS)
        self.log.injected.append(Injected(fault.name, fault.program, started, recovered))
        if recovered is None:
            timeout = RECOVERY_TIMEOUT_SECONDS
            self.log.failures.append(f"{fault.name}: /readyz did not answer 200 within {timeout:.0f} s")
            return False
        progress(f"  back in {recovered - started:.1f} s")
        return True


# Roughly how long each fault lasts beyond its hold: the restart, the reconnects, /readyz.
RECOVERY_ESTIMATE_SECONDS = 3.0


def thresholds(schedule: list[Fault], operations: int) -> list[int]:
    """The operation at which each fault is due: each gets a share of the operations in proportion to how long it
    lasts, so that the load runs through the long ones too; a share of calm before the first and after the last."""
    lasting = [RECOVERY_ESTIMATE_SECONDS + fault.hold_seconds * 1.5 for fault in schedule]
    total = sum(lasting) + 2 * RECOVERY_ESTIMATE_SECONDS
    due, elapsed = [], RECOVERY_ESTIMATE_SECONDS
    for share in lasting:
        due.append(int(operations * elapsed / total))
        elapsed += share
    return due


def shuffled_rounds(kinds: list[Fault], rounds: int, seed: int) -> list[Fault]:
    """Every kind once per round, in an order of the seed's."""
    chooser = random.Random(f"faults {seed}")
    return [fault for _ in range(rounds) for fault in chooser.sample(kinds, len(kinds))]


def issuer_back(stack: SoakStack) -> None:
    """Until the restarted issuer answers its discovery document; RuntimeError after RECOVERY_TIMEOUT_SECONDS."""
    url = dev_issuer.discovery_url(stack.issuer_url)
    deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {RECOVERY_TIMEOUT_SECONDS:.0f} s")


def wait_until_ready(base_url: str, timeout: float) -> float | None:
    """The moment GET /readyz answered 200, or None after `timeout`."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            try:
                if http.get("/readyz").status_code == 200:
                    return time.monotonic()
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    return None
