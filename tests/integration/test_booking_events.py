"""Every booking change leaves exactly one event in the booking's history, in its own transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from services.booking.adapters import tables
from services.booking.domain.events import SYSTEM_ACTOR, ChangeReason, EventType
from services.booking.domain.model import Status
from services.booking.service_layer import handlers
from tests.integration.callers import ADMIN, attendee

WINDOW = timedelta(minutes=30)


def book(uow, directory, user, conference, now):
    return handlers.book(
        uow(), directory, user_id=user, conference_name=conference.name, now=now, caller=attendee(user)
    )


def history(uow, booking_id):
    return handlers.changes_after(uow(), booking_id, 0)


def kinds(uow, booking_id):
    return [(event.type, event.reason) for event in history(uow, booking_id)]


def test_a_new_booking_records_its_event_with_the_booking_as_it_was(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    seated = book(uow, directory, new_user(), conference, now).booking.booking_id
    waiting = book(uow, directory, new_user(), conference, now).booking.booking_id
    assert kinds(uow, seated) == [(EventType.CONFIRMED, ChangeReason.USER)]
    [event] = history(uow, waiting)
    assert (event.type, event.reason) == (EventType.WAITLISTED, ChangeReason.USER)
    assert event.view.booking.status is Status.WAITLISTED
    assert event.view.waitlist_position == 1
    assert event.view.booking.conference.name == conference.name


def test_each_move_records_one_event_with_its_reason(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    first_user, second_user = new_user(), new_user()
    first = book(uow, directory, first_user, conference, now).booking.booking_id
    second = book(uow, directory, second_user, conference, now).booking.booking_id
    handlers.cancel(uow(), first, now, attendee(first_user))
    [offer] = handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)
    assert offer.offer_deadline is not None
    handlers.expire_offer(uow(), second, offer.offer_deadline + timedelta(seconds=1))
    handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)
    handlers.confirm(uow(), second, now, attendee(second_user))
    assert kinds(uow, first) == [(EventType.CONFIRMED, ChangeReason.USER), (EventType.CANCELED, ChangeReason.USER)]
    assert kinds(uow, second) == [
        (EventType.WAITLISTED, ChangeReason.USER),
        (EventType.OFFERED, ChangeReason.SEAT_FREED),
        (EventType.WAITLISTED, ChangeReason.OFFER_EXPIRED),
        (EventType.OFFERED, ChangeReason.SEAT_FREED),
        (EventType.CONFIRMED, ChangeReason.USER),
    ]
    offered = history(uow, second)[1]
    assert offered.view.booking.offer_deadline == offer.offer_deadline
    assert offered.view.booking.can_confirm(now)


def test_confirming_records_the_overlapping_cancellations_and_the_start_closes_the_line(
    uow, directory, new_user, tomorrow
):
    user = new_user()
    full = directory.add(start=tomorrow, slots=1)
    beside = directory.add(start=tomorrow + timedelta(minutes=30), slots=1)
    now = tomorrow - timedelta(days=1)
    holder = book(uow, directory, new_user(), full, now).booking.booking_id
    book(uow, directory, new_user(), beside, now)
    waiting_full = book(uow, directory, user, full, now).booking.booking_id
    waiting_beside = book(uow, directory, user, beside, now).booking.booking_id
    handlers.cancel(uow(), holder, now, ADMIN)
    handlers.offer_free_seats(uow(), full.conference_id, now, WINDOW)
    handlers.confirm(uow(), waiting_full, now, attendee(user))
    assert kinds(uow, waiting_beside)[-1] == (EventType.CANCELED, ChangeReason.OVERLAP)

    late_booking = book(uow, directory, new_user(), full, now).booking.booking_id
    handlers.close_waitlist(uow(), full.conference_id, tomorrow)
    assert kinds(uow, late_booking)[-1] == (EventType.CANCELED, ChangeReason.CONFERENCE_STARTED)


def test_a_change_that_rolls_back_leaves_no_event(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    booking_id = book(uow, directory, new_user(), conference, now).booking.booking_id
    with uow() as unit:
        booking = unit.bookings.get(booking_id, lock=True)
        unit.bookings.move(booking, Status.CANCELED, reason=ChangeReason.USER, actor=SYSTEM_ACTOR)
        assert len(unit.events.after(booking_id, 0)) == 2  # seen inside the transaction...
    assert kinds(uow, booking_id) == [(EventType.CONFIRMED, ChangeReason.USER)]  # ...gone with it


def test_the_database_refuses_an_unknown_reason(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    booking_id = book(uow, directory, new_user(), conference, tomorrow - timedelta(days=1)).booking.booking_id
    with uow() as unit, pytest.raises(Exception, match="known_reason"):
        unit.connection.execute(text("SELECT set_config('booking.change_reason', 'whim', true)"))
        unit.connection.execute(
            tables.bookings.update().where(tables.bookings.c.booking_id == booking_id).values(status="CANCELED")
        )


def test_event_ids_are_distinct_and_resuming_starts_after_the_named_event(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    user = new_user()
    booking_id = book(uow, directory, user, conference, now).booking.booking_id
    handlers.cancel(uow(), booking_id, now, attendee(user))
    first, second = history(uow, booking_id)
    assert first.event_id != second.event_id
    resumed = handlers.watch_from(uow(), booking_id, first.event_id, attendee(user))
    assert resumed.view.booking.status is Status.CANCELED
    assert resumed.latest_event_id == second.event_id
    changes = handlers.changes_after(uow(), booking_id, resumed.after_sequence)
    assert [event.event_id for event in changes] == [second.event_id]
    fresh = handlers.watch_from(uow(), booking_id, None, attendee(user))
    assert fresh.latest_event_id == second.event_id
    assert handlers.changes_after(uow(), booking_id, fresh.after_sequence) == []
    with uow() as unit:
        ids = unit.connection.execute(
            select(tables.booking_events.c.event_id).where(tables.booking_events.c.booking_id == booking_id)
        ).scalars()
        assert len(set(ids)) == 2
