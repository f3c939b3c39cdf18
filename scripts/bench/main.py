"""Start a private stack, measure, print the report, and stop everything again whatever happens."""

from __future__ import annotations

import asyncio
import os
import platform
import signal
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import cast

import grpc
import httpx
from sqlalchemy import create_engine

from confbook.booking.v1 import booking_pb2_grpc
from scripts import infra, sandbox
from scripts.bench import notifications, scenarios, verification, waitlist, wrk
from scripts.bench.api import REQUEST_TIMEOUT_SECONDS, BenchError, BookingTable, Connections, Gateway
from scripts.bench.memory import MemoryWatch
from scripts.bench.options import Options, parse_options
from scripts.bench.report import Report, progress
from scripts.bench.scenarios import Bench
from scripts.bench.tokens import Signer
from scripts.launching import StackError, logged_errors
from scripts.sandbox import Infrastructure, Stack

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
# Ports of their own: a benchmark and `make test` may run at the same time without meeting.
DEFAULT_STATE_DIR = REPO_ROOT / ".run" / "bench"
DEFAULT_DATABASE_URL = "postgresql://confbook:confbook@127.0.0.1:15434/confbook_bench"
DEFAULT_AMQP_URL = "amqp://confbook:confbook@127.0.0.1:15674/%2F"
MIB = 1024 * 1024
# Every request of the bench comes from this machine's one address, and one organizer creates a thousand
# conferences: the gateway's bounds on writes per subject must not be what is measured. Two bounds, as the
# default has, so that each write costs the gateway as much as it would with the default.
STACK_SETTINGS = {"GATEWAY_RATE_LIMIT_WRITES": "1000000/second;60000000/minute"}


def state_dir() -> Path:
    return Path(os.environ.get("BENCH_STATE_DIR") or DEFAULT_STATE_DIR).resolve()


def header(options: Options, wrk_version: str) -> list[str]:
    return [
        "# confbook benchmark",
        "",
        f"- Run: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.platform()}, Python {platform.python_version()}",
        # Other work on the machine skews every figure; the load before the run shows whether there was any.
        f"- Load average before the run (1, 5, 15 min): {', '.join(f'{load:.2f}' for load in os.getloadavg())}",
        f"- Parameters: {options.describe()}; confirmation window {waitlist.WINDOW_SECONDS} s",
        f"- Load generator: {wrk_version}, {options.threads} threads",
        "- PostgreSQL, RabbitMQ, the three services, the gateway, wrk and this Python process all share the machine.",
        "  Each ceiling is measured in this run, on the same PostgreSQL, just before the figures it bounds.",
        "- Rates and latencies over HTTP are wrk's: from a request written to its answer read, percentiles from",
        "  `wrk --latency`. Setup is untimed; users are inserted straight into `booking.users`, bypassing the API,",
        "  each belonging to the subject named like it, whose access token (signed with the stack's dev issuer's",
        "  key) every request for that user carries.",
        "- Delays (3-6) are differences of the database's own timestamps: each is `statement_timestamp()` of the",
        "  statement that made the change (after any wait for a lock). p95 there is the nearest-rank percentile:",
        "  with 20 samples or fewer it is the maximum.",
        "",
    ]


def cpu_model() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown model"
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown model"


def report_memory(report: Report, memory: MemoryWatch) -> None:
    report.add(
        "## Resident memory",
        "",
        "RSS summed over every process of each one's session (the process launched and any it forked), once idle "
        "after start-up and at its largest, sampled every 0.5 s, during the product's wrk runs.",
        "",
        "| process | processes | idle MiB | under load MiB (max) |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {memory.processes.get(name, 0)} | {memory.idle.get(name, 0) / MIB:.0f} | "
            f"{memory.peak.get(name, 0) / MIB:.0f} |"
            for name in memory.names
        ),
        "",
    )


# --- running it all ------------------------------------------------------------------------------------------------


async def measure(stack: Stack, infrastructure: Infrastructure, options: Options, report: Report) -> None:
    engine = create_engine(infrastructure.service_database_url("booking"), pool_size=1)
    # Every client keeps its connection: no reconnects inside the timed runs.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    memory = MemoryWatch({name: process.pid for name, process in stack.processes.items()})
    memory.take_idle()
    try:
        async with (
            httpx.AsyncClient(base_url=stack.base_url, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits) as http,
            grpc.aio.insecure_channel(stack.grpc_target("booking")) as channel,
        ):
            stub = cast(
                "booking_pb2_grpc.BookingServiceAsyncStub",  # a type in the .pyi stubs only
                booking_pb2_grpc.BookingServiceStub(channel),
            )
            signer = Signer.of_issuer(stack.issuer_keys_path, stack.issuer_url, stack.audience)
            connections = Connections(Gateway(http, signer), stub, BookingTable(engine), signer)
            bench = Bench(options, stack, infrastructure, connections, memory, report, state_dir() / "wrk")
            booking = await scenarios.bench_bookings(bench)
            reads = await scenarios.bench_reads(bench, booking)
            verification.bench_verification(stack, signer, reads, options, report)
            report_memory(report, memory)
            await waitlist.bench_promotion(connections, options, report)
            await waitlist.bench_mass_release(connections, report)
            await waitlist.bench_expiry(connections, options, report)
            await waitlist.bench_start(connections, report)
            await notifications.bench_notifications(connections, stack.base_url, options, report)
    finally:
        engine.dispose()


def run(options: Options) -> Report:
    """Start PostgreSQL, RabbitMQ and the stack, measure, and stop all of it again whatever happens."""
    # First, so that its load average is the machine's before we add any.
    report = Report(header=header(options, asyncio.run(wrk.version())))
    infrastructure = prepare_infrastructure()
    try:
        log_dir = state_dir() / "logs"
        stack = Stack(infrastructure, window_seconds=waitlist.WINDOW_SECONDS, log_dir=log_dir, settings=STACK_SETTINGS)
        try:
            progress("starting the stack")
            stack.start()
            stack.wait_ready()
            asyncio.run(measure(stack, infrastructure, options, report))
            return report
        finally:
            progress("stopping the stack")
            stack.stop()
    finally:
        sandbox.release(infrastructure)


def prepare_infrastructure() -> Infrastructure:
    progress(f"preparing PostgreSQL and RabbitMQ (state in {_shown(state_dir())})")
    return sandbox.prepare(
        state_dir(),
        os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        os.environ.get("BENCH_AMQP_URL") or DEFAULT_AMQP_URL,
        window_seconds=waitlist.WINDOW_SECONDS,
    )


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    if not os.access(wrk.WRK, os.X_OK):
        progress(f"{wrk.WRK} is missing: run `make system-deps`")
        return 1
    # SIGTERM stops the run the way Ctrl-C does, through the same cleanup.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run(options)
    except KeyboardInterrupt:
        progress("interrupted; everything it started is stopped")
        return 130
    except (BenchError, StackError, infra.InfraError) as error:
        progress(f"failed: {error} (logs in {_shown(state_dir() / 'logs')})")
        if isinstance(error, BenchError) and (errors := logged_errors(state_dir() / "logs")):
            progress(f"what the stack logged as errors:\n{errors}")
        return 1
    print(report.text(), end="")
    missed = report.missed_targets if options.strict else 0
    return 1 if report.failed_checks or missed else 0
