"""Bookings and their events as JSON: one shape for GET /booking, the event streams and webhook bodies."""

from __future__ import annotations

from typing import Any

from confbook.booking.v1 import booking_pb2
from confbook_common.timestamps import format_utc


def status_name(status: booking_pb2.BookingStatus.ValueType) -> str:
    return booking_pb2.BookingStatus.Name(status).removeprefix("BOOKING_STATUS_")


def booking_json(booking: booking_pb2.Booking) -> dict[str, Any]:
    return {
        "booking_id": booking.booking_id,
        "status": status_name(booking.status),
        "conference_name": booking.conference_name,
        "user_id": booking.user_id,
        "can_confirm": booking.can_confirm,
        "confirmation_deadline": (
            format_utc(booking.confirmation_deadline) if booking.HasField("confirmation_deadline") else None
        ),
        "waitlist_position": booking.waitlist_position if booking.HasField("waitlist_position") else None,
    }


def event_json(event: booking_pb2.BookingEvent) -> dict[str, Any]:
    """The event body of CONTRACT.md: id, type, occurred_at, data.booking, data.reason, and data.by:
    who caused the change (attendee, organizer or admin: the caller's strongest role; or system)."""
    return {
        "id": event.event_id,
        "type": event.type,
        "occurred_at": format_utc(event.occurred_at),
        "data": {"booking": booking_json(event.booking), "reason": event.reason, "by": event.actor_role},
    }
