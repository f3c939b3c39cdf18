"""What the booking service announces again as it starts, found in its database alone (docs/adr/0025)."""

from __future__ import annotations

from datetime import UTC, timedelta

from confbook.events.v1 import events_pb2
from services.booking.domain.model import Status
from services.booking.service_layer import handlers
from tests.integration.callers import ADMIN, attendee
from tests.integration.test_booking_service import book, outbox_events

WINDOW = timedelta(minutes=30)


def status(uow, booking_id):
    return handlers.get_booking(uow(), booking_id, ADMIN).booking.status


def test_free_seats_owed_to_a_line_pending_offers_and_started_lines_are_found_again(uow, directory, new_user, tomorrow):
    later = tomorrow + timedelta(days=1)
    now = tomorrow - timedelta(days=1)
    # A seat freed whose SeatReleased was lost: the line still waits behind a free seat.
    owed = directory.add(start=later, slots=1)
    holder = new_user()
    seat = book(uow, directory, holder, owed, now).booking.booking_id
    book(uow, directory, new_user(), owed, now)
    handlers.cancel(uow(), seat, now, attendee(holder))
    # An offer whose OfferMade was lost: nobody watches its deadline.
    offered = directory.add(start=later, slots=1)
    holder = new_user()
    seat = book(uow, directory, holder, offered, now).booking.booking_id
    head = book(uow, directory, new_user(), offered, now).booking.booking_id
    handlers.cancel(uow(), seat, now, attendee(holder))
    [offer] = handlers.offer_free_seats(uow(), offered.conference_id, now, WINDOW)
    # A conference whose ConferenceStarted was lost: its line is still open after the start.
    started = directory.add(start=tomorrow, slots=1)
    seated = book(uow, directory, new_user(), started, now).booking.booking_id
    waiting = book(uow, directory, new_user(), started, now).booking.booking_id
    released_before = len(outbox_events(uow, events_pb2.SeatReleased, owed.conference_id))
    offers_before = len(outbox_events(uow, events_pb2.OfferMade, offered.conference_id))

    done = handlers.reconcile(uow, tomorrow + timedelta(minutes=1))

    assert done.seats_owed >= 1 and done.offers >= 1 and done.lines_closed >= 1
    [*_, released] = outbox_events(uow, events_pb2.SeatReleased, owed.conference_id)
    assert len(outbox_events(uow, events_pb2.SeatReleased, owed.conference_id)) == released_before + 1
    assert released.reason == events_pb2.SeatReleased.REASON_RECONCILED
    announced = outbox_events(uow, events_pb2.OfferMade, offered.conference_id)
    assert len(announced) == offers_before + 1
    assert offer.offer_deadline is not None
    assert (announced[-1].booking_id, announced[-1].deadline.ToDatetime(UTC)) == (head, offer.offer_deadline)
    assert (status(uow, seated), status(uow, waiting)) == (Status.CONFIRMED, Status.CANCELED)
    # Nothing is owed any more where nothing was lost: the offered conference's seat is held.
    assert len(outbox_events(uow, events_pb2.SeatReleased, offered.conference_id)) == 1
