"""Which conferences a user is recommended, and in what order."""

from datetime import UTC, datetime, timedelta

import pytest

from confbook_common.errors import InvalidInput
from services.booking.domain.model import Booking, Conference, SeatAvailability, Status
from services.booking.domain.recommendations import (
    Listing,
    matching_topics,
    recommend,
    recommendation_limit,
)

pytestmark = pytest.mark.unit

NOW = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
_ids = iter(range(1, 10_000))


def listing(name: str, topics: tuple[str, ...], *, days: float = 10, hours: float = 2) -> Listing:
    start = NOW + timedelta(days=days)
    conference = Conference(
        conference_id=next(_ids), name=name, start=start, end=start + timedelta(hours=hours), slots=5
    )
    return Listing(conference=conference, location="Berlin", topics=topics, created_at=NOW)


def seats_for(listings: list[Listing], full: frozenset[str] = frozenset()) -> dict[int, SeatAvailability]:
    return {
        each.conference.conference_id: SeatAvailability(
            conference_id=each.conference.conference_id,
            slots=5,
            held=5 if each.conference.name in full else 0,
            open_to_newcomers=0 if each.conference.name in full else 5,
            waiting=0,
        )
        for each in listings
    }


def booking_of(listing_: Listing, status: Status) -> Booking:
    return Booking(
        booking_id=next(_ids),
        user_id="ada",
        conference=listing_.conference,
        status=status,
        offer_deadline=NOW + timedelta(hours=1) if status is Status.CONFIRMATION_PENDING else None,
        created_at=NOW,
        updated_at=NOW,
    )


def names(listings, *, user_topics=("AI", "Python"), bookings=(), full=frozenset(), limit=10, now=NOW):
    found = recommend(
        user_topics=user_topics,
        listings=listings,
        seats=seats_for(listings, full),
        bookings=bookings,
        now=now,
        limit=limit,
    )
    return [each.listing.conference.name for each in found]


def test_matching_topics_ignore_case_and_keep_the_conferences_spelling():
    assert matching_topics(["ai", "DATA science"], ["AI", "Web", "Data Science"]) == ("AI", "Data Science")


def test_more_matching_topics_come_first():
    one = listing("One", ("AI",), days=1)
    two = listing("Two", ("AI", "Python"), days=5)
    assert names([one, two]) == ["Two", "One"]


def test_among_equal_matches_those_with_a_free_seat_come_first():
    full = listing("Full", ("AI",), days=1)
    open_ = listing("Open", ("AI",), days=5)
    assert names([full, open_], full=frozenset({"Full"})) == ["Open", "Full"]


def test_then_the_earlier_start_then_the_name():
    late = listing("Aaa", ("AI",), days=9)
    early_b = listing("Bbb", ("AI",), days=2)
    early_a = listing("aab", ("AI",), days=2)
    assert names([late, early_b, early_a]) == ["aab", "Bbb", "Aaa"]


def test_conferences_sharing_no_topic_are_left_out():
    assert names([listing("Rust", ("Rust",))]) == []


def test_a_conference_that_has_started_is_left_out():
    started = listing("Started", ("AI",), days=-0.01)
    assert names([started]) == []


def test_a_conference_the_user_has_an_active_booking_for_is_left_out_but_not_a_canceled_one():
    waiting, canceled = listing("Waiting", ("AI",)), listing("Canceled", ("AI",), days=20)
    bookings = [booking_of(waiting, Status.WAITLISTED), booking_of(canceled, Status.CANCELED)]
    assert names([waiting, canceled], bookings=bookings) == ["Canceled"]


def test_a_conference_overlapping_a_confirmed_booking_is_left_out():
    confirmed = listing("Confirmed", ("Rust",), days=3)
    overlapping = listing("Overlapping", ("AI",), days=3 + 1 / 24)
    back_to_back = listing("Back to back", ("AI",), days=3 + 2 / 24)
    bookings = [booking_of(confirmed, Status.CONFIRMED)]
    assert names([overlapping, back_to_back], bookings=bookings) == ["Back to back"]


def test_an_overlap_with_a_booking_that_only_waits_or_is_offered_does_not_matter():
    waiting = listing("Waiting", ("Rust",), days=3)
    pending = listing("Pending", ("Rust",), days=4)
    beside_waiting = listing("Beside waiting", ("AI",), days=3 + 1 / 24)
    beside_pending = listing("Beside pending", ("AI",), days=4 + 1 / 24)
    bookings = [booking_of(waiting, Status.WAITLISTED), booking_of(pending, Status.CONFIRMATION_PENDING)]
    assert names([beside_waiting, beside_pending], bookings=bookings) == ["Beside waiting", "Beside pending"]


def test_the_limit_cuts_the_ranked_list():
    listings = [listing(f"C{i}", ("AI",), days=i + 1) for i in range(5)]
    assert names(listings, limit=2) == ["C0", "C1"]


@pytest.mark.parametrize(("given", "expected"), [(0, 10), (1, 1), (100, 100)])
def test_the_limit_is_1_to_100_and_unset_means_10(given, expected):
    assert recommendation_limit(given) == expected


@pytest.mark.parametrize("limit", [-1, 101, 2**31 - 1])
def test_a_limit_out_of_range_names_the_field(limit):
    with pytest.raises(InvalidInput) as refused:
        recommendation_limit(limit)
    assert refused.value.field == "limit"
