"""A conference and the rules a new one must follow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from confbook_common import validation
from confbook_common.errors import InvalidInput

MAX_NAME_LENGTH = 100
MAX_TOPICS = 10
MAX_DURATION = timedelta(hours=12)
# Far above any venue; keeps counts well inside 32-bit integers.
MAX_SLOTS = 1_000_000


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


name_key = validation.conference_name_key


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
    clean_name = validation.words("name", name, max_length=MAX_NAME_LENGTH)
    clean_location = validation.words("location", location, max_length=MAX_NAME_LENGTH)
    if start is None:
        raise InvalidInput("start", "is required")
    if end is None:
        raise InvalidInput("end", "is required")
    if start <= now:
        raise InvalidInput("start", "must be in the future")
    if end <= start:
        raise InvalidInput("end", "must be after start")
    if end - start > MAX_DURATION:
        raise InvalidInput("end", "a conference may last at most 12 hours")
    if slots <= 0:
        raise InvalidInput("slots", "must be greater than 0")
    if slots > MAX_SLOTS:
        raise InvalidInput("slots", f"must be at most {MAX_SLOTS}")
    clean_topics = validation.topics("topics", topics, max_count=MAX_TOPICS)
    return NewConference(
        name=clean_name,
        location=clean_location,
        start=start,
        end=end,
        slots=slots,
        topics=tuple(clean_topics),
    )
