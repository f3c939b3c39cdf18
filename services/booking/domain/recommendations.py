"""Which conferences to recommend to a user from the user's interests, and in what order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from confbook_common import validation
from services.booking.domain.model import Booking, Conference, SeatAvailability, Status


@dataclass(frozen=True)
class Listing:
    """A conference as the conference service lists it: what a recommendation shows of it."""

    conference: Conference
    location: str
    topics: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class Recommendation:
    listing: Listing
    seats: SeatAvailability
    # The conference's topics the user shares, in the conference's spelling.
    matching_topics: tuple[str, ...]


def recommendation_limit(limit: int) -> int:
    """0 (a field left unset over gRPC) means the default."""
    return validation.recommendation_limit("limit", limit or validation.RECOMMENDATIONS_DEFAULT)


def matching_topics(user_topics: Iterable[str], conference_topics: Sequence[str]) -> tuple[str, ...]:
    interests = {validation.topic_key(topic) for topic in user_topics}
    return tuple(topic for topic in conference_topics if validation.topic_key(topic) in interests)


def recommend(
    *,
    user_topics: Sequence[str],
    listings: Iterable[Listing],
    seats: Mapping[int, SeatAvailability],
    bookings: Iterable[Booking],
    now: datetime,
    limit: int,
) -> list[Recommendation]:
    """The conferences the user could still book that share an interest, best first.

    Left out: those that have started, those the user has an active booking for, and
    those overlapping one of the user's CONFIRMED bookings. Order: more matching
    topics, then a seat open to newcomers, then earlier start, then name.
    """
    active = [booking for booking in bookings if booking.status is not Status.CANCELED]
    booked = {booking.conference.conference_id for booking in active}
    confirmed = [booking.conference for booking in active if booking.status is Status.CONFIRMED]
    found = []
    for listing in listings:
        conference = listing.conference
        shared = matching_topics(user_topics, listing.topics)
        if (
            not shared
            or conference.has_started(now)
            or conference.conference_id in booked
            or any(conference.overlaps(other) for other in confirmed)
        ):
            continue
        found.append(Recommendation(listing, seats[conference.conference_id], shared))
    found.sort(key=_rank)
    return found[:limit]


def _rank(recommendation: Recommendation) -> tuple[int, bool, datetime, str, str]:
    conference = recommendation.listing.conference
    return (
        -len(recommendation.matching_topics),
        recommendation.seats.open_to_newcomers <= 0,
        conference.start,
        validation.conference_name_key(conference.name),
        conference.name,
    )
