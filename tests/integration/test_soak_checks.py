"""The soak's invariant checks, on a database of their own with hand-planted states: a sound world passes, and
each kind of broken one is reported."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from confbook_common.settings import Env
from scripts.migrate import SERVICES, SchemaRoles, migrate_all
from scripts.sandbox import Infrastructure, recreate_database
from scripts.soak import checks
from scripts.soak.database import Databases
from scripts.soak.faults import FaultLog
from scripts.soak.journal import Booking, Journal

HOUR = timedelta(hours=1)
# In an order the foreign keys allow.
EMPTIED_BOOKING_TABLES = [
    "webhook_deliveries",
    "webhooks",
    "booking_events",
    "bookings",
    "conference_seats",
    "users",
    "waitlist_tree",
]
LONG_AGO = timedelta(minutes=1)


@pytest.fixture(scope="module")
def env(infrastructure: Infrastructure) -> Env:
    """A database apart from the other tests', whose bookings the checks would judge too."""
    url = make_url(infrastructure.database_url).set(database="confbook_soak_checks")
    recreate_database(url.render_as_string(hide_password=False))
    env = Env({"DATABASE_URL": url.render_as_string(hide_password=False)})
    migrate_all(env)
    return env


class Planter:
    """Writes conferences and bookings straight into the schemas, bypassing every rule of the services."""

    def __init__(self, booking: Connection, conference: Connection) -> None:
        self.booking = booking
        self.conference = conference
        self.now = datetime.now(UTC)
        self._ids = itertools.count(1)

    def conference_with(self, *, slots: int, seats_held: int, starts_in: timedelta = 24 * HOUR) -> int:
        conference_id = next(self._ids)
        name = f"Conf {conference_id}"
        row = {"id": conference_id, "name": name, "key": name.casefold(), "slots": slots, "held": seats_held}
        row |= {"start": self.now + starts_in, "end": self.now + starts_in + HOUR}
        self.conference.execute(
            text(
                "INSERT INTO conference.conferences (conference_id, name, name_key, location, start_at, end_at,"
                " slots, topics, topic_keys) VALUES (:id, :name, :key, 'Berlin', :start, :end, :slots, '{}', '{}')"
            ),
            row,
        )
        self.booking.execute(
            text(
                "INSERT INTO booking.conference_seats (conference_id, name, name_key, start_at, end_at, slots,"
                " seats_held) VALUES (:id, :name, :key, :start, :end, :slots, :held)"
            ),
            row,
        )
        return conference_id

    def booking_of(
        self, conference_id: int, status: str, *, user: str | None = None, changed_ago: timedelta = timedelta(0)
    ) -> int:
        user = user or f"user{next(self._ids)}"
        self.booking.execute(
            text("INSERT INTO booking.users (user_id, topics) VALUES (:user, '{}') ON CONFLICT DO NOTHING"),
            {"user": user},
        )
        return int(
            self.booking.execute(
                text(
                    "INSERT INTO booking.bookings (user_id, conference_id, status, during, offer_deadline,"
                    " created_at, updated_at)"
                    " SELECT :user, conference_id, :status, tstzrange(start_at, end_at),"
                    " CASE WHEN :status = 'CONFIRMATION_PENDING' THEN least(:changed + interval '5 s', start_at) END,"
                    " :changed, :changed"
                    " FROM booking.conference_seats WHERE conference_id = :id RETURNING booking_id"
                ),
                {"user": user, "status": status, "id": conference_id, "changed": self.now - changed_ago},
            ).scalar_one()
        )


@pytest.fixture
def planter(env: Env) -> Iterator[Planter]:
    """An empty world; each statement commits at once, so that the checks see it."""
    engines = [
        create_engine(env.service_database_url(service), isolation_level="AUTOCOMMIT")
        for service in ("booking", "conference")
    ]
    with engines[0].connect() as booking, engines[1].connect() as conference:
        # DELETE, not TRUNCATE: a service's role may change rows, never more (docs/adr/0022).
        for table in EMPTIED_BOOKING_TABLES:
            booking.execute(text(f"DELETE FROM booking.{table}"))
        conference.execute(text("DELETE FROM conference.conferences"))
        yield Planter(booking, conference)
    for engine in engines:
        engine.dispose()


def judge(env: Env, *acknowledged: Booking) -> list[str]:
    journal = Journal(FaultLog())
    journal.bookings = {booking.booking_id: booking for booking in acknowledged}
    databases = Databases({service: env.service_database_url(service) for service in SERVICES})
    try:
        return checks.check(databases, journal, run_started=datetime.now(UTC) - HOUR).violations
    finally:
        databases.close()


def acknowledged(booking_id: int, user: str, conference_id: int, **promises: bool) -> Booking:
    return Booking(booking_id, user, f"Conf {conference_id}", "", **promises)


