"""A conference and the rules a new one must follow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from confbook_common import validation
from confbook_common.errors import InvalidInput

MAX_DURATION = timedelta(hours=12)


@dataclass(frozen=True)
class NewConference:
    name: str
    location: str
    start: datetime
    end: datetime
    slots: int
    topics: tuple[str, ...]


@dataclass(frozen=True)
class Conference(NewConference):
    conference_id: int
    created_at: datetime
    # The subject whose token created it: who may change it and see its bookings (besides admins).
    # None for a conference created before conferences had owners.
    owner_subject: str | None = None


name_key = validation.conference_name_key
topic_key = validation.topic_key


def interests(topics: Sequence[str]) -> tuple[str, ...]:
    """Validate the topics to find conferences by: 1 to 50, like a user's."""
    if not topics:
        raise InvalidInput("topics", "at least one topic is required")
    return tuple(validation.topics("topics", topics, max_count=validation.USER_TOPICS_MAX))


def new_conference(
    *,
    name: str,
    location: str,
    start: datetime | None,
    end: datetime | None,
    slots: int,
    topics: Sequence[str],
    now: datetime,
) -> NewConference:
    """Validate a request to create a conference; raises InvalidInput naming the first bad field."""
    clean_name = validation.CONFERENCE_NAME("name", name)
    clean_location = validation.LOCATION("location", location)
    if start is None:
        raise InvalidInput("start", "is required")
    if end is None:
        raise InvalidInput("end", "is required")
    validation.moment("start", start)
    validation.moment("end", end)
    if start <= now:
        raise InvalidInput("start", "must be in the future")
    if end <= start:
        raise InvalidInput("end", "must be after start")
    if end - start > MAX_DURATION:
        raise InvalidInput("end", "a conference may last at most 12 hours")
    clean_slots = validation.slots("slots", slots)
    clean_topics = validation.topics("topics", topics, max_count=validation.CONFERENCE_TOPICS_MAX)
    return NewConference(
        name=clean_name,
        location=clean_location,
        start=start,
        end=end,
        slots=clean_slots,
        topics=tuple(clean_topics),
    )
