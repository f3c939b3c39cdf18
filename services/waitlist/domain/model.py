"""An offer of a seat, as far as the waitlist service needs to know it: whom, and until when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class OfferState(StrEnum):
    OPEN = "OPEN"  # pending: the user may confirm until the deadline; expiry is scheduled
    CLOSED = "CLOSED"  # confirmed, canceled, expired, or ended by the conference start


class ExpiryOutcome(StrEnum):
    """What the booking service did when asked to expire an offer (mirrors its API)."""

    RETURNED_TO_LINE = "RETURNED_TO_LINE"
    CANCELED = "CANCELED"
    NOT_DUE = "NOT_DUE"
    NOT_PENDING = "NOT_PENDING"

    @property
    def ends_offer(self) -> bool:
        # NOT_DUE: the timer fired early (the deadline moved, or clocks differ); keep watching.
        return self is not ExpiryOutcome.NOT_DUE


@dataclass(frozen=True)
class Offer:
    booking_id: int
    conference_id: int
    deadline: datetime
    state: OfferState
