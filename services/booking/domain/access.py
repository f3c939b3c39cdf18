"""Who may do what with the booking service's data (CONTRACT.md, "Who may do what"), in one place.

Pure decisions over the verified caller and the subjects the data names: the subject a user
belongs to (the one whose token created it) and a conference's owner (the one whose token
created it). A subject of None (data made before there were owners) matches no caller: only
an admin reaches it. What a caller may not see answers exactly as what does not exist, so
that ids cannot be probed; what is public (a conference) answers Forbidden.

The handlers apply these; two rules are also stated in SQL, where they cost no round trip:
whose user a booking may be made for (`booking.book()`, `booking_for_subject` below) and which
events a webhook receives (`booking.record_booking_event()`, `webhook_sees_everything`).
"""

from __future__ import annotations

from confbook_common.auth.caller import Caller


def may_read_user(caller: Caller, user_subject: str | None) -> bool:
    """A user, its bookings and its recommendations: its own subject, or an admin."""
    return caller.is_admin or _same(caller, user_subject)


def booking_for_subject(caller: Caller) -> str | None:
    """The subject whose user a new booking must be for: the caller's own; None (any user) for an admin."""
    return None if caller.is_admin else caller.subject


def may_book_for(caller: Caller, user_subject: str | None) -> bool:
    """What `booking.book()` decides from booking_for_subject(), said in Python."""
    required = booking_for_subject(caller)
    return required is None or required == user_subject


def may_see_booking(caller: Caller, *, user_subject: str | None, owner_subject: str | None) -> bool:
    """Read, watch, confirm or cancel a booking: its user's subject, the conference's owner, an admin."""
    return caller.is_admin or _same(caller, user_subject) or _same(caller, owner_subject)


def is_organizers_cancellation(caller: Caller, *, user_subject: str | None) -> bool:
    """A cancellation by anyone but the booking's own user (its conference's owner, an admin)."""
    return not _same(caller, user_subject)


def may_manage_conference(caller: Caller, owner_subject: str | None) -> bool:
    """Change a conference's capacity, list its bookings: its owner, or an admin."""
    return caller.is_admin or _same(caller, owner_subject)


def webhook_sees_everything(caller: Caller) -> bool:
    """A webhook delivers what its creator may read: everything, if an admin created it; otherwise
    the bookings of the creator's own user and of the conferences it owns."""
    return caller.is_admin


def _same(caller: Caller, subject: str | None) -> bool:
    return subject is not None and subject == caller.subject
