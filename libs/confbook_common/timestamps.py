"""Conversions between protobuf Timestamps and timezone-aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def to_timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_utc(stamp: Timestamp) -> str:
    """ISO 8601 UTC to the second, with Z: how every time goes out."""
    return from_timestamp(stamp).strftime("%Y-%m-%dT%H:%M:%SZ")
