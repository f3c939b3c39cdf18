"""Measure booking throughput and the waitlist's delays on a private stack; print a Markdown report."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Generic, TypeVar, cast

import grpc
import httpx
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from scripts import infra, sandbox
from scripts.sandbox import Infrastructure, Stack
from scripts.stack import StackError
from services.booking.adapters.tables import bookings

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = REPO_ROOT / ".run" / "bench"
# Ports of their own: a benchmark and `make test` may run at the same time without meeting.
DEFAULT_DATABASE_URL = "postgresql://confbook:confbook@127.0.0.1:15434/confbook_bench"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:15674/%2F"
# Short, so that offers expire within the run.
WINDOW_SECONDS = 2
MASS_RELEASE_SEATS = 20
MASS_RELEASE_LINE = 30
START_LINE = 5
START_LEAD_SECONDS = 3
POLL_SECONDS = 0.02
# Only a broken stack takes this long; the figures themselves are never judged against a time.
GIVE_UP_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 30.0

CONFIRMED = "CONFIRMED"
WAITLISTED = "WAITLISTED"
PENDING = "CONFIRMATION_PENDING"
CANCELED = "CANCELED"

Item = TypeVar("Item")
Result = TypeVar("Result")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


class RequestFailed(BenchError):
    """A request got an answer other than the one expected."""


@dataclass(frozen=True)
class Options:
    users: int
    seats: int
    clients: int
    promotion_trials: int
    expiries: int


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__)
    parser.add_argument("--users", type=_positive, default=400, help="users booking the one conference [400]")
    parser.add_argument("--seats", type=_positive, default=40, help="its seats [40]")
    parser.add_argument("--clients", type=_positive, default=32, help="concurrent clients [32]")
    parser.add_argument("--promotion-trials", type=_positive, default=30, help="cancel-to-offer trials [30]")
    parser.add_argument("--expiries", type=_positive, default=10, help="offers left to expire [10]")
    args = parser.parse_args(argv)
    if args.seats > args.users:
        parser.error("--seats must not exceed --users")
    return Options(args.users, args.seats, args.clients, args.promotion_trials, args.expiries)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


# --- the report ----------------------------------------------------------------------------------------------


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failed_checks: int = 0

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def timing(self, label: str, samples: Sequence[float]) -> None:
        """A one-row table of the samples' distribution, in milliseconds."""
        ordered = sorted(samples)
        # Nearest rank: the smallest sample with at least 95% of them at or below it.
        p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]
        self.add(
            "",
            "| milliseconds | n | median | p95 | max |",
            "|---|---:|---:|---:|---:|",
            f"| {label} | {len(ordered)} | {ms(statistics.median(ordered))} | {ms(p95)} | {ms(ordered[-1])} |",
            "",
        )

    def check(self, passed: bool, claim: str) -> None:
        self.failed_checks += not passed
        self.add(f"- {'PASS' if passed else 'FAIL'}: {claim}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def header(options: Options) -> Report:
    report = Report()
    report.add(
        "# confbook benchmark",
        "",
        f"- Run: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.platform()}, Python {platform.python_version()}",
        # Other work on the machine skews every figure; the load before the run shows whether there was any.
        f"- Load average before the run (1, 5, 15 min): {', '.join(f'{load:.2f}' for load in os.getloadavg())}",
        f"- Parameters: --users {options.users} --seats {options.seats} --clients {options.clients} "
        f"--promotion-trials {options.promotion_trials} --expiries {options.expiries}; "
        f"confirmation window {WINDOW_SECONDS} s",
        "- PostgreSQL, RabbitMQ, the three services, the gateway and this Python client all share the machine.",
        "  Request latencies and throughput are as the client sees them, its own overhead included",
        "  (httpx or grpcio on asyncio). Delays are differences of the database's own timestamps: each is",
        "  `statement_timestamp()` of the statement that made the change (after any wait for a lock).",
        "- p95 is the nearest-rank percentile: with 20 samples or fewer it is the maximum.",
        "",
    )
    return report


def cpu_model() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown model"
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown model"


# --- talking to the stack ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """What a booking request got: a status (or an error) and, in line, a position."""

    booking_id: int
    status: str
    position: int | None


class Gateway:
    """The HTTP API, with shortcuts that create uniquely named conferences and users."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def create_conference(self, slots: int, start: datetime | None = None) -> str:
        start = start or whole_second(datetime.now(UTC)) + timedelta(days=30)
        name = f"Bench {uuid.uuid4().hex[:12]}"
        body = {
            "name": name,
            "location": "Berlin",
            "start": wire_time(start),
            "end": wire_time(start + timedelta(hours=2)),
            "slots": slots,
            "topics": ["Benchmarks"],
        }
        _expect(await self._http.post("/conference", json=body), 201)
        return name

    async def create_user(self) -> str:
        user_id = new_user_id()
        _expect(await self._http.post("/user", json={"user_id": user_id, "topics": ["Benchmarks"]}), 201)
        return user_id

    async def book(self, conference: str, user_id: str) -> Placement:
        body = _expect(await self._http.post("/book", json={"name": conference, "user_id": user_id}), 201)
        return Placement(body["booking_id"], body["status"], body["waitlist_position"])

    async def booking(self, booking_id: int) -> dict[str, Any]:
        return _expect(await self._http.get(f"/booking/{booking_id}"), 200)

    async def cancel(self, booking_id: int, *, already_canceled_is_fine: bool = False) -> None:
        response = await self._http.post("/cancel", json={"booking_id": booking_id})
        if not (already_canceled_is_fine and response.status_code == 409):
            _expect(response, 200)

    async def conference(self, name: str) -> dict[str, Any]:
        return _expect(await self._http.get(f"/conference/{name}"), 200)


def _expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        request = response.request
        raise RequestFailed(f"{request.method} {request.url.path}: HTTP {response.status_code} {response.text[:200]}")
    return dict(response.json())


def whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def wire_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def new_user_id() -> str:
    return f"bench{uuid.uuid4().hex[:16]}"


async def grpc_create_user(stub: booking_pb2_grpc.BookingServiceAsyncStub) -> str:
    user_id = new_user_id()
    await stub.CreateUser(booking_pb2.CreateUserRequest(user_id=user_id), timeout=REQUEST_TIMEOUT_SECONDS)
    return user_id


async def grpc_book(stub: booking_pb2_grpc.BookingServiceAsyncStub, conference: str, user_id: str) -> Placement:
    request = booking_pb2.BookRequest(conference_name=conference, user_id=user_id)
    try:
        reply = await stub.Book(request, timeout=REQUEST_TIMEOUT_SECONDS)
    except grpc.aio.AioRpcError as error:
        raise RequestFailed(f"Book: gRPC {error.code().name} {error.details()}") from error
    booking = reply.booking
    status = booking_pb2.BookingStatus.Name(booking.status).removeprefix("BOOKING_STATUS_")
    position = booking.waitlist_position if booking.HasField("waitlist_position") else None
    return Placement(booking.booking_id, status, position)


@dataclass(frozen=True)
class Row:
    status: str
    updated_at: datetime
    offer_deadline: datetime | None


class BookingTable:
    """The booking service's table, read directly: there, each change carries its transaction's timestamp."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(self, booking_ids: Iterable[int]) -> dict[int, Row]:
        query = select(bookings.c.booking_id, bookings.c.status, bookings.c.updated_at, bookings.c.offer_deadline)
        with self._engine.connect() as db:
            rows = db.execute(query.where(bookings.c.booking_id.in_(list(booking_ids))))
            return {row.booking_id: Row(row.status, row.updated_at, row.offer_deadline) for row in rows}

    async def wait_for(self, booking_ids: Sequence[int], done: Callable[[dict[int, Row]], bool]) -> dict[int, Row]:
        """Poll until `done(rows)`; the timestamps in the rows, not the polling, are what gets measured."""
        give_up = time.monotonic() + GIVE_UP_SECONDS
        while not done(rows := self.read(booking_ids)):
            if time.monotonic() > give_up:
                states = ", ".join(f"{booking_id} {row.status}" for booking_id, row in sorted(rows.items()))
                raise BenchError(f"gave up after {GIVE_UP_SECONDS:.0f} s waiting on bookings {states}")
            await asyncio.sleep(POLL_SECONDS)
        return rows

    async def wait_for_status(self, booking_ids: Sequence[int], status: str) -> dict[int, Row]:
        return await self.wait_for(booking_ids, lambda rows: all(row.status == status for row in rows.values()))


@dataclass(frozen=True)
class Connections:
    """The three ways in: the gateway over HTTP, the booking service over gRPC, and its table."""

    gateway: Gateway
    booking: booking_pb2_grpc.BookingServiceAsyncStub
    table: BookingTable


def seconds_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds()


@dataclass(frozen=True)
class Burst(Generic[Result]):
    """Results of one concurrent run, with each call's latency and the wall time of the whole run."""

    results: list[Result]
    latencies: list[float]
    seconds: float


async def concurrently(work: Callable[[Item], Awaitable[Result]], items: Iterable[Item], clients: int) -> Burst[Result]:
    """`clients` workers share the items, each with one call in flight at a time."""
    remaining = iter(items)
    results: list[Result] = []
    latencies: list[float] = []

    async def client() -> None:
        for item in remaining:  # one iterator for all: asyncio hands each item to exactly one worker
            started = time.perf_counter()
            results.append(await work(item))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return Burst(results, latencies, time.perf_counter() - started)


async def book_in_order(gateway: Gateway, conference: str, count: int) -> list[int]:
    """`count` new users book one after another, so the booking ids come in line order."""
    users = [await gateway.create_user() for _ in range(count)]
    return [(await gateway.book(conference, user)).booking_id for user in users]


async def retire(gateway: Gateway, booking_ids: Sequence[int]) -> None:
    """Cancel a finished trial's bookings, tail of the line first, so that no offer keeps expiring
    and being made again in the background of the measurements that follow."""
    for booking_id in reversed(booking_ids):
        await gateway.cancel(booking_id, already_canceled_is_fine=True)


# --- 1 and 2: booking under contention ---------------------------------------------------------------------------


async def bench_http_bookings(connections: Connections, options: Options, report: Report) -> Burst[Placement]:
    gateway = connections.gateway
    conference = await gateway.create_conference(slots=options.seats)
    users = (await concurrently(lambda _: gateway.create_user(), range(options.users), options.clients)).results
    progress(f"{options.users} users book {options.seats} seats over HTTP")
    burst = await concurrently(lambda user: _placement_or_error(gateway.book(conference, user)), users, options.clients)
    report.add(
        "## 1. Booking under contention, over HTTP",
        "",
        f"{options.users} users (created beforehand, not timed) book one conference with {options.seats} seats "
        f"at once, from {options.clients} concurrent clients each with one request in flight. Latency is per "
        "POST /book, HTTP client overhead included.",
    )
    await _report_burst(report, "POST /book", burst, conference, gateway, options)
    return burst


async def bench_grpc_bookings(
    connections: Connections, options: Options, report: Report, over_http: Burst[Placement]
) -> None:
    stub = connections.booking
    conference = await connections.gateway.create_conference(slots=options.seats)
    users = (await concurrently(lambda _: grpc_create_user(stub), range(options.users), options.clients)).results
    progress(f"{options.users} users book {options.seats} seats over gRPC")
    burst = await concurrently(
        lambda user: _placement_or_error(grpc_book(stub, conference, user)), users, options.clients
    )
    report.add(
        "## 2. The same, straight to the booking service over gRPC",
        "",
        "The same load on BookingService/Book, without the gateway (grpcio client overhead included).",
    )
    await _report_burst(report, "BookingService/Book", burst, conference, connections.gateway, options)
    # At full load the wall time per booking is the cost the gateway adds; medians also move with queueing.
    http_cost, grpc_cost = over_http.seconds / len(over_http.results), burst.seconds / len(burst.results)
    median_gap = statistics.median(over_http.latencies) - statistics.median(burst.latencies)
    report.add(
        f"The gateway's share: {ms(http_cost)} ms of wall time per booking over HTTP vs {ms(grpc_cost)} ms "
        f"over gRPC ({ms(http_cost - grpc_cost)} ms); the medians differ by {ms(median_gap)} ms.",
        "",
    )


async def _placement_or_error(booking: Awaitable[Placement]) -> Placement:
    """A failed request counts as an outcome (shown in the checks) rather than ending the run."""
    try:
        return await booking
    except (RequestFailed, httpx.HTTPError) as error:
        return Placement(0, f"error: {type(error).__name__}: {error}", None)


async def _report_burst(
    report: Report, label: str, burst: Burst[Placement], conference: str, gateway: Gateway, options: Options
) -> None:
    placements = burst.results
    waiting = options.users - options.seats
    errors = [p.status for p in placements if p.status not in (CONFIRMED, WAITLISTED)]
    confirmed = sum(p.status == CONFIRMED for p in placements)
    positions = sorted(p.position or 0 for p in placements if p.status == WAITLISTED)
    found = await gateway.conference(conference)
    report.timing(f"{label} latency", burst.latencies)
    report.add(
        f"Throughput: {len(placements) / burst.seconds:.0f} bookings/s ({len(placements)} in {burst.seconds:.2f} s).",
        "",
    )
    report.check(not errors, f"every request succeeded ({len(errors)} errors{': ' + errors[0] if errors else ''})")
    report.check(confirmed == options.seats, f"exactly {options.seats} CONFIRMED (got {confirmed})")
    report.check(
        positions == list(range(1, waiting + 1)),
        f"{waiting} WAITLISTED at positions exactly 1..{waiting} "
        f"(got {len(positions)}, {len(set(positions))} distinct)",
    )
    report.check(
        (found["available_slots"], found["waitlist_length"]) == (0, waiting),
        f"GET /conference/{{name}} agrees: available_slots 0, waitlist_length {waiting} "
        f"(got {found['available_slots']}, {found['waitlist_length']})",
    )
    report.add("")


# --- 3 and 4: offering freed seats ---------------------------------------------------------------------------------


async def bench_promotion(connections: Connections, options: Options, report: Report) -> None:
    progress(f"{options.promotion_trials} promotion trials")
    delays = [await promotion_delay(connections) for _ in range(options.promotion_trials)]
    report.add(
        "## 3. Promotion delay",
        "",
        "A full one-seat conference with a line of two; the holder cancels over HTTP. Delay: `updated_at` of the "
        "head when it became CONFIRMATION_PENDING minus `updated_at` of the canceled booking. One trial at a time.",
    )
    report.timing("cancel → head offered the seat", delays)


async def offer_to_the_head(connections: Connections) -> tuple[Row, Row, list[int]]:
    """A full one-seat conference with a line of two whose holder cancels: the canceled booking, the head's
    offer, and the ids of the head and the second in line."""
    gateway, table = connections.gateway, connections.table
    conference = await gateway.create_conference(slots=1)
    holder, head, second = await book_in_order(gateway, conference, 3)
    await gateway.cancel(holder)
    offered = (await table.wait_for_status([head], PENDING))[head]
    return table.read([holder])[holder], offered, [head, second]


async def promotion_delay(connections: Connections) -> float:
    canceled, offered, line = await offer_to_the_head(connections)
    await retire(connections.gateway, line)
    return seconds_between(canceled.updated_at, offered.updated_at)


async def bench_mass_release(connections: Connections, report: Report) -> None:
    progress(f"{MASS_RELEASE_SEATS} seats released at once")
    gateway, table = connections.gateway, connections.table
    conference = await gateway.create_conference(slots=MASS_RELEASE_SEATS)
    holders = await book_in_order(gateway, conference, MASS_RELEASE_SEATS)
    line = await book_in_order(gateway, conference, MASS_RELEASE_LINE)
    await asyncio.gather(*(gateway.cancel(holder) for holder in holders))
    rows = await table.wait_for(line, lambda rows: _count(rows, PENDING) >= MASS_RELEASE_SEATS)
    canceled = [row.updated_at for row in table.read(holders).values()]
    offered = [booking_id for booking_id in line if rows[booking_id].status == PENDING]
    offer_times = [rows[booking_id].updated_at for booking_id in offered]
    positions = [(await gateway.booking(booking_id))["waitlist_position"] for booking_id in line[MASS_RELEASE_SEATS:]]
    behind = MASS_RELEASE_LINE - MASS_RELEASE_SEATS
    report.add(
        "## 4. Mass release",
        "",
        f"One conference, {MASS_RELEASE_SEATS} seats all confirmed and a line of {MASS_RELEASE_LINE}; all "
        f"{MASS_RELEASE_SEATS} holders cancel at once ({MASS_RELEASE_SEATS} concurrent HTTP requests).",
        "",
        f"- first cancel → last of the {MASS_RELEASE_SEATS} heads offered: "
        f"{ms(seconds_between(min(canceled), max(offer_times)))} ms",
        f"- the {MASS_RELEASE_SEATS} cancellations were spread over "
        f"{ms(seconds_between(min(canceled), max(canceled)))} ms",
        "",
    )
    report.check(
        offered == line[:MASS_RELEASE_SEATS], f"the offers went to exactly the first {MASS_RELEASE_SEATS} in line"
    )
    report.check(
        positions == list(range(1, behind + 1)),
        f"the other {behind} still wait at positions 1..{behind} (got {positions})",
    )
    report.add("")
    await retire(gateway, line)


def _count(rows: dict[int, Row], status: str) -> int:
    return sum(row.status == status for row in rows.values())


# --- 5 and 6: expiry and the start -------------------------------------------------------------------------------


async def bench_expiry(connections: Connections, options: Options, report: Report) -> None:
    progress(f"{options.expiries} offers left to expire")
    lateness = [await expiry_lateness(connections) for _ in range(options.expiries)]
    report.add(
        "## 5. Expiry lateness",
        "",
        f"With the {WINDOW_SECONDS} s window, an offer to the head of a line of two is left unconfirmed. Lateness: "
        "`updated_at` when it went back to WAITLISTED (behind the other, so it stays there a while) minus its "
        "`offer_deadline`. One offer at a time.",
    )
    report.timing("deadline → back in line", lateness)


async def expiry_lateness(connections: Connections) -> float:
    _, offer, line = await offer_to_the_head(connections)
    head = line[0]
    returned = (await connections.table.wait_for_status([head], WAITLISTED))[head]
    await retire(connections.gateway, line)
    assert offer.offer_deadline is not None  # the schema requires one while pending
    return seconds_between(offer.offer_deadline, returned.updated_at)


async def bench_start(connections: Connections, report: Report) -> None:
    progress(f"a conference starting in about {START_LEAD_SECONDS} s")
    gateway, table = connections.gateway, connections.table
    # The API takes whole seconds; rounding down and adding one keeps the lead at least START_LEAD_SECONDS.
    start = whole_second(datetime.now(UTC)) + timedelta(seconds=START_LEAD_SECONDS + 1)
    conference = await gateway.create_conference(slots=1, start=start)
    holder, *line = await book_in_order(gateway, conference, 1 + START_LINE)
    rows = await table.wait_for_status(line, CANCELED)
    canceled_at = [row.updated_at for row in rows.values()]
    holder_status = table.read([holder])[holder].status
    report.add(
        "## 6. Cancellation at the start",
        "",
        f"A conference starting {START_LEAD_SECONDS}-{START_LEAD_SECONDS + 1} s ahead, one seat confirmed and a line "
        f"of {START_LINE}. Lateness: the latest `updated_at` of the canceled bookings minus the start.",
        "",
        f"- start → last of the {START_LINE} canceled: {ms(seconds_between(start, max(canceled_at)))} ms",
        "",
    )
    report.check(holder_status == CONFIRMED, f"the confirmed booking stays CONFIRMED (got {holder_status})")
    report.add("")


# --- running it all ------------------------------------------------------------------------------------------------


async def measure(stack: Stack, infrastructure: Infrastructure, options: Options, report: Report) -> None:
    engine = create_engine(infrastructure.service_database_url("booking"), pool_size=1)
    # Every client keeps its connection: no reconnects inside the timed runs.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    try:
        async with (
            httpx.AsyncClient(base_url=stack.base_url, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits) as http,
            grpc.aio.insecure_channel(stack.grpc_target("booking")) as channel,
        ):
            stub = cast(
                "booking_pb2_grpc.BookingServiceAsyncStub",  # a type in the .pyi stubs only
                booking_pb2_grpc.BookingServiceStub(channel),
            )
            connections = Connections(Gateway(http), stub, BookingTable(engine))
            over_http = await bench_http_bookings(connections, options, report)
            await bench_grpc_bookings(connections, options, report, over_http)
            await bench_promotion(connections, options, report)
            await bench_mass_release(connections, report)
            await bench_expiry(connections, options, report)
            await bench_start(connections, report)
    finally:
        engine.dispose()


def run(options: Options) -> Report:
    """Start PostgreSQL, RabbitMQ and the stack, measure, and stop all of it again whatever happens."""
    report = header(options)  # first, so that its load average is the machine's before we add any
    infrastructure = prepare_infrastructure()
    try:
        stack = Stack(infrastructure, window_seconds=WINDOW_SECONDS, log_dir=STATE_DIR / "logs")
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
    progress(f"preparing PostgreSQL and RabbitMQ (state in {STATE_DIR.relative_to(REPO_ROOT)})")
    return sandbox.prepare(
        STATE_DIR,
        os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        os.environ.get("BENCH_AMQP_URL") or DEFAULT_AMQP_URL,
        window_seconds=WINDOW_SECONDS,
    )


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    # SIGTERM stops the run the way Ctrl-C does, through the same cleanup.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run(options)
    except KeyboardInterrupt:
        progress("interrupted; everything it started is stopped")
        return 130
    except (BenchError, StackError, infra.InfraError) as error:
        progress(f"failed: {error} (logs in {(STATE_DIR / 'logs').relative_to(REPO_ROOT)})")
        return 1
    print(report.text(), end="")
    return 1 if report.failed_checks else 0


if __name__ == "__main__":
    sys.exit(main())
