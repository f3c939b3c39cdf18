"""Timestamps on the wire: "2024-06-15 09:00:00" or ISO 8601 in (no zone = UTC), ISO 8601 UTC with Z out."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from confbook_common.timestamps import from_timestamp

_ACCEPTED = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?")


def parse(text: str) -> datetime:
    """Raise ValueError unless `text` is a date and time of day in one of the accepted forms."""
    if not _ACCEPTED.fullmatch(text):
        raise ValueError('expected a time like "2024-06-15 09:00:00" or "2024-06-15T09:00:00Z"')
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_utc(stamp: Timestamp) -> str:
    return from_timestamp(stamp).strftime("%Y-%m-%dT%H:%M:%SZ")
