"""The organizer's view of one conference: which bookings, in what order, a page at a time.

The bookings of each status in turn, CONFIRMED, then CONFIRMATION_PENDING, then WAITLISTED (or
those of one status, CANCELED too); each status in its own order: the line by its tickets (its
order, which is FIFO), the others by booking id. A page ends at a position, which the next page
starts after (keyset paging: bookings made or moved meanwhile never shift a page).

A page token is that position as `<status number>_<key>`, so it is one of the tokens
`confbook_common.validation.PAGE_TOKEN` allows (the gateway checks the same rule): the status
number is 1 to 4 in the order above and CANCELED, the key is the booking id, or the ticket in
line. Clients take it as it comes; one whose status this listing does not show is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confbook_common import validation
from confbook_common.errors import InvalidInput
from services.booking.domain.model import Status

DEFAULT_PAGE_SIZE = 50
# Every booking still in play, in the order the organizer reads them.
ACTIVE_ORDER = (Status.CONFIRMED, Status.CONFIRMATION_PENDING, Status.WAITLISTED)
_NUMBERS = {status: number for number, status in enumerate((*ACTIVE_ORDER, Status.CANCELED), start=1)}
_STATUSES = {number: status for status, number in _NUMBERS.items()}


@dataclass(frozen=True)
class Position:
    """Where a booking is in the view: its status, then its key within that status."""

    status: Status
    key: int  # the ticket in line for WAITLISTED, else the booking id


def statuses_listed(status: Status | None) -> tuple[Status, ...]:
    """None (no status asked for): every active one, in order."""
    return ACTIVE_ORDER if status is None else (status,)


def page_size(value: int) -> int:
    """1 to 100; 0 (a field left unset over gRPC) means 50."""
    return validation.page_size("page_size", value) or DEFAULT_PAGE_SIZE


def page_token(position: Position) -> str:
    return f"{_NUMBERS[position.status]}_{position.key}"


def position_after(token: str, statuses: Sequence[Status]) -> Position | None:
    """Where the page of `token` starts after; None for the first page. A token this listing
    could not have given is refused (InvalidInput), as is one of the wrong form."""
    validation.PAGE_TOKEN("page_token", token)
    if not token:
        return None
    number, key = token.split("_")
    status = _STATUSES.get(int(number))
    if status is None or status not in statuses:
        raise InvalidInput("page_token", "is not a page token of this listing (next_page_token of a previous page)")
    return Position(status, min(int(key), validation.INT64_MAX))
