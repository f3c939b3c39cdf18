"""The invariants, judged from the databases once the system is quiet, and what the clients were told."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, text

from confbook_common.messaging.topology import DEAD_LETTER_QUEUE
from scripts.soak.database import Databases
from scripts.soak.journal import Journal
from scripts.soak.quiet import queued_messages

# A freed seat is offered well under a second after it is freed; after this long with nobody offered it, the
# turn was lost.
PROMOTION_GRACE_SECONDS = 3
# The contract: a started conference's line is canceled within a couple of seconds.
START_GRACE_SECONDS = 10

_CONFERENCES = text("""
    SELECT s.conference_id, s.name, s.slots, s.seats_held, s.waiting, s.start_at,
           s.start_at <= now() AS started,
           s.start_at < now() - make_interval(secs => :start_grace) AS long_started,
           count(b.booking_id) FILTER (WHERE b.status IN ('CONFIRMED', 'CONFIRMATION_PENDING')) AS held,
           count(b.booking_id) FILTER (WHERE b.status = 'WAITLISTED') AS in_line,
           count(b.booking_id) FILTER (WHERE b.status = 'CONFIRMATION_PENDING') AS pending,
           coalesce(greatest(max(b.updated_at), max(b.created_at)), '-infinity')
               < now() - make_interval(secs => :promotion_grace) AS settled
    FROM booking.conference_seats AS s LEFT JOIN booking.bookings AS b USING (conference_id)
    GROUP BY s.conference_id
    ORDER BY s.conference_id
""")
_OVERLAPS = text("""
    SELECT a.user_id, a.booking_id, b.booking_id AS other
    FROM booking.bookings AS a JOIN booking.bookings AS b
      ON b.user_id = a.user_id AND b.booking_id > a.booking_id AND b.during && a.during
    WHERE a.status = 'CONFIRMED' AND b.status = 'CONFIRMED'
""")
_LINES = text("""
    SELECT conference_id, booking_id, join_order, booking.waitlist_position(conference_id, join_order) AS position
    FROM booking.bookings WHERE status = 'WAITLISTED'
    ORDER BY conference_id, join_order
""")
_LATE_OFFERS = text("""
    SELECT b.booking_id FROM booking.bookings AS b JOIN booking.conference_seats AS s USING (conference_id)
    WHERE b.status = 'CONFIRMATION_PENDING' AND b.offer_deadline > s.start_at
""")
_BOOKINGS = text("""
    SELECT b.booking_id, b.user_id, s.name, b.status, s.start_at, b.updated_at
    FROM booking.bookings AS b JOIN booking.conference_seats AS s USING (conference_id)
""")
# Nothing but a start cancels a booking of a started conference: users may no longer.
_STARTS = text("""
    SELECT (SELECT count(*) FROM booking.conference_seats WHERE start_at BETWEEN :run_started AND now())
               AS "conferences with bookings that started during the run",
           (SELECT count(*) FROM booking.bookings AS b JOIN booking.conference_seats AS s USING (conference_id)
            WHERE s.start_at BETWEEN :run_started AND now() AND b.status = 'CANCELED' AND b.updated_at >= s.start_at)
               AS "bookings canceled at their conference's start"
