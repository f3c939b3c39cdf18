"""Every table that grows with traffic loses its rows once their lifetime has passed, and not before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.engine import Engine

from confbook_common.retention import CommonLifetimes, enforce
from confbook_common.timestamps import utc_now
from scripts.sandbox import Infrastructure
from services.booking.adapters import retention, tables
from services.booking.config import BookingLifetimes
from services.booking.domain.model import Conference
from services.booking.service_layer import handlers
from services.waitlist.adapters import retention as waitlist_retention
from services.waitlist.adapters import tables as waitlist_tables
from tests.integration.callers import admin, attendee
from tests.integration.conftest import engine_for

DAYS_30 = timedelta(days=30)
LONG_AGO = timedelta(days=60)
RULES = retention.rules(
    BookingLifetimes(booking_events=DAYS_30, webhook_deliveries=DAYS_30, canceled_bookings=DAYS_30),
    CommonLifetimes(outbox=DAYS_30, inbox=DAYS_30, idempotency_keys=DAYS_30),
)


@pytest.fixture(scope="module")
def waitlist_engine(infrastructure: Infrastructure) -> Iterator[Engine]:
    yield from engine_for(infrastructure, "waitlist")


def sequences_of(engine: Engine, booking_ids: list[int]) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(tables.booking_events.c.sequence)
                .where(tables.booking_events.c.booking_id.in_(booking_ids))
                .order_by(tables.booking_events.c.sequence)
            ).scalars()
        )


def age_events(engine: Engine, booking_ids: list[int], by: timedelta = LONG_AGO) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(tables.booking_events)
            .where(tables.booking_events.c.booking_id.in_(booking_ids))
            .values(occurred_at=tables.booking_events.c.occurred_at - by)
        )


def booked_and_canceled(uow, directory, new_user, tomorrow) -> tuple[Conference, list[int]]:
    """Two bookings of one conference, each with a few events: one CONFIRMED, one CANCELED."""
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    kept_user, gone_user = new_user(), new_user()
    kept = handlers.book(
        uow(), directory, user_id=kept_user, conference_name=conference.name, now=now, caller=attendee(kept_user)
    ).booking.booking_id
    gone = handlers.book(
        uow(), directory, user_id=gone_user, conference_name=conference.name, now=now, caller=attendee(gone_user)
    ).booking.booking_id
    handlers.cancel(uow(), kept, now, attendee(kept_user))
    handlers.offer_free_seats(uow(), conference.conference_id, now, timedelta(hours=1))
    handlers.confirm(uow(), gone, now, attendee(gone_user))
    handlers.cancel(uow(), gone, now, attendee(gone_user))
    return conference, [kept, gone]


def test_expired_events_go_but_each_bookings_latest_stays(booking_engine, uow, directory, new_user, tomorrow):
    _, (first, second) = booked_and_canceled(uow, directory, new_user, tomorrow)
    before = sequences_of(booking_engine, [first, second])
    assert len(before) == 6  # confirmed, canceled; waitlisted, offered, confirmed, canceled
    enforce(booking_engine, RULES, batch=2)
    assert sequences_of(booking_engine, [first, second]) == before  # younger than their lifetime
    age_events(booking_engine, [first, second])
    enforce(booking_engine, RULES, batch=2)
    latest = [
        max(handlers.changes_after(uow(), each, 0), key=lambda event: event.sequence).sequence
        for each in (first, second)
    ]
    assert sequences_of(booking_engine, [first, second]) == sorted(latest)
    # A stream of the booking still starts from its latest event.
    assert handlers.watch_from(uow(), second, None, admin()).latest_event_id is not None


def test_an_event_a_receiver_is_still_owed_is_kept(booking_engine, uow, directory, new_user, tomorrow):
    _, (first, second) = booked_and_canceled(uow, directory, new_user, tomorrow)
    owed = sequences_of(booking_engine, [first])[0]
    with booking_engine.begin() as connection:
        webhook = connection.execute(
            insert(tables.webhooks)
            .values(url="http://127.0.0.1:9/", secret="whsec_x")
            .returning(tables.webhooks.c.webhook_id)
        ).scalar_one()
        connection.execute(insert(tables.webhook_deliveries).values(webhook_id=webhook, event_sequence=owed))
    age_events(booking_engine, [first, second])
    enforce(booking_engine, RULES, batch=500)
    assert owed in sequences_of(booking_engine, [first])
    # Given up on long ago, the delivery goes; then so does the event.
    with booking_engine.begin() as connection:
        connection.execute(
            update(tables.webhook_deliveries)
            .where(tables.webhook_deliveries.c.webhook_id == webhook)
            .values(gave_up_at=utc_now() - LONG_AGO)
        )
    enforce(booking_engine, RULES, batch=500)
    assert owed not in sequences_of(booking_engine, [first])
    with booking_engine.begin() as connection:
        connection.execute(tables.webhooks.delete().where(tables.webhooks.c.webhook_id == webhook))


def test_canceled_bookings_go_with_their_events_once_their_conference_is_long_over(
    booking_engine, uow, directory, new_user, tomorrow
):
    conference, (first, second) = booked_and_canceled(uow, directory, new_user, tomorrow)
    seated_user = new_user()
    now = tomorrow - timedelta(days=1)
    # A third takes the seat the second freed: CONFIRMED bookings stay, whatever the age.
    handlers.offer_free_seats(uow(), conference.conference_id, now, timedelta(hours=1))
    seated = handlers.book(
        uow(), directory, user_id=seated_user, conference_name=conference.name, now=now, caller=attendee(seated_user)
    ).booking.booking_id

    def remaining() -> set[int]:
        with booking_engine.connect() as connection:
            return set(
                connection.execute(
                    select(tables.bookings.c.booking_id).where(
                        tables.bookings.c.booking_id.in_([first, second, seated])
                    )
                ).scalars()
            )

    enforce(booking_engine, RULES, batch=500)
    assert remaining() == {first, second, seated}  # the conference has not even started
    with booking_engine.begin() as connection:
        connection.execute(
            update(tables.conference_seats)
            .where(tables.conference_seats.c.conference_id == conference.conference_id)
            .values(start_at=utc_now() - LONG_AGO - timedelta(hours=2), end_at=utc_now() - LONG_AGO)
        )
    enforce(booking_engine, RULES, batch=1)
    assert remaining() == {seated}
    assert sequences_of(booking_engine, [first, second]) == []
    assert len(handlers.list_user_bookings(uow(), seated_user, attendee(seated_user))) == 1


def test_published_outbox_rows_and_old_idempotency_keys_expire(booking_engine):
    ids = [f"retention-{uuid.uuid4()}" for _ in range(3)]
    key = f"retention-key-{uuid.uuid4()} someone"
    with booking_engine.begin() as connection:
        for message_id, published in zip(ids, (utc_now() - LONG_AGO, utc_now(), None), strict=True):
            connection.execute(
                insert(tables.outbox).values(
                    message_id=message_id,
                    exchange="x",
                    routing_key="r",
                    message_type="t",
                    payload=b"",
                    published_at=published,
                    created_at=utc_now() - LONG_AGO,
                )
            )
        connection.execute(
            insert(tables.idempotency_keys).values(
                key=key, fingerprint="f", response=b"", created_at=utc_now() - LONG_AGO
            )
        )
    enforce(booking_engine, RULES, batch=500)
    with booking_engine.connect() as connection:
        left = connection.execute(
            select(tables.outbox.c.message_id).where(tables.outbox.c.message_id.in_(bindparam("ids", expanding=True))),
            {"ids": ids},
        ).scalars()
        assert sorted(left) == sorted(ids[1:])  # the unpublished one waits to be sent, however old
        assert (
            connection.execute(
                select(tables.idempotency_keys.c.key).where(tables.idempotency_keys.c.key == key)
            ).first()
            is None
        )
        connection.rollback()
    with booking_engine.begin() as connection:
        connection.execute(tables.outbox.delete().where(tables.outbox.c.message_id == ids[2]))


def test_closed_offers_and_handled_message_ids_expire_in_the_waitlist(waitlist_engine):
    rules = waitlist_retention.rules(CommonLifetimes(outbox=DAYS_30, inbox=DAYS_30), DAYS_30)
    first = 10**12 + uuid.uuid4().int % 10**9
    booking_ids = [first, first + 1, first + 2]
    message = f"retention-{uuid.uuid4()}"
    old = utc_now() - LONG_AGO
    with waitlist_engine.begin() as connection:
        for booking_id, state, updated in zip(
            booking_ids, ("CLOSED", "CLOSED", "OPEN"), (old, utc_now(), old), strict=True
        ):
            connection.execute(
                insert(waitlist_tables.offers).values(
                    booking_id=booking_id, conference_id=1, deadline=old, state=state, updated_at=updated
                )
            )
        connection.execute(
            insert(waitlist_tables.processed_messages).values(queue="q", message_id=message, processed_at=old)
        )
    enforce(waitlist_engine, rules, batch=500)
    with waitlist_engine.begin() as connection:
        left = connection.execute(
            select(waitlist_tables.offers.c.booking_id).where(waitlist_tables.offers.c.booking_id.in_(booking_ids))
        ).scalars()
        assert sorted(left) == booking_ids[1:]
        assert (
            connection.execute(
                text("SELECT 1 FROM waitlist.processed_messages WHERE message_id = :m"), {"m": message}
            ).first()
            is None
        )
        connection.execute(waitlist_tables.offers.delete().where(waitlist_tables.offers.c.booking_id.in_(booking_ids)))
