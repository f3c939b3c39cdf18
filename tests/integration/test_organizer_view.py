"""The organizer's view of a conference's bookings, on the real booking schema: who may see it, its
order (confirmed, offered, then the line in its order), one status at a time, and its pages."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from confbook.booking.v1 import booking_pb2
from confbook_common.errors import InvalidInput
from services.booking.domain import listing
from services.booking.domain.errors import ConferenceNotFound, NotConferenceOwner
from services.booking.domain.model import Status
from services.booking.entrypoints.grpc_servicer import BookingServicer
from services.booking.service_layer import handlers
from tests.integration.callers import ADMIN, CALLERS, ORGANIZER, attendee, call_as, organizer, own_booking

WINDOW = timedelta(minutes=30)


@pytest.fixture
def now(tomorrow):
    return tomorrow - timedelta(days=1)


@pytest.fixture
def busy(uow, directory, new_user, tomorrow, now):
    """A conference of ORGANIZER's with a booking in every state, the line out of booking order.

    Three seats, six bookings: 1 and 2 cancel, which offers their seats to 4 and 5; 5's offer
    expires, which sends it to the end of the line, behind 6.
    """
    conference = directory.add(start=tomorrow, slots=3)
    users = [new_user() for _ in range(6)]
    ids = [own_booking(uow, directory, user, conference, now).booking.booking_id for user in users]
    for first in ids[:2]:
        handlers.cancel(uow(), first, now, ADMIN)
        handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)
    handlers.expire_offer(uow(), ids[4], now + WINDOW)
    return conference, ids


def view(uow, directory, conference, *, caller=ORGANIZER, status=None, after=None, page_size=50):
    return handlers.list_conference_bookings(
        uow(),
        directory,
        conference_name=conference.name,
        status=status,
        after=after,
        page_size=page_size,
        caller=caller,
    )


def shown(page):
    return [(v.booking.booking_id, v.booking.status, v.waitlist_position) for v in page.views]


def pages(uow, directory, conference, page_size, status=None):
    """Every page, following each page's token as a client does."""
    found, token = [], ""
    while True:
        after = listing.position_after(token, listing.statuses_listed(status))
        page = view(uow, directory, conference, status=status, after=after, page_size=page_size)
        found.append(shown(page))
        token = page.next_page_token
        if not token:
            return found


def test_the_owner_sees_confirmed_then_offered_then_the_line_in_its_order(uow, directory, busy):
    conference, ids = busy
    page = view(uow, directory, conference)
    assert shown(page) == [
        (ids[2], Status.CONFIRMED, None),
        (ids[3], Status.CONFIRMATION_PENDING, None),
        (ids[5], Status.WAITLISTED, 1),
        (ids[4], Status.WAITLISTED, 2),  # back at the end after its offer expired
    ]
    assert page.conference.name == conference.name
    assert page.next_page_token == ""
    assert shown(view(uow, directory, conference, caller=ADMIN)) == shown(page)


def test_one_status_at_a_time_canceled_too(uow, directory, busy):
    conference, ids = busy
    assert [row[0] for row in shown(view(uow, directory, conference, status=Status.WAITLISTED))] == [ids[5], ids[4]]
    assert [row[0] for row in shown(view(uow, directory, conference, status=Status.CANCELED))] == ids[:2]
    assert [row[0] for row in shown(view(uow, directory, conference, status=Status.CONFIRMATION_PENDING))] == [ids[3]]
    assert [row[0] for row in shown(view(uow, directory, conference, status=Status.CONFIRMED))] == [ids[2]]


@pytest.mark.parametrize("page_size", [1, 2, 3, 4])
def test_pages_follow_one_another_to_the_end(uow, directory, busy, page_size):
    conference, _ = busy
    everything = shown(view(uow, directory, conference))
    found = pages(uow, directory, conference, page_size)
    assert [row for page in found for row in page] == everything
    assert all(len(page) == page_size for page in found[:-1])
    assert 0 < len(found[-1]) <= page_size
    canceled = pages(uow, directory, conference, 1, Status.CANCELED)
    assert [row for page in canceled for row in page] == shown(view(uow, directory, conference, status=Status.CANCELED))


