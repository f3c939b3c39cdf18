"""Measurements 3-6: how fast the waitlist acts, from the booking service's own timestamps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from scripts.bench.api import (
    CANCELED,
    CONFIRMED,
    PENDING,
    WAITLISTED,
    Connections,
    Row,
    book_in_order,
    retire,
    seconds_between,
    whole_second,
)
from scripts.bench.options import Options
from scripts.bench.report import Report, ms, progress

# Short, so that offers expire within the run.
WINDOW_SECONDS = 2
MASS_RELEASE_SEATS = 20
MASS_RELEASE_LINE = 30
START_LINE = 5
START_LEAD_SECONDS = 3


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
