"""Migrations on a booking schema that already holds data: 0002 numbers the lines (positions kept),
0006 makes the deliveries the old webhook dispatcher still owed, 0008 gives the data its owners."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from scripts.migrate import SERVICES_DIR, SchemaRoles, migrate_schema
from scripts.sandbox import Infrastructure, recreate_database

DATABASE = "confbook_migration_test"
MIGRATIONS = SERVICES_DIR / "booking" / "migrations"
# Brings the test's database to a revision (the newest by default), as `make migrate` does.
Upgrade = Callable[..., None]


def database_at(infrastructure: Infrastructure, revision: str) -> Iterator[tuple[Engine, Upgrade]]:
    """A database of its own whose booking schema stops at `revision`."""
    admin_url = make_url(infrastructure.database_url)
    recreate_database(admin_url.set(database=DATABASE).render_as_string(hide_password=False))
    admin = sqlalchemy.create_engine(admin_url.set(database=DATABASE), isolation_level="AUTOCOMMIT")
    with admin.begin() as db:
        db.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
    service_url = make_url(infrastructure.service_database_url("booking")).set(database=DATABASE)
    roles = SchemaRoles.of("booking", service_url.render_as_string(hide_password=False))
    migrate_schema(admin, MIGRATIONS, roles, revision=revision)
    engine = sqlalchemy.create_engine(service_url)
    yield engine, partial(migrate_schema, admin, MIGRATIONS, roles)
    engine.dispose()
    admin.dispose()


@pytest.fixture
def database_at_0001(infrastructure: Infrastructure) -> Iterator[tuple[Engine, Upgrade]]:
    yield from database_at(infrastructure, "0001")


@pytest.fixture
def database_at_0007(infrastructure: Infrastructure) -> Iterator[tuple[Engine, Upgrade]]:
    yield from database_at(infrastructure, "0007")


@pytest.fixture
def database_at_0005(infrastructure: Infrastructure) -> Iterator[tuple[Engine, Upgrade]]:
    yield from database_at(infrastructure, "0005")


def test_lines_keep_their_order_and_positions_through_the_upgrade(database_at_0001):
    engine, upgrade = database_at_0001
    with engine.begin() as db:
        db.execute(
            text("INSERT INTO booking.users (user_id, topics) SELECT 'u' || n, '{}' FROM generate_series(1, 30) n")
        )
        db.execute(
            text(
                "INSERT INTO booking.conference_seats (conference_id, name, start_at, end_at, slots, seats_held)"
                " VALUES (1, 'Zürich Days', '2030-01-01', '2030-01-02', 1, 1),"
                " (2, 'Other', '2030-02-01', '2030-02-02', 1, 1)"
            )
        )
        # Two lines interleaved on the one global sequence, with gaps where bookings left.
        for n in range(1, 31):
            conference = 1 if n % 3 else 2
            status = "CONFIRMED" if n in (1, 3) else ("CANCELED" if n % 7 == 0 else "WAITLISTED")
            db.execute(
                text(
                    "INSERT INTO booking.bookings (user_id, conference_id, status, during, join_order)"
                    " VALUES (:user, :conference, :status, tstzrange(:start, :end),"
                    " CASE WHEN :status = 'WAITLISTED' THEN nextval('booking.waitlist_join_order') END)"
                ),
                {
                    "user": f"u{n}",
                    "conference": conference,
                    "status": status,
                    "start": "2030-01-01" if conference == 1 else "2030-02-01",
                    "end": "2030-01-02" if conference == 1 else "2030-02-02",
                },
            )
        before = db.execute(
            text(
                "SELECT booking_id, row_number() OVER (PARTITION BY conference_id ORDER BY join_order)"
                " FROM booking.bookings WHERE status = 'WAITLISTED'"
            )
        ).all()

    upgrade()

    with engine.begin() as db:
        after = dict(
            db.execute(
                text(
                    "SELECT booking_id, booking.waitlist_position(conference_id, join_order)"
                    " FROM booking.bookings WHERE status = 'WAITLISTED'"
                )
            ).all()
        )
        ledgers = db.execute(
            text("SELECT conference_id, name_key, waiting, tickets_issued FROM booking.conference_seats ORDER BY 1")
        ).all()
        tickets = db.execute(
            text(
                "SELECT conference_id, array_agg(join_order ORDER BY join_order) FROM booking.bookings"
                " WHERE status = 'WAITLISTED' GROUP BY 1 ORDER BY 1"
            )
        ).all()
    assert after == dict(before), "every waiting booking keeps its place"
    waiting = {conference: len(line) for conference, line in tickets}
    assert [(c, key, w, t) for c, key, w, t in ledgers] == [
        (1, "zürich days", waiting[1], waiting[1]),
        (2, "other", waiting[2], waiting[2]),
    ]
    assert [line for _, line in tickets] == [list(range(1, waiting[c] + 1)) for c, _ in tickets]

    # And the line goes on from there: the next booking joins at the end.
    with engine.begin() as db:
        db.execute(text("INSERT INTO booking.users (user_id, topics) VALUES ('late', '{}')"))
        placed = db.execute(
            text("SELECT * FROM booking.book('late', 'zürich days', NULL, '2029-01-01', false, NULL, NULL, 'admin')")
        ).one()
    assert (placed.outcome, placed.status, placed.waitlist_position) == ("BOOKED", "WAITLISTED", waiting[1] + 1)


def test_events_the_old_dispatcher_had_not_reached_get_their_deliveries_once(database_at_0005):
    engine, upgrade = database_at_0005
    with engine.begin() as db:
        db.execute(
            text("INSERT INTO booking.users (user_id, topics) SELECT 'u' || n, '{}' FROM generate_series(1, 4) n")
        )
        db.execute(
            text(
                "INSERT INTO booking.conference_seats (conference_id, name, name_key, start_at, end_at, slots) VALUES"
                " (1, 'Watched', 'watched', '2030-01-01', '2030-01-02', 1),"
                " (2, 'Other', 'other', '2030-02-01', '2030-02-02', 1)"
            )
        )
        everything, _offers_only = db.execute(
            text(
                "INSERT INTO booking.webhooks (url, event_types, conference_id, secret) VALUES"
                " ('http://a.example/', NULL, 1, 's'), ('http://b.example/', '{booking.offered}', NULL, 's')"
                " RETURNING webhook_id"
            )
        ).scalars()
        for user, conference in (("u1", "watched"), ("u2", "watched"), ("u3", "other")):
            db.execute(text("SELECT booking.book(:user, :conference, NULL, '2029-01-01', false)"),
                       {"user": user, "conference": conference})  # fmt: skip
        # The first event was dispatched already, and its delivery sent and gone.
        db.execute(text("UPDATE booking.booking_events SET dispatched = true WHERE sequence = 1"))

    upgrade(revision="0006")

    def owed() -> list[tuple[str, int]]:
        with engine.begin() as db:
            rows = db.execute(
                text(
                    "SELECT webhook_id::text, event_sequence FROM booking.webhook_deliveries"
                    " ORDER BY event_sequence, webhook_id"
                )
            )
            return [(webhook, sequence) for webhook, sequence in rows]

    # Events 2 (conference 1) and 3 (conference 2); only the first webhook matches either.
    assert owed() == [(str(everything), 2)]
    # From now on the change makes its own deliveries.
    with engine.begin() as db:
        db.execute(text("SELECT booking.book('u4', 'watched', NULL, '2029-01-01', false)"))
    assert owed() == [(str(everything), 2), (str(everything), 4)]


def test_what_was_made_before_owners_is_an_admins_alone_and_the_history_says_who(database_at_0007):
    engine, upgrade = database_at_0007
    with engine.begin() as db:
        db.execute(text("INSERT INTO booking.users (user_id, topics) VALUES ('old', '{}'), ('older', '{}')"))
        db.execute(
            text(
                "INSERT INTO booking.conference_seats (conference_id, name, name_key, start_at, end_at, slots) VALUES"
                " (1, 'Before', 'before', '2030-01-01', '2030-01-02', 5)"
            )
        )
        db.execute(
            text("INSERT INTO booking.webhooks (url, conference_id, secret) VALUES ('http://a.example/', 1, 's')")
        )
        db.execute(text("SELECT booking.book('old', 'before', NULL, '2029-01-01', false)"))
        db.execute(text("SELECT booking.book('older', 'before', NULL, '2029-01-01', false)"))
        db.execute(text("SELECT set_config('booking.change_reason', 'conference_started', true)"))
        db.execute(text("UPDATE booking.bookings SET status = 'CANCELED' WHERE user_id = 'older'"))

    upgrade()

    with engine.begin() as db:
        history = db.execute(
            text("SELECT reason, actor_subject, actor_role FROM booking.booking_events ORDER BY sequence")
        ).all()
        # A person's own changes were an attendee's, the only caller there was; the rest the system's.
        assert [tuple(row) for row in history] == [
            ("user", None, "attendee"),
            ("user", None, "attendee"),
            ("conference_started", None, "system"),
        ]
        assert db.execute(text("SELECT subject FROM booking.users WHERE user_id = 'old'")).scalar() is None
        assert db.execute(text("SELECT owner_subject FROM booking.conference_seats")).scalar() is None
        db.execute(text("INSERT INTO booking.users (user_id, topics, subject) VALUES ('new', '{}', 'sub-1')"))

    def book(user: str, for_subject: str | None, actor: str | None, role: str) -> str:
        with engine.begin() as db:
            return db.execute(
                text(
                    "SELECT outcome FROM booking.book(:user, 'before', NULL, '2029-01-01', false, :for, :actor, :role)"
                ),
                {"user": user, "for": for_subject, "actor": actor, "role": role},
            ).scalar_one()

    # A user made before belongs to no subject: only an admin books for it.
    assert book("older", "sub-1", "sub-1", "attendee") == "NOT_YOURS"
    assert book("older", None, "root", "admin") == "BOOKED"
    assert book("new", "sub-1", "sub-1", "attendee") == "BOOKED"
    with engine.begin() as db:
        latest = db.execute(
            text("SELECT actor_subject, actor_role FROM booking.booking_events ORDER BY sequence DESC LIMIT 2")
        ).all()
        assert [tuple(row) for row in latest] == [("sub-1", "attendee"), ("root", "admin")]
        # A subscription made before has no owner: nobody can say what it may read, so it gets nothing
        # more than the deliveries of the three changes before.
        assert db.execute(text("SELECT count(*) FROM booking.webhook_deliveries")).scalar() == 3
        with pytest.raises(sqlalchemy.exc.IntegrityError, match="users_by_subject"):
            db.execute(text("INSERT INTO booking.users (user_id, topics, subject) VALUES ('again', '{}', 'sub-1')"))
