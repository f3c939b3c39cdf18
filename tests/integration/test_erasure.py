"""Erasing a user cancels its active bookings as a cancel does and leaves nothing that names it;
an export holds everything there is about it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from confbook.events.v1 import events_pb2
from services.booking.adapters import tables
from services.booking.domain.errors import NotYourUser, UserNotFound
from services.booking.domain.events import ChangeReason
from services.booking.domain.model import Status
from services.booking.service_layer import handlers, webhooks
from tests.integration.callers import admin, attendee

WINDOW = timedelta(hours=1)


def book(uow, directory, user, conference, now, caller=None):
    return handlers.book(
        uow(), directory, user_id=user, conference_name=conference.name, now=now, caller=caller or attendee(user)
    ).booking


def erase(uow, directory, user, now, caller=None):
    return handlers.erase_user(
        uow(), user, now, caller or attendee(user), forget_owner=lambda subject: directory.forget_owner(subject, "")
    )


def released_seats(booking_engine, conference_id):
    with booking_engine.connect() as connection:
        payloads = connection.execute(
            select(tables.outbox.c.payload).where(tables.outbox.c.message_type == "confbook.events.v1.SeatReleased")
        ).scalars()
        return [
            message
            for message in (events_pb2.SeatReleased.FromString(payload) for payload in payloads)
            if message.conference_id == conference_id
        ]


def test_erasing_cancels_active_bookings_as_a_cancel_does_and_keeps_them_under_a_pseudonym(
    uow, booking_engine, directory, new_user, tomorrow
):
    now = tomorrow - timedelta(days=1)
    full, other = directory.add(start=tomorrow, slots=1), directory.add(start=tomorrow + timedelta(days=2), slots=3)
    leaving, waiting = new_user(), new_user()
    seated = book(uow, directory, leaving, full, now)
    line = book(uow, directory, waiting, full, now)
    elsewhere = book(uow, directory, leaving, other, now)
    handlers.cancel(uow(), elsewhere.booking_id, now, attendee(leaving))
    again = book(uow, directory, leaving, other, now)

    erasure = erase(uow, directory, leaving, now)

    assert (erasure.bookings_canceled, erasure.bookings_kept) == (2, 3)
    assert directory.forgotten_owners[-1] == leaving
    # The freed seat is owed to the line at once, as after a cancel.
    assert [each.booking_id for each in released_seats(booking_engine, full.conference_id)] == [seated.booking_id]
    offers = handlers.offer_free_seats(uow(), full.conference_id, now, WINDOW)
    assert [offer.booking_id for offer in offers] == [line.booking_id]
    kept = [handlers.get_booking(uow(), each.booking_id, admin()) for each in (seated, elsewhere, again)]
    assert {view.booking.status for view in kept} == {Status.CANCELED}
    pseudonyms = {view.booking.user_id for view in kept}
    assert len(pseudonyms) == 1 and leaving not in pseudonyms and next(iter(pseudonyms)).startswith("erased")
    [*_, last] = handlers.changes_after(uow(), seated.booking_id, 0)
    assert last.reason is ChangeReason.USER_ERASED
    # Nobody finds the user any more, not even the pseudonym's; a second erasure finds nothing.
    for caller in (attendee(leaving), admin()):
        with pytest.raises(UserNotFound):
            handlers.get_user(uow(), leaving, caller)
        with pytest.raises(UserNotFound):
            handlers.get_user(uow(), next(iter(pseudonyms)), caller)
    with pytest.raises(UserNotFound):
        erase(uow, directory, leaving, now)
    # The subject may start again, even with the same user id.
    handlers.create_user(uow(), leaving, ["AI"], attendee(leaving))
    assert handlers.list_user_bookings(uow(), leaving, attendee(leaving)) == []


def test_someone_elses_user_cannot_be_erased_or_exported(uow, directory, new_user, tomorrow):
    owner, stranger = new_user(), new_user()
    for attempt in (
        lambda: erase(uow, directory, owner, tomorrow, attendee(stranger)),
        lambda: handlers.export_user(uow(), owner, attendee(stranger)),
    ):
        with pytest.raises(UserNotFound):
            attempt()
    assert handlers.get_user(uow(), owner, attendee(owner)).user_id == owner
    assert erase(uow, directory, owner, tomorrow, admin()).bookings_kept == 0


def test_an_export_holds_the_user_its_bookings_with_their_history_and_its_webhooks(uow, directory, new_user, tomorrow):
    now = tomorrow - timedelta(days=1)
    conference = directory.add(start=tomorrow, slots=1)
    user = new_user()
    booking = book(uow, directory, user, conference, now)
    handlers.cancel(uow(), booking.booking_id, now, attendee(user))
    hook = webhooks.create_webhook(
        uow(),
        directory,
        url="https://example.com/hook",
        event_types=None,
        conference_name=None,
        refuse_internal_addresses=False,
        caller=attendee(user),
    )
    data = handlers.export_user(uow(), user, attendee(user))
    assert data.user.user_id == user and data.user.topics == ("AI",)
    [(view, history)] = data.bookings
    assert view.booking.booking_id == booking.booking_id
    assert [event.view.booking.status for event in history] == [Status.CONFIRMED, Status.CANCELED]
    assert [each.webhook_id for each in data.webhooks] == [hook.webhook_id]
    # Erased, its subject's webhooks go with it.
    erase(uow, directory, user, now)
    assert webhooks.list_webhooks(uow(), attendee(user)) == []


def test_a_booking_racing_an_erasure_is_either_refused_or_canceled_by_it(
    uow, booking_engine, directory, new_user, tomorrow
):
    now = tomorrow - timedelta(days=1)
    for _ in range(10):
        conference = directory.add(start=tomorrow, slots=5)
        user = new_user()
        outcomes: list[object] = []
        start = threading.Barrier(2)

        def booking(user=user, conference=conference, outcomes=outcomes, start=start) -> None:
            start.wait()
            try:
                outcomes.append(book(uow, directory, user, conference, now).status)
            except (UserNotFound, NotYourUser) as refused:
                outcomes.append(type(refused))

        racer = threading.Thread(target=booking)
        racer.start()
        start.wait()
        erasure = erase(uow, directory, user, now)
        racer.join()
        with booking_engine.connect() as connection:
            active = connection.execute(
                text("SELECT count(*) FROM booking.bookings WHERE conference_id = :c AND status <> 'CANCELED'"),
                {"c": conference.conference_id},
            ).scalar()
        assert active == 0, outcomes
        assert erasure.bookings_canceled == (1 if outcomes[0] is Status.CONFIRMED else 0)


def test_nothing_in_the_booking_schema_names_an_erased_user(uow, booking_engine, directory, new_user, tomorrow):
    now = tomorrow - timedelta(days=1)
    conference = directory.add(start=tomorrow, slots=1)
    user = new_user()
    book(uow, directory, user, conference, now)
    erase(uow, directory, user, now)
    found = []
    with booking_engine.connect() as connection:
        columns = connection.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'booking' AND data_type IN ('text', 'ARRAY', 'json', 'jsonb', 'bytea')"
            )
        ).all()
        for table, column, data_type in columns:
            as_text = f'"{column}"::text' if data_type != "bytea" else f"encode(\"{column}\", 'escape')"
            hits = connection.execute(
                text(f'SELECT count(*) FROM booking."{table}" WHERE position(:needle IN {as_text}) > 0'),
                {"needle": user},
            ).scalar()
            if hits:
                found.append((table, column, hits))
    assert found == []
