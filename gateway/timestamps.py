"""Timestamps on the wire: "2024-06-15 09:00:00" or ISO 8601 in (no zone = UTC), ISO 8601 UTC with Z out."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from confbook_common.timestamps import format_utc

__all__ = ["MAX_LENGTH", "format_utc", "parse"]

# The forms accepted, as the OpenAPI document states them (a JSON Schema pattern, so [0-9] rather than \d).
PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
_ACCEPTED = re.compile(PATTERN, re.ASCII)
# The longest text _ACCEPTED matches: "2024-06-15T09:00:00.123456+02:00".
MAX_LENGTH = 32


def parse(text: str) -> datetime:
    """Raise ValueError unless `text` is a date and time of day in one of the accepted forms."""
    if not _ACCEPTED.fullmatch(text):
        raise ValueError('expected a time like "2024-06-15 09:00:00" or "2024-06-15T09:00:00Z"')
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # A zone near either end of the calendar can carry the time past it (OverflowError).
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        # Python's own messages name its internals ("offset must be a timedelta ..."): not for a person.
        raise ValueError("is not a real date and time (check the day, the hour and the zone offset)") from None