def test_a_page_starts_where_the_last_ended_whatever_changed_meanwhile(uow, directory, new_user, busy, now):
    conference, ids = busy
    first = view(uow, directory, conference, page_size=3)
    assert [row[0] for row in shown(first)] == [ids[2], ids[3], ids[5]]
    handlers.cancel(uow(), ids[2], now, ORGANIZER)  # one of the first page leaves
    late = own_booking(uow, directory, new_user(), conference, now).booking.booking_id  # one joins the line

    after = listing.position_after(first.next_page_token, listing.ACTIVE_ORDER)
    second = view(uow, directory, conference, after=after, page_size=3)
    assert shown(second) == [(ids[4], Status.WAITLISTED, 2), (late, Status.WAITLISTED, 3)]
    assert second.next_page_token == ""


def test_only_the_owner_or_an_admin_sees_the_bookings_of_a_conference(uow, directory, busy, tomorrow):
    conference, _ = busy
    for caller in (organizer("oscar"), attendee("a-stranger")):
        with pytest.raises(NotConferenceOwner) as refused:
            view(uow, directory, conference, caller=caller)
        assert refused.value.code == "FORBIDDEN"
    with pytest.raises(ConferenceNotFound):
        view(uow, directory, SimpleNamespace(name="No Such Conference"))
    never_copied = directory.add(start=tomorrow, slots=2)  # copied on first sight, as a booking would
    assert view(uow, directory, never_copied).views == []


# --- over gRPC: the request's fields, and what a malformed one gets ---------------------------


@pytest.fixture
def servicer(uow, directory):
    return BookingServicer(uow, directory, CALLERS)


def listed(servicer, conference, subject="olga", role="organizer", **fields):
    request = booking_pb2.ListConferenceBookingsRequest(conference_name=conference.name.upper(), **fields)
    return servicer.ListConferenceBookings(request, call_as(subject, role))


def test_over_grpc_the_pages_and_the_status_asked_for(servicer, busy):
    conference, ids = busy
    first = listed(servicer, conference, page_size=2)
    assert first.conference_name == conference.name
    assert [booking.booking_id for booking in first.bookings] == [ids[2], ids[3]]
    second = listed(servicer, conference, page_size=2, page_token=first.next_page_token)
    assert [(b.booking_id, b.waitlist_position) for b in second.bookings] == [(ids[5], 1), (ids[4], 2)]
    assert second.next_page_token == ""
    # A token is a position, `<status>_<key>`, as every page token of the API is shaped.
    assert first.next_page_token == f"2_{ids[3]}"
    canceled = listed(servicer, conference, "root", "admin", status=booking_pb2.BOOKING_STATUS_CANCELED)
    assert [booking.status for booking in canceled.bookings] == [booking_pb2.BOOKING_STATUS_CANCELED] * 2
    assert len(listed(servicer, conference, page_size=0).bookings) == 4  # 0: the default, 50


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"page_token": "abc"}, "page_token"),
        ({"page_token": "1_"}, "page_token"),
        ({"page_token": "9_1"}, "page_token"),  # no such status
        ({"page_token": "4_1"}, "page_token"),  # a CANCELED position, in the active bookings' view
        ({"page_token": "1_5", "status": booking_pb2.BOOKING_STATUS_WAITLISTED}, "page_token"),
        ({"page_token": "1_" + "9" * 20}, "page_token"),
        ({"page_size": 101}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"status": 42}, "status"),
    ],
)
def test_a_malformed_request_is_invalid(servicer, busy, fields, field):
    conference, _ = busy
    with pytest.raises(InvalidInput) as refused:
        listed(servicer, conference, **fields)
    assert (refused.value.code, refused.value.field) == ("VALIDATION_ERROR", field)


def test_a_position_past_the_end_is_an_empty_last_page(servicer, busy):
    conference, _ = busy
    page = listed(servicer, conference, page_token=f"3_{2**63 - 1}")
    assert (list(page.bookings), page.next_page_token) == ([], "")
    huge = listed(servicer, conference, page_token="3_" + "9" * 19)  # clamped to the largest key
    assert list(huge.bookings) == []