def test_a_sound_world_passes(env, planter):
    # Full, with a line.
    full = planter.conference_with(slots=2, seats_held=2)
    confirmed = planter.booking_of(full, "CONFIRMED", user="alice", changed_ago=LONG_AGO)
    planter.booking_of(full, "CONFIRMED", changed_ago=LONG_AGO)
    for _ in range(3):
        planter.booking_of(full, "WAITLISTED", changed_ago=LONG_AGO)
    # A seat offered to the head of the line.
    offered = planter.conference_with(slots=1, seats_held=1)
    planter.booking_of(offered, "CONFIRMATION_PENDING")
    planter.booking_of(offered, "WAITLISTED")
    # A seat freed this instant: its offer is still on the way.
    freed = planter.conference_with(slots=1, seats_held=0)
    canceled = planter.booking_of(freed, "CANCELED", user="bob")
    planter.booking_of(freed, "WAITLISTED")
    # Started: its line is gone, its seats stay.
    started = planter.conference_with(slots=1, seats_held=1, starts_in=-LONG_AGO)
    planter.booking_of(started, "CONFIRMED", changed_ago=2 * LONG_AGO)
    planter.booking_of(started, "CANCELED")

    assert (
        judge(
            env,
            acknowledged(confirmed, "alice", full, must_be_confirmed=True),
            acknowledged(canceled, "bob", freed, must_be_canceled=True),
        )
        == []
    )


def test_each_broken_invariant_is_reported(env, planter):
    oversold = planter.conference_with(slots=1, seats_held=1)
    planter.booking_of(oversold, "CONFIRMED")
    planter.booking_of(oversold, "CONFIRMED")

    lost_turn = planter.conference_with(slots=2, seats_held=1)
    planter.booking_of(lost_turn, "CONFIRMED", changed_ago=LONG_AGO)
    planter.booking_of(lost_turn, "WAITLISTED", changed_ago=LONG_AGO)

    line = planter.conference_with(slots=1, seats_held=1)
    planter.booking_of(line, "CONFIRMED", changed_ago=LONG_AGO)
    for _ in range(3):
        planter.booking_of(line, "WAITLISTED")
    planter.booking.execute(
        text("UPDATE booking.waitlist_tree SET waiting = waiting + 1 WHERE conference_id = :id AND node = 1"),
        {"id": line},
    )

    started = planter.conference_with(slots=1, seats_held=1, starts_in=-LONG_AGO)
    planter.booking_of(started, "CONFIRMATION_PENDING", changed_ago=2 * LONG_AGO)
    planter.booking_of(started, "WAITLISTED", changed_ago=2 * LONG_AGO)

    # The database forbids this one itself; without its constraint, the check must still see it. Only the
    # schema's owner may drop a constraint.
    owner = SchemaRoles.of("booking", env.service_database_url("booking")).owner
    admin = create_engine(env.admin_database_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as as_owner:
        as_owner.execute(text(f"SET ROLE {owner}"))
        as_owner.execute(text("ALTER TABLE booking.bookings DROP CONSTRAINT no_overlapping_confirmed_bookings"))
    admin.dispose()
    first = planter.conference_with(slots=5, seats_held=1)
    second = planter.conference_with(slots=5, seats_held=1)
    kept = planter.booking_of(first, "CONFIRMED", user="carol")
    planter.booking_of(second, "CONFIRMED", user="carol")
    gone = planter.booking_of(first, "CANCELED", user="erin")

    late_offer = planter.conference_with(slots=1, seats_held=1, starts_in=timedelta(seconds=3))
    planter.booking.execute(
        text(
            "INSERT INTO booking.bookings (user_id, conference_id, status, during, offer_deadline)"
            " SELECT 'carol', conference_id, 'CONFIRMATION_PENDING', tstzrange(start_at, end_at), end_at"
            " FROM booking.conference_seats WHERE conference_id = :id"
        ),
        {"id": late_offer},
    )

    violations = judge(
        env,
        acknowledged(10**9, "dave", first),
        acknowledged(kept, "carol", first, must_be_canceled=True),
        acknowledged(gone, "erin", first, must_be_confirmed=True),
    )

    expected = [
        f"conference 'Conf {oversold}' ({oversold}): 2 seats held (CONFIRMED + CONFIRMATION_PENDING) of 1",
        f"conference 'Conf {oversold}' ({oversold}): the ledger counts 1 seats held, the bookings 2",
        f"conference 'Conf {lost_turn}' ({lost_turn}): a lost turn: 1 free seats and 1 in line",
        f"conference {line}: positions in join order are [2, 2, 3], not 1..3",
        f"conference 'Conf {started}' ({started}): started over 10 s ago, 1 still WAITLISTED and 1 CONFIRMATION_P",
        "user carol: overlapping CONFIRMED bookings",
        "offered with a deadline after its conference starts",
        f"booking {10**9}: acknowledged to a client, missing from the database",
        f"booking {kept}: canceled (acknowledged or seen), now CONFIRMED",
        f"booking {gone}: CONFIRMED and never canceled by its client, now CANCELED",
    ]
    for fragment in expected:
        assert any(fragment in violation for violation in violations), (fragment, violations)