""")


@dataclass
class Verdict:
    violations: list[str] = field(default_factory=list)
    world: dict[str, int] = field(default_factory=dict)


def check(databases: Databases, journal: Journal, run_started: datetime) -> Verdict:
    """The invariants of the data, and what the clients were told against it."""
    verdict = Verdict()
    # The ledger's slots are the current capacity (docs/adr/0014): the conference service's are only the first.
    with databases.snapshot("booking") as db:
        _check_conferences(db, verdict)
        _check_overlaps(db, verdict)
        _check_lines(db, verdict)
        for row in db.execute(_LATE_OFFERS):
            verdict.violations.append(f"booking {row.booking_id}: offered with a deadline after its conference starts")
        _check_acknowledged(db, journal, run_started, verdict)
    return verdict


def check_dead_letters(amqp_url: str) -> list[str]:
    """A message rejected as poison is an event whose effect never happened."""
    dead = queued_messages(amqp_url, [DEAD_LETTER_QUEUE])[DEAD_LETTER_QUEUE]
    return [f"{dead} messages in {DEAD_LETTER_QUEUE}: events that were never handled"] if dead else []


def _check_conferences(db: Connection, verdict: Verdict) -> None:
    grace = {"promotion_grace": PROMOTION_GRACE_SECONDS, "start_grace": START_GRACE_SECONDS}
    for c in db.execute(_CONFERENCES, grace):
        where = f"conference {c.name!r} ({c.conference_id})"
        if c.held > c.slots:
            verdict.violations.append(f"{where}: {c.held} seats held (CONFIRMED + CONFIRMATION_PENDING) of {c.slots}")
        if c.seats_held != c.held:
            verdict.violations.append(f"{where}: the ledger counts {c.seats_held} seats held, the bookings {c.held}")
        if c.waiting != c.in_line:
            verdict.violations.append(f"{where}: the ledger counts {c.waiting} waiting, the bookings {c.in_line}")
        if not c.started and c.settled and c.held < c.slots and c.in_line:
            verdict.violations.append(
                f"{where}: a lost turn: {c.slots - c.held} free seats and {c.in_line} in line, "
                f"nothing changed for {PROMOTION_GRACE_SECONDS} s"
            )
        if c.long_started and (c.in_line or c.pending):
            verdict.violations.append(
                f"{where}: started over {START_GRACE_SECONDS} s ago, {c.in_line} still WAITLISTED and "
                f"{c.pending} CONFIRMATION_PENDING"
            )


def _check_overlaps(db: Connection, verdict: Verdict) -> None:
    for row in db.execute(_OVERLAPS):
        verdict.violations.append(
            f"user {row.user_id}: overlapping CONFIRMED bookings {row.booking_id} and {row.other}"
        )


def _check_lines(db: Connection, verdict: Verdict) -> None:
    positions: dict[int, list[int]] = defaultdict(list)
    for row in db.execute(_LINES):
        positions[row.conference_id].append(row.position)
    for conference_id, line in positions.items():
        if line != list(range(1, len(line) + 1)):
            verdict.violations.append(
                f"conference {conference_id}: positions in join order are {line[:20]}, not 1..{len(line)}"
            )


def _check_acknowledged(db: Connection, journal: Journal, run_started: datetime, verdict: Verdict) -> None:
    """Every booking a client was told of exists, and what was acknowledged about it still holds."""
    rows = {row.booking_id: row for row in db.execute(_BOOKINGS)}
    statuses = Counter(row.status for row in rows.values())
    for booking in journal.bookings.values():
        row = rows.get(booking.booking_id)
        where = f"booking {booking.booking_id}"
        if row is None:
            verdict.violations.append(f"{where}: acknowledged to a client, missing from the database")
            continue
        if (row.user_id, row.name.casefold()) != (booking.user_id, booking.conference.casefold()):
            verdict.violations.append(
                f"{where}: booked for {booking.user_id} at {booking.conference!r}, "
                f"found for {row.user_id} at {row.name!r}"
            )
        if booking.must_be_canceled and row.status != "CANCELED":
            verdict.violations.append(f"{where}: canceled (acknowledged or seen), now {row.status}")
        if booking.must_be_confirmed and row.status != "CONFIRMED":
            verdict.violations.append(f"{where}: CONFIRMED and never canceled by its client, now {row.status}")
    verdict.world = {
        **{f"bookings {status}": count for status, count in sorted(statuses.items())},
        "bookings acknowledged to clients": len(journal.bookings),
        **db.execute(_STARTS, {"run_started": run_started}).mappings().one(),
    }
