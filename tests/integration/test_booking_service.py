"""The booking use cases against the real booking schema: states, the line, events in the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from confbook.events.v1 import events_pb2
from services.booking.adapters import tables
from services.booking.domain.errors import (
    AlreadyBooked,
    BookingAlreadyCanceled,
    BookingNotPending,
    ConferenceNotStarted,
    ConferenceStarted,
    ConfirmationExpired,
    OverlappingBooking,
    UserNotFound,
)
from services.booking.domain.model import ExpiryOutcome, Status
from services.booking.service_layer import handlers
from tests.integration.callers import ADMIN, attendee

WINDOW = timedelta(minutes=30)


def outbox_events(uow, message_type, conference_id):
    """Events of one type for one conference that the booking service has queued for publishing."""
    with uow() as unit:
        rows = unit.connection.execute(
            select(tables.outbox.c.payload)
            .where(tables.outbox.c.message_type == message_type.DESCRIPTOR.full_name)
            .order_by(tables.outbox.c.id)
        )
        events = [message_type.FromString(row.payload) for row in rows]
    return [event for event in events if event.conference_id == conference_id]


def book(uow, directory, user, conference, now):
    return handlers.book(
        uow(), directory, user_id=user, conference_name=conference.name, now=now, caller=attendee(user)
    )


def seats_held(uow, conference):
    with uow() as unit:
        return unit.seats.get(conference.conference_id).held


def test_bookings_confirm_until_full_then_join_the_line_in_order(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=2)
    now = tomorrow - timedelta(days=1)
    views = [book(uow, directory, new_user(), conference, now) for _ in range(5)]
    assert [v.booking.status for v in views] == [Status.CONFIRMED] * 2 + [Status.WAITLISTED] * 3
    assert [v.waitlist_position for v in views] == [None, None, 1, 2, 3]
    assert seats_held(uow, conference) == 2


def test_booking_finds_the_conference_by_name_ignoring_case(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow)
    user = new_user()
    view = handlers.book(
        uow(),
        directory,
        user_id=user,
        conference_name=conference.name.upper(),
        now=tomorrow - timedelta(1),
        caller=attendee(user),
    )
    assert view.booking.conference.name == conference.name


def test_an_unknown_user_cannot_book(uow, directory, tomorrow):
    conference = directory.add(start=tomorrow)
    with pytest.raises(UserNotFound):
        handlers.book(uow(), directory, user_id="nobody", conference_name=conference.name, now=tomorrow, caller=ADMIN)


def test_one_active_booking_per_user_and_conference(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    user, now = new_user(), tomorrow - timedelta(days=1)
    first = book(uow, directory, user, conference, now)
    with pytest.raises(AlreadyBooked):
        book(uow, directory, user, conference, now)
    handlers.cancel(uow(), first.booking.booking_id, now, attendee(first.booking.user_id))
    assert book(uow, directory, user, conference, now).booking.status is Status.CONFIRMED


def test_no_booking_overlapping_a_confirmed_one(uow, directory, new_user, tomorrow):
    morning = directory.add(start=tomorrow, hours=3)
    overlapping = directory.add(start=tomorrow + timedelta(hours=2))
    back_to_back = directory.add(start=tomorrow + timedelta(hours=3))
    user, now = new_user(), tomorrow - timedelta(days=1)
    book(uow, directory, user, morning, now)
    with pytest.raises(OverlappingBooking):
        book(uow, directory, user, overlapping, now)
    assert book(uow, directory, user, back_to_back, now).booking.status is Status.CONFIRMED


def test_nothing_is_booked_confirmed_or_canceled_once_the_conference_started(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    holder, waiting = new_user(), new_user()
    before = tomorrow - timedelta(hours=1)
    confirmed = book(uow, directory, holder, conference, before)
    book(uow, directory, waiting, conference, before)
    handlers.cancel(uow(), confirmed.booking.booking_id, before, attendee(confirmed.booking.user_id))
    [offer] = handlers.offer_free_seats(uow(), conference.conference_id, before, WINDOW)

    with pytest.raises(ConferenceStarted):
        book(uow, directory, new_user(), conference, tomorrow)
    with pytest.raises(ConferenceStarted):
        handlers.confirm(uow(), offer.booking_id, tomorrow, attendee(offer.user_id))
    with pytest.raises(ConferenceStarted):
        handlers.cancel(uow(), offer.booking_id, tomorrow, attendee(offer.user_id))


def test_canceling_a_held_seat_releases_it_for_the_line(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    confirmed = book(uow, directory, new_user(), conference, now)
    waiting = book(uow, directory, new_user(), conference, now)

    handlers.cancel(uow(), waiting.booking.booking_id, now, attendee(waiting.booking.user_id))
    assert outbox_events(uow, events_pb2.SeatReleased, conference.conference_id) == []

    canceled = handlers.cancel(uow(), confirmed.booking.booking_id, now, attendee(confirmed.booking.user_id))
    assert canceled.booking.status is Status.CANCELED
    [released] = outbox_events(uow, events_pb2.SeatReleased, conference.conference_id)
    assert released.booking_id == confirmed.booking.booking_id
    assert released.reason == events_pb2.SeatReleased.REASON_CANCELED
    assert seats_held(uow, conference) == 0
    with pytest.raises(BookingAlreadyCanceled):
        handlers.cancel(uow(), confirmed.booking.booking_id, now, attendee(confirmed.booking.user_id))


def test_free_seats_go_to_the_head_of_the_line_in_order(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=2)
    now = tomorrow - timedelta(days=1)
    holders = [book(uow, directory, new_user(), conference, now) for _ in range(2)]
    line = [book(uow, directory, new_user(), conference, now) for _ in range(3)]
    for holder in holders:
        handlers.cancel(uow(), holder.booking.booking_id, now, attendee(holder.booking.user_id))

    offers = handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)

    assert [o.booking_id for o in offers] == [line[0].booking.booking_id, line[1].booking.booking_id]
    assert all(o.status is Status.CONFIRMATION_PENDING and o.offer_deadline == now + WINDOW for o in offers)
    assert handlers.get_booking(uow(), line[2].booking.booking_id, ADMIN).waitlist_position == 1
    made = outbox_events(uow, events_pb2.OfferMade, conference.conference_id)
    assert [event.booking_id for event in made] == [o.booking_id for o in offers]
    assert handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW) == [], "idempotent"
    assert seats_held(uow, conference) == 2


def test_an_offer_never_lasts_past_the_start(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(minutes=5)
    holder = book(uow, directory, new_user(), conference, now)
    book(uow, directory, new_user(), conference, now)
    handlers.cancel(uow(), holder.booking.booking_id, now, attendee(holder.booking.user_id))
    [offer] = handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)
    assert offer.offer_deadline == tomorrow


def test_an_offer_is_confirmed_before_its_deadline_and_not_after(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=2)
    now = tomorrow - timedelta(days=1)
    holders = [book(uow, directory, new_user(), conference, now) for _ in range(2)]
    line = [book(uow, directory, new_user(), conference, now) for _ in range(2)]
    for holder in holders:
        handlers.cancel(uow(), holder.booking.booking_id, now, attendee(holder.booking.user_id))
    first, second = handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)

    confirmed = handlers.confirm(uow(), first.booking_id, now + WINDOW - timedelta(seconds=1), attendee(first.user_id))
    assert confirmed.booking.status is Status.CONFIRMED
    with pytest.raises(BookingNotPending):
        handlers.confirm(uow(), first.booking_id, now, attendee(first.user_id))
    with pytest.raises(ConfirmationExpired):
        handlers.confirm(uow(), second.booking_id, now + WINDOW, attendee(second.user_id))
    assert line[1].booking.booking_id == second.booking_id
    [ended] = outbox_events(uow, events_pb2.OfferEnded, conference.conference_id)
    assert (ended.booking_id, ended.outcome) == (first.booking_id, events_pb2.OfferEnded.OUTCOME_CONFIRMED)


def test_an_expired_offer_goes_to_the_end_of_the_line_and_frees_its_seat(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    holder = book(uow, directory, new_user(), conference, now)
    first, second = (book(uow, directory, new_user(), conference, now) for _ in range(2))
    handlers.cancel(uow(), holder.booking.booking_id, now, attendee(holder.booking.user_id))
    [offer] = handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)
    assert offer.booking_id == first.booking.booking_id

    assert handlers.expire_offer(uow(), offer.booking_id, now + WINDOW / 2) is ExpiryOutcome.NOT_DUE
    assert handlers.expire_offer(uow(), offer.booking_id, now + WINDOW) is ExpiryOutcome.RETURNED_TO_LINE
    assert handlers.expire_offer(uow(), offer.booking_id, now + WINDOW) is ExpiryOutcome.NOT_PENDING

    assert handlers.get_booking(uow(), first.booking.booking_id, ADMIN).waitlist_position == 2
    assert handlers.get_booking(uow(), second.booking.booking_id, ADMIN).waitlist_position == 1
    reasons = [e.reason for e in outbox_events(uow, events_pb2.SeatReleased, conference.conference_id)]
    assert reasons == [events_pb2.SeatReleased.REASON_CANCELED, events_pb2.SeatReleased.REASON_OFFER_EXPIRED]
    [ended] = outbox_events(uow, events_pb2.OfferEnded, conference.conference_id)
    assert (ended.booking_id, ended.outcome) == (offer.booking_id, events_pb2.OfferEnded.OUTCOME_EXPIRED)
    assert seats_held(uow, conference) == 0


def test_confirming_cancels_the_users_overlapping_waiting_and_pending_bookings(uow, directory, new_user, tomorrow):
    main = directory.add(start=tomorrow, hours=4, slots=1)
    waited = directory.add(start=tomorrow + timedelta(hours=1), slots=1)
    offered = directory.add(start=tomorrow + timedelta(hours=2), slots=1)
    elsewhere = directory.add(start=tomorrow + timedelta(hours=4), slots=1)
    user, now = new_user(), tomorrow - timedelta(days=1)
    holders = {c.conference_id: book(uow, directory, new_user(), c, now) for c in (main, waited, offered, elsewhere)}
    on_main = book(uow, directory, user, main, now)
    on_waited = book(uow, directory, user, waited, now)
    on_offered = book(uow, directory, user, offered, now)
    on_elsewhere = book(uow, directory, user, elsewhere, now)
    for conference in (main, offered):
        handlers.cancel(uow(), holders[conference.conference_id].booking.booking_id, now, ADMIN)
        handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)

    handlers.confirm(uow(), on_main.booking.booking_id, now, attendee(on_main.booking.user_id))

    status = {b.booking.booking_id: b.booking.status for b in handlers.list_user_bookings(uow(), user, attendee(user))}
    assert status[on_main.booking.booking_id] is Status.CONFIRMED
    assert status[on_waited.booking.booking_id] is Status.CANCELED
    assert status[on_offered.booking.booking_id] is Status.CANCELED
    assert status[on_elsewhere.booking.booking_id] is Status.WAITLISTED, "back to back is not an overlap"
    [released] = outbox_events(uow, events_pb2.SeatReleased, offered.conference_id)[1:]
    assert released.reason == events_pb2.SeatReleased.REASON_OVERLAP_REMOVED
    [ended] = outbox_events(uow, events_pb2.OfferEnded, offered.conference_id)
    assert (ended.booking_id, ended.outcome) == (on_offered.booking.booking_id, events_pb2.OfferEnded.OUTCOME_CANCELED)
    assert seats_held(uow, offered) == 0


def test_booking_a_free_seat_also_cancels_overlapping_waiting_bookings(uow, directory, new_user, tomorrow):
    full = directory.add(start=tomorrow, slots=1)
    free = directory.add(start=tomorrow + timedelta(hours=1), slots=1)
    user, now = new_user(), tomorrow - timedelta(days=1)
    book(uow, directory, new_user(), full, now)
    waiting = book(uow, directory, user, full, now)
    book(uow, directory, user, free, now)
    assert handlers.get_booking(uow(), waiting.booking.booking_id, ADMIN).booking.status is Status.CANCELED


def test_at_the_start_the_line_and_pending_offers_are_canceled(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    before = tomorrow - timedelta(hours=1)
    holder = book(uow, directory, new_user(), conference, before)
    line = [book(uow, directory, new_user(), conference, before) for _ in range(3)]
    handlers.cancel(uow(), holder.booking.booking_id, before, attendee(holder.booking.user_id))
    handlers.offer_free_seats(uow(), conference.conference_id, before, WINDOW)

    with pytest.raises(ConferenceNotStarted):
        handlers.close_waitlist(uow(), conference.conference_id, before)
    assert handlers.close_waitlist(uow(), conference.conference_id, tomorrow) == 3
    assert handlers.close_waitlist(uow(), conference.conference_id, tomorrow) == 0
    assert {handlers.get_booking(uow(), v.booking.booking_id, ADMIN).booking.status for v in line} == {Status.CANCELED}
    assert seats_held(uow, conference) == 0


def test_the_database_refuses_an_oversold_conference_or_overlapping_confirmations(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    user, now = new_user(), tomorrow - timedelta(days=1)
    booked = book(uow, directory, user, conference, now)
    with uow() as unit, pytest.raises(Exception, match="never_oversold"):
        unit.connection.execute(
            text("UPDATE booking.conference_seats SET seats_held = slots + 1 WHERE conference_id = :id"),
            {"id": conference.conference_id},
        )
    other = directory.add(start=tomorrow + timedelta(minutes=30), slots=1)
    with uow() as unit:
        unit.seats.ensure(other)
        unit.commit()
    with uow() as unit, pytest.raises(Exception, match="no_overlapping_confirmed_bookings"):
        unit.connection.execute(
            text(
                "INSERT INTO booking.bookings (user_id, conference_id, status, during) "
                "SELECT user_id, :other, 'CONFIRMED', during FROM booking.bookings WHERE booking_id = :id"
            ),
            {"other": other.conference_id, "id": booked.booking.booking_id},
        )


class CountingDirectory:
    """The fake conference service, counting how often the booking service asks it."""

    def __init__(self, inner):
        self._inner = inner
        self.asked = 0

    def by_name(self, name):
        self.asked += 1
        return self._inner.by_name(name)

    def by_id(self, conference_id):
        self.asked += 1
        return self._inner.by_id(conference_id)

    def forget_owner(self, subject, authorization):
        self.asked += 1
        return self._inner.forget_owner(subject, authorization)

    def sharing_topics(self, topics):
        self.asked += 1
        return self._inner.sharing_topics(topics)


def test_a_conference_is_copied_once_and_bookings_never_ask_for_it_again(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=2)
    counting = CountingDirectory(directory)
    now = tomorrow - timedelta(days=1)

    availability = handlers.seat_availability(uow(), counting, conference.conference_id)
    for _ in range(3):
        book(uow, counting, new_user(), conference, now)

    assert (availability.slots, availability.open_to_newcomers, availability.waiting) == (2, 2, 0)
    assert counting.asked == 1, "only the first look at the conference asks its owner"
    after = handlers.seat_availability(uow(), counting, conference.conference_id)
    assert (after.held, after.open_to_newcomers, after.waiting) == (2, 0, 1)


def test_a_first_booking_copies_the_conference_itself_when_nobody_looked_before(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    counting = CountingDirectory(directory)
    now = tomorrow - timedelta(days=1)

    first = book(uow, counting, new_user(), conference, now)
    second = book(uow, counting, new_user(), conference, now)

    assert (first.booking.status, second.booking.status, second.waitlist_position) == (
        Status.CONFIRMED,
        Status.WAITLISTED,
        1,
    )
    assert counting.asked == 1


def _transitions(source: str, target: str) -> float:
    labels = {"from_status": source, "to_status": target}
    return REGISTRY.get_sample_value("confbook_booking_transitions_total", labels) or 0.0


def test_transitions_are_counted_once_committed_and_never_for_a_refused_change(uow, directory, new_user, tomorrow):
    conference = directory.add(start=tomorrow, slots=1)
    now = tomorrow - timedelta(days=1)
    before = {
        pair: _transitions(*pair)
        for pair in [
            ("NEW", "CONFIRMED"),
            ("NEW", "WAITLISTED"),
            ("CONFIRMED", "CANCELED"),
            ("WAITLISTED", "CONFIRMATION_PENDING"),
        ]
    }
    holder = book(uow, directory, new_user(), conference, now)
    book(uow, directory, new_user(), conference, now)
    handlers.cancel(uow(), holder.booking.booking_id, now, attendee(holder.booking.user_id))
    with pytest.raises(BookingAlreadyCanceled):
        handlers.cancel(
            uow(), holder.booking.booking_id, now, attendee(holder.booking.user_id)
        )  # rolled back: nothing to count
    handlers.offer_free_seats(uow(), conference.conference_id, now, timedelta(hours=1))
    after = {pair: _transitions(*pair) - count for pair, count in before.items()}
    assert after == {
        ("NEW", "CONFIRMED"): 1,
        ("NEW", "WAITLISTED"): 1,
        ("CONFIRMED", "CANCELED"): 1,
        ("WAITLISTED", "CONFIRMATION_PENDING"): 1,
    }
