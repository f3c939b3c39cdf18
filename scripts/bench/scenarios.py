"""The product's figures over HTTP, each a wrk run beside a ceiling: booking (a, b) and reading a booking (c, d)."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.bench import ceilings, seed, tokens, wrk
from scripts.bench.api import (
    CONFIRMED,
    WAITLISTED,
    BenchError,
    Booked,
    Connections,
    Placement,
    concurrently,
    grpc_book,
)
from scripts.bench.api import placement_or_error as settle
from scripts.bench.ceilings import Floor, SqlRun
from scripts.bench.memory import MemoryWatch
from scripts.bench.options import Options
from scripts.bench.report import Rate, Report, Target, ms, percent, progress, ratio
from scripts.sandbox import Infrastructure, Stack

# Enough seats that the bookings of (a) confirm: a conference gets a handful of bookings in a run.
SPREAD_SEATS = 100
HALF_LOAD_P99_SECONDS = 0.050
SAMPLE_POSITIONS = 50
SAMPLE_CONFERENCES = 10
BUILD_CLIENTS = 32
BUILD_PROGRESS_EVERY = 5000


@dataclass(frozen=True)
class Bench:
    """What every scenario works with."""

    options: Options
    stack: Stack
    infrastructure: Infrastructure
    connections: Connections
    memory: MemoryWatch
    report: Report
    work_dir: Path

    @property
    def load(self) -> wrk.Load:
        return wrk.Load(self.options.connections, self.options.duration, self.options.threads)

    async def drive(self, name: str, body: str, load: wrk.Load) -> wrk.Result:
        """A wrk run against the product's gateway, its processes' memory sampled meanwhile."""
        progress(f"wrk: {name} ({load.describe()})")
        script = self.work_dir / f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.lua"
        return await self.memory.during(wrk.run(self.stack.base_url, load, body, script))

    async def full_and_half(self, name: str, script: Callable[[int], str]) -> tuple[wrk.Result, wrk.Result | None]:
        """Full load, then half of the rate it reached; `script(first)` books as users from `first` on, so the
        two runs share out the scenario's users and never meet. No half run when the full one got nowhere."""
        full = await self.drive(name, script(0), self.load)
        if full.per_second <= 0:
            return full, None
        return full, await self.drive(f"{name} at half load", script(self.options.users // 2), self.half_load(full))

    def half_load(self, full: wrk.Result) -> wrk.Load:
        return self.load.paced(full.per_second)

    def user_tokens(self, prefix: str, users: int) -> dict[int, Path]:
        """The token files of a scenario's two runs, by the first user of each: line k of a run's file is its
        user `prefix<first + k>`'s own token."""
        progress(f"signing a token for each of the {users:,} users {prefix}0..")
        signed = self.connections.signer.tokens(seed.user_ids(prefix, users))
        files = {}
        for first in (0, users // 2):
            files[first] = self.work_dir / f"{prefix}{first}.tokens"
            tokens.write_tokens(files[first], signed[first : first + users // 2])
        return files

    async def raw_sql(self, conferences: int, slots: int) -> SqlRun:
        progress(f"raw-SQL ceiling: {self.options.sql_threads} threads, {conferences} conference(s)")
        return await ceilings.raw_sql(
            self.infrastructure.database_url,
            threads=self.options.sql_threads,
            seconds=self.options.duration,
            conferences=conferences,
            slots=slots,
        )

    def sql_load(self) -> str:
        return f"{self.options.sql_threads} threads, {self.options.duration} s"


# --- 1: booking ----------------------------------------------------------------------------------------------------


async def bench_bookings(bench: Bench) -> Booked:
    """(a) and (b); returns a confirmed booking of (a) for (c) to read."""
    o = bench.options
    bench.report.add(
        "## 1. Booking over HTTP",
        "",
        f"`POST /book` from wrk, {o.connections} connections with one request in flight each, {o.duration} s a run, "
        "every request as a user of its own (inserted beforehand) with that user's own access token (signed "
        "beforehand by the stack's issuer's key; each is new to the gateway and to the booking service, so both "
        "check its signature). The half-load run follows at half the rate "
        "the full one reached. Above them, the raw-SQL booking transaction on the same PostgreSQL "
        f"({o.sql_threads} Python threads with a connection each, {o.duration} s).",
        "",
    )
    booking = await spread(bench)
    await one_conference(bench)
    return booking


async def spread(bench: Bench) -> Booked:
    o, gateway, report = bench.options, bench.connections.gateway, bench.report
    names = [f"Bench spread {n}" for n in range(o.conferences)]
    progress(f"(a): creating {o.conferences} conferences and inserting {o.users} users")
    ids = await seed.create_conferences(gateway, names, SPREAD_SEATS)
    seed.insert_users(bench.infrastructure.database_url, seed.user_ids("wa", o.users))
    token_files = bench.user_tokens("wa", o.users)
    ceiling = await bench.raw_sql(o.conferences, SPREAD_SEATS)
    full, half = await bench.full_and_half(
        "(a) POST /book spread",
        lambda first: wrk.book_script(names, "wa", first, o.users // 2, o.threads, token_files[first]),
    )
    report.add(
        f"### (a) Spread over {o.conferences:,} conferences",
        "",
        f"{o.conferences:,} conferences of {SPREAD_SEATS} seats each, created through the API, and {o.users:,} users "
        "(untimed). Each request books the next conference round the list. The ceiling does the same in its "
        "own tables.",
    )
    report.rates(_rates(bench, ceiling, full, half))
    _check_ceiling(report, ceiling, None)
    _check_runs(report, full, half)
    rows = await _settled_rows(bench, list(ids.values()))
    _check_answered(report, rows, "wa", o.users, _answered(full, half), o.connections)
    _check_spread(report, rows, ids)
    await _check_conferences(bench, {name: ids[name] for name in names[:SAMPLE_CONFERENCES]}, rows, SPREAD_SEATS)
    report.add("")
    report.target(_rate_target("(a) POST /book, spread", full, ceiling, "raw SQL", 0.25))
    confirmed = [row for row in rows if row.status == CONFIRMED]
    if not confirmed:
        raise BenchError("(a) confirmed no booking at all, so (c) has none to read")
    return confirmed[0]


async def one_conference(bench: Bench) -> None:
    o, gateway, report = bench.options, bench.connections.gateway, bench.report
    names = ["Bench one conference", "Bench one conference half"]
    progress(f"(b): creating 2 conferences and inserting {o.users} users")
    ids = await seed.create_conferences(gateway, names, o.seats)
    seed.insert_users(bench.infrastructure.database_url, seed.user_ids("wb", o.users))
    token_files = bench.user_tokens("wb", o.users)
    ceiling = await bench.raw_sql(1, o.seats)
    full, half = await bench.full_and_half(
        "(b) POST /book one conference",
        # The half-load run books a conference of its own, so that it starts from an empty line too.
        lambda first: wrk.book_script(
            [names[1] if first else names[0]], "wb", first, o.users // 2, o.threads, token_files[first]
        ),
    )
    report.add(
        f"### (b) Everybody on one conference of {o.seats} seats",
        "",
        f"The first {o.seats} bookings take the seats and the rest join its line. The half-load run books a second "
        "conference like it, so that its line starts empty too. The ceiling books one conference.",
    )
    report.rates(_rates(bench, ceiling, full, half))
    _check_ceiling(report, ceiling, o.seats)
    _check_runs(report, full, half)
    rows = await _settled_rows(bench, list(ids.values()))
    _check_answered(report, rows, "wb", o.users, _answered(full, half), o.connections)
    for name, conference_id in ids.items():
        line = [row for row in rows if row.conference_id == conference_id]
        _check_one_conference(report, name, line, o.seats)
        await _check_positions(bench, name, line)
        await _check_conferences(bench, {name: conference_id}, line, o.seats)
    report.add("")
    report.target(_rate_target("(b) POST /book, one conference", full, ceiling, "raw SQL", 0.60))
    report.target(_p99_target(half))


def _rates(bench: Bench, ceiling: SqlRun, full: wrk.Result, half: wrk.Result | None) -> list[Rate]:
    rows = [
        ceiling.rate("raw-SQL booking transaction (ceiling)", bench.sql_load()),
        full.rate("POST /book", bench.load),
    ]
    if half:
        rows.append(half.rate("POST /book at half load", bench.half_load(full)))
    return rows


def _answered(full: wrk.Result, half: wrk.Result | None) -> int:
    return sum(run.requests - run.non_2xx for run in (full, half) if run)


async def _settled_rows(bench: Bench, conference_ids: list[int]) -> list[Booked]:
    await bench.connections.table.settled_count(conference_ids)
    return bench.connections.table.of_conferences(conference_ids)


# --- 2: reading a booking ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reads:
    """What (c) measured, for the section on tokens: the floor, the floor with the token checked, and (c)."""

    floor: wrk.Result
    floor_checking_tokens: wrk.Result
    product: wrk.Result


async def bench_reads(bench: Bench, booking: Booked) -> Reads:
    o = bench.options
    bench.report.add(
        "## 2. Reading a booking over HTTP",
        "",
        f"`GET /booking/{{id}}` from wrk, {o.connections} connections, {o.duration} s a run, with the token of the "
        "booking's own user (the same token over and over: after its first request, the gateway and the booking "
        "service each find it among the tokens they verified). The ceiling is the framework floor: the real "
        "gateway, started on a port of its own with the product's environment but without its token check "
        "(`scripts/bench/floor_gateway.py`; no token is sent), in front of a gRPC server (the services' own "
        "runtime) whose GetBooking answers a constant booking.",
        "",
    )
    reads = await read_one(bench, booking, await framework_floor(bench))
    await read_line(bench)
    return reads


async def framework_floor(bench: Bench, token: str | None = None) -> wrk.Result:
    """The floor's GET /booking/1; with a token, through the gateway's own token check."""
    label = "the gateway's token check included" if token else "no token"
    progress(f"framework floor: the gateway in front of a no-op GetBooking, {label}")
    checks_tokens = token is not None
    name = "floor-checking-tokens" if checks_tokens else "floor"
    floor = Floor.beside(bench.stack, bench.stack.log_dir / "floor", checks_tokens=checks_tokens)
    try:
        floor.start()
        script = wrk.get_script("/booking/1", token)
        return await wrk.run(floor.base_url, bench.load, script, bench.work_dir / f"{name}.lua")
    finally:
        floor.stop()


async def read_one(bench: Bench, booking: Booked, floor: wrk.Result) -> Reads:
    report, booking_id = bench.report, booking.booking_id
    token = bench.connections.signer.token(booking.user_id)
    script = wrk.get_script(f"/booking/{booking_id}", token)
    full = await bench.drive("(c) GET /booking", script, bench.load)
    half = (
        await bench.drive("(c) GET /booking at half load", script, bench.half_load(full)) if full.per_second else None
    )
    checking = await framework_floor(bench, token)
    report.add(
        "### (c) One booking",
        "",
        f"Booking {booking_id}, a confirmed one of (a), over and over, as its user {booking.user_id}. Last, for "
        "information, the floor again with the gateway's own token check (the product's gateway in front of the "
        "no-op server, the same token on every request).",
    )
    rows = [floor.rate("framework floor (ceiling)", bench.load), full.rate("GET /booking/{id}", bench.load)]
    if half:
        rows.append(half.rate("GET /booking/{id} at half load", bench.half_load(full)))
    rows.append(checking.rate("framework floor, the token checked", bench.load))
    report.rates(rows)
    _check_run(report, "the framework floor", floor)
    _check_runs(report, full, half)
    _check_run(report, "the framework floor with the token checked", checking)
    report.add("")
    report.target(_rate_target("(c) GET /booking/{id}", full, floor, "framework floor", 0.50))
    return Reads(floor, checking, full)


async def read_line(bench: Bench) -> None:
    o, report = bench.options, bench.report
    placements, seconds, users = await build_line(bench)
    head, last = _line_ends(placements, o.line)
    # Measured again: building the line takes minutes, and the machine's other load moves meanwhile.
    floor = await framework_floor(bench)
    head_script = wrk.get_script(f"/booking/{head}", _token_of(bench, users.get(head)))
    last_script = wrk.get_script(f"/booking/{last}", _token_of(bench, users.get(last)))
    head_run = await bench.drive("(d) GET /booking head of the line", head_script, bench.load)
    last_run = await bench.drive("(d) GET /booking last of the line", last_script, bench.load)
    report.add(
        f"### (d) The head and the last of a line of {o.line:,}",
        "",
        f"A one-seat conference; {o.line + 1:,} users (inserted beforehand) book it through "
        f"BookingService/Book from {BUILD_CLIENTS} concurrent gRPC clients with an admin's token, untimed: that "
        f"took {seconds:.1f} s ({len(placements) / seconds:,.0f} bookings/s). Then the framework floor again, and "
        f"`GET /booking/{{id}}` of the head of the line (booking {head}) and of the last in it (booking {last}), "
        "each as its own user.",
    )
    report.rates(
        [
            floor.rate("framework floor (ceiling)", bench.load),
            head_run.rate("GET /booking/{id}, head of the line", bench.load),
            last_run.rate(f"GET /booking/{{id}}, last of {o.line:,}", bench.load),
        ]
    )
    _check_line(report, placements, o.line)
    if last:
        found = (await bench.connections.gateway.booking(last))["waitlist_position"]
        report.check(found == o.line, f"GET /booking/{{id}} puts the last at {o.line:,} (got {found})")
    _check_run(report, "the head's run", head_run)
    _check_run(report, "the last's run", last_run)
    report.add("")
    report.target(_line_target(o.line, head_run, last_run))
    report.target(_rate_target("(d) head of the line", head_run, floor, "framework floor", None))


def _token_of(bench: Bench, user_id: str | None) -> str:
    """The user's own token; an admin's for a booking nobody got (its reads then fail the checks as before)."""
    signer = bench.connections.signer
    return signer.token(user_id) if user_id else signer.token(tokens.ADMIN, "admin")


async def build_line(bench: Bench) -> tuple[list[Placement], float, dict[int, str]]:
    """A one-seat conference and a line of --line behind it, booked for real over gRPC: untimed, but the seconds
    it took are reported. With the user of each booking."""
    o, name = bench.options, "Bench long line"
    conference = await bench.connections.gateway.new_conference(1, name=name)
    users = seed.user_ids("wd", o.line + 1)
    seed.insert_users(bench.infrastructure.database_url, users)
    progress(f"(d): booking a line of {o.line:,} over gRPC from {BUILD_CLIENTS} clients (untimed)")
    admin = bench.connections.signer.token(tokens.ADMIN, "admin")
    done = 0

    async def book(user: str) -> Placement:
        nonlocal done
        placement = await settle(grpc_book(bench.connections.booking, name, user, admin))
        done += 1
        if done % BUILD_PROGRESS_EVERY == 0:
            progress(f"(d): {done:,} of {len(users):,} booked")
        return placement

    started = time.perf_counter()
    placements = (await concurrently(book, users, BUILD_CLIENTS)).results
    seconds = time.perf_counter() - started
    booked = bench.connections.table.of_conferences([conference["conference_id"]])
    return placements, seconds, {row.booking_id: row.user_id for row in booked}


def _line_ends(placements: Sequence[Placement], line: int) -> tuple[int, int]:
    """The booking ids at positions 1 and `line` (0 for a position nobody got)."""
    by_position = {p.position: p.booking_id for p in placements if p.status == WAITLISTED}
    return by_position.get(1, 0), by_position.get(line, 0)


# --- checks --------------------------------------------------------------------------------------------------------


def _check_run(report: Report, label: str, result: wrk.Result) -> None:
    report.check(result.errors == 0, f"{label}: every request answered 2xx ({result.error_summary()})")


def _check_runs(report: Report, full: wrk.Result, half: wrk.Result | None) -> None:
    _check_run(report, "full load", full)
    if half is None:
        report.check(False, "half load: not run, since the full load completed nothing")
    else:
        _check_run(report, "half load", half)


def _check_ceiling(report: Report, run: SqlRun, seats: int | None) -> None:
    error = f": {run.first_error}" if run.first_error else ""
    report.check(run.errors == 0, f"ceiling: every transaction committed ({run.errors} failed{error})")
    booked = sum(run.statuses.values())
    report.check(
        booked == run.transactions and run.ledger_mismatches == 0,
        f"ceiling: one booking per commit ({booked} for {run.transactions}), and seats held and lines match the "
        f"CONFIRMED and WAITLISTED bookings in every conference ({run.ledger_mismatches} differ)",
    )
    if seats is not None:
        confirmed = run.statuses.get(CONFIRMED, 0)
        expected = min(seats, booked)
        report.check(confirmed == expected, f"ceiling: exactly {expected} CONFIRMED (got {confirmed})")


def _check_answered(
    report: Report, rows: Sequence[Booked], prefix: str, users: int, answered: int, in_flight: int
) -> None:
    """Every 2xx answer left a booking, and no user booked twice. wrk stops with up to `in_flight` requests per run
    unanswered, which the services still carry out."""
    slack = 2 * in_flight
    report.check(
        answered <= len(rows) <= answered + slack,
        f"the table holds every answered booking: {len(rows):,} for {answered:,} 2xx answers "
        f"(up to {slack} more may come from requests in flight when wrk stopped)",
    )
    pool = re.compile(rf"^{prefix}(\d+)$")
    ours = [match for row in rows if (match := pool.match(row.user_id)) and int(match[1]) < users]
    distinct = len({row.user_id for row in rows})
    report.check(
        len(ours) == len(rows) == distinct,
        f"each booking has a user of its own from those inserted ({distinct:,} distinct users in {len(rows):,})",
    )


def _check_spread(report: Report, rows: Sequence[Booked], ids: dict[str, int]) -> None:
    totals = Counter(row.conference_id for row in rows)
    confirmed = Counter(row.conference_id for row in rows if row.status == CONFIRMED)
    waitlisted = Counter(row.conference_id for row in rows if row.status == WAITLISTED)
    differ = [
        conference_id
        for conference_id in ids.values()
        if confirmed[conference_id] != min(totals[conference_id], SPREAD_SEATS)
        or waitlisted[conference_id] != totals[conference_id] - confirmed[conference_id]
    ]
    report.check(
        not differ,
        f"in every conference, CONFIRMED = min(bookings, {SPREAD_SEATS}) and the rest WAITLISTED "
        f"({len(differ)} conferences differ; {sum(waitlisted.values()):,} WAITLISTED in all)",
    )


def _check_one_conference(report: Report, name: str, rows: Sequence[Booked], seats: int) -> None:
    confirmed = sum(row.status == CONFIRMED for row in rows)
    waitlisted = sum(row.status == WAITLISTED for row in rows)
    expected = min(seats, len(rows))
    report.check(
        confirmed == expected and waitlisted == len(rows) - confirmed,
        f"{name}: exactly {expected} CONFIRMED and the other {len(rows) - expected:,} WAITLISTED "
        f"(got {confirmed} and {waitlisted:,})",
    )


async def _check_positions(bench: Bench, name: str, rows: Sequence[Booked]) -> None:
    """A sample of the line, first and last included, read through the API: each booking at its place in the order
    the bookings were made (the line is first come, first served)."""
    line = [row.booking_id for row in rows if row.status == WAITLISTED]
    if not line:
        return
    picks = sorted({round(i * (len(line) - 1) / (SAMPLE_POSITIONS - 1)) for i in range(SAMPLE_POSITIONS)})
    found = [(await bench.connections.gateway.booking(line[i]))["waitlist_position"] for i in picks]
    expected = [i + 1 for i in picks]
    wrong = [(want, got) for want, got in zip(expected, found, strict=True) if want != got]
    report_wrong = f"; first wrong: {wrong[0][1]} for {wrong[0][0]}" if wrong else ""
    bench.report.check(
        not wrong,
        f"{name}: {len(picks)} of the {len(line):,} in line, read through GET /booking/{{id}}, stand at their "
        f"places in booking order, 1 to {len(line):,}{report_wrong}",
    )


async def _check_conferences(bench: Bench, ids: dict[str, int], rows: Sequence[Booked], seats: int) -> None:
    """GET /conference/{name} agrees with the table: free seats only while nobody waits, and the line's length."""
    expected = {name: _availability(rows, conference_id, seats) for name, conference_id in ids.items()}
    found = {}
    for name in ids:
        conference = await bench.connections.gateway.conference(name)
        found[name] = (conference["available_slots"], conference["waitlist_length"])
    disagree = [f"{name}: {found[name]} for {expected[name]}" for name in ids if found[name] != expected[name]]
    label = f"{len(ids)} conferences" if len(ids) > 1 else f"{next(iter(ids))}, {next(iter(expected.values()))}"
    detail = f"; {disagree[0]}" if disagree else ""
    bench.report.check(
        not disagree, f"GET /conference/{{name}} agrees (available_slots, waitlist_length) for {label}{detail}"
    )


def _availability(rows: Sequence[Booked], conference_id: int, seats: int) -> tuple[int, int]:
    mine = [row for row in rows if row.conference_id == conference_id]
    confirmed = sum(row.status == CONFIRMED for row in mine)
    waiting = sum(row.status == WAITLISTED for row in mine)
    return (0 if waiting else seats - confirmed), waiting


def _check_line(report: Report, placements: Sequence[Placement], line: int) -> None:
    errors = [p.status for p in placements if p.status not in (CONFIRMED, WAITLISTED)]
    confirmed = sum(p.status == CONFIRMED for p in placements)
    positions = sorted(p.position or 0 for p in placements if p.status == WAITLISTED)
    report.check(not errors, f"every booking succeeded ({len(errors)} errors{': ' + errors[0] if errors else ''})")
    report.check(
        confirmed == 1 and positions == list(range(1, line + 1)),
        f"1 CONFIRMED and {line:,} WAITLISTED at positions exactly 1..{line:,} "
        f"(got {confirmed} and {len(positions):,}, {len(set(positions)):,} distinct)",
    )


# --- targets -------------------------------------------------------------------------------------------------------


def _rate_target(
    figure: str, product: wrk.Result, ceiling: wrk.Result | SqlRun, kind: str, least: float | None
) -> Target:
    """The product's rate as a share of the ceiling's; with no `least`, a row for information only."""
    fraction = ratio(product.per_second, ceiling.per_second)
    return Target(
        figure,
        f"{product.per_second:,.0f}/s",
        f"{ceiling.per_second:,.0f}/s ({kind})",
        percent(fraction),
        f"≥ {percent(least)}" if least is not None else "—",
        fraction >= least if least is not None else None,
    )


def _line_target(line: int, head: wrk.Result, last: wrk.Result) -> Target:
    fraction = ratio(last.per_second, head.per_second)
    return Target(
        f"(d) GET /booking/{{id}}, last of {line:,}",
        f"{last.per_second:,.0f}/s",
        f"{head.per_second:,.0f}/s (head of the line)",
        percent(fraction),
        "≥ 67%",
        fraction >= 0.67,
    )


def _p99_target(half: wrk.Result | None) -> Target:
    p99 = half.latency.get(99) if half else None
    return Target(
        "(b) p99 at half load",
        f"{ms(p99)} ms" if p99 is not None else "not run",
        "—",
        "—",
        f"< {HALF_LOAD_P99_SECONDS * 1000:.0f} ms",
        p99 is not None and p99 < HALF_LOAD_P99_SECONDS,
    )
