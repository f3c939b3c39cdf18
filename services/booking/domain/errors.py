"""What the booking service refuses, with stable codes."""

from confbook_common.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound
from confbook_common.validation import shown


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no user {shown(user_id)}")


class ConferenceNotFound(NotFound):
    code = "CONFERENCE_NOT_FOUND"

    def __init__(self, key: str | int) -> None:
        super().__init__(f"no conference {shown(key) if isinstance(key, str) else key}")


class BookingNotFound(NotFound):
    code = "BOOKING_NOT_FOUND"

    def __init__(self, booking_id: int) -> None:
        super().__init__(f"no booking {booking_id}")


class UserExists(AlreadyExists):
    code = "USER_EXISTS"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {shown(user_id)} already exists")


class SubjectHasUser(AlreadyExists):
    code = "SUBJECT_HAS_USER"

    def __init__(self) -> None:
        super().__init__("this token's subject already has a user; a subject has one user")


class NotYourUser(Forbidden):
    """Booking for a user the caller's subject did not create, whether or not it exists (so that
    which users exist cannot be learned this way)."""

    def __init__(self) -> None:
        super().__init__("a booking can be made only for the user this token's subject created")


class NotConferenceOwner(Forbidden):
    """The conference is public, so this is no 404: only its owner or an admin may do this."""

    def __init__(self, conference: str, what: str) -> None:
        super().__init__(f"only the owner of {shown(conference)} or an admin may {what}")


class AlreadyBooked(Conflict):
    code = "ALREADY_BOOKED"

    def __init__(self, user_id: str, conference: str) -> None:
        super().__init__(f"user {shown(user_id)} already has an active booking for {shown(conference)}")


class OverlappingBooking(Conflict):
    code = "OVERLAPPING_BOOKING"

    def __init__(self, conference: str, other: str) -> None:
        super().__init__(f"{shown(conference)} overlaps {shown(other)}, which this user has a confirmed booking for")


class ConferenceStarted(Conflict):
    code = "CONFERENCE_STARTED"

    def __init__(self, conference: str) -> None:
        super().__init__(f"{shown(conference)} has already started")


class BookingNotPending(Conflict):
    code = "BOOKING_NOT_PENDING"

    def __init__(self, booking_id: int, status: str) -> None:
        super().__init__(f"booking {booking_id} is {status}; only a CONFIRMATION_PENDING booking can be confirmed")


class ConfirmationExpired(Conflict):
    code = "CONFIRMATION_EXPIRED"

    def __init__(self, booking_id: int) -> None:
        super().__init__(f"the confirmation deadline of booking {booking_id} has passed")


class BookingAlreadyCanceled(Conflict):
    code = "BOOKING_ALREADY_CANCELED"

    def __init__(self, booking_id: int) -> None:
        super().__init__(f"booking {booking_id} is already canceled")


class ConferenceNotStarted(Conflict):
    code = "CONFERENCE_NOT_STARTED"

    def __init__(self, conference: str) -> None:
        super().__init__(f"{shown(conference)} has not started yet")


class SlotsBelowHeld(Conflict):
    code = "SLOTS_BELOW_HELD"

    def __init__(self, conference: str, slots: int, held: int) -> None:
        super().__init__(
            f"{shown(conference)} cannot have {slots} slots: {held} seats are held (CONFIRMED or CONFIRMATION_PENDING)"
        )


class WebhookNotFound(NotFound):
    code = "WEBHOOK_NOT_FOUND"

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"no webhook {shown(webhook_id)}")


class TooManyWebhooks(Conflict):
    code = "TOO_MANY_WEBHOOKS"

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} webhooks may exist; delete one first")


class UnknownEvent(InvalidInput):
    code = "UNKNOWN_EVENT"

    def __init__(self, booking_id: int, event_id: str) -> None:
        super().__init__("after_event_id", f"{shown(event_id)} is not an event of booking {booking_id}")
