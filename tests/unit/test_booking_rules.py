"""The booking rules: who gets a seat, offers and their deadlines, and the allowed moves."""

from datetime import UTC, datetime, timedelta

import pytest

from services.booking.domain.model import (
    Booking,
    Conference,
    ExpiryOutcome,
    IllegalTransition,
    Seats,
    Status,
    expiry_outcome,
    offer_deadline,
    seat_change,
)

pytestmark = pytest.mark.unit

START = datetime(2030, 6, 15, 9, 0, tzinfo=UTC)
CONFERENCE = Conference(conference_id=1, name="PyCon", start=START, end=START + timedelta(hours=8), slots=2)


def at(hours: float, start: datetime = START) -> Conference:
    return Conference(
        conference_id=2,
        name="Other",
        start=start + timedelta(hours=hours),
        end=start + timedelta(hours=hours + 2),
        slots=1,
    )


def booking(status: Status, deadline: datetime | None = None) -> Booking:
    return Booking(
        booking_id=7,
        user_id="ada",
        conference=CONFERENCE,
        status=status,
        offer_deadline=deadline,
        created_at=START,
        updated_at=START,
    )


def test_a_newcomer_may_take_a_free_seat_when_nobody_waits():
    assert Seats(CONFERENCE, held=1, waiting=0).open_to_newcomers == 1


def test_nothing_is_open_when_the_conference_is_full():
    assert Seats(CONFERENCE, held=2, waiting=0).open_to_newcomers == 0


def test_a_freed_seat_belongs_to_the_head_of_the_line_not_to_a_newcomer():
    assert Seats(CONFERENCE, held=1, waiting=3).open_to_newcomers == 0


def test_overlap_means_each_starts_before_the_other_ends():
    assert CONFERENCE.overlaps(at(7))
    assert CONFERENCE.overlaps(at(-1))
    assert not CONFERENCE.overlaps(at(8)), "back to back is not an overlap"
    assert not CONFERENCE.overlaps(at(-2)), "ending as the other starts is not an overlap"


def test_an_offer_lasts_the_window():
    now = START - timedelta(days=1)
    assert offer_deadline(now, timedelta(hours=1), CONFERENCE) == now + timedelta(hours=1)


def test_an_offer_never_outlasts_the_conference_start():
    now = START - timedelta(minutes=10)
    assert offer_deadline(now, timedelta(hours=1), CONFERENCE) == START


def test_seat_changes_follow_the_seat_holding_states():
    assert seat_change(None, Status.CONFIRMED) == 1
    assert seat_change(None, Status.WAITLISTED) == 0
    assert seat_change(Status.WAITLISTED, Status.CONFIRMATION_PENDING) == 1
    assert seat_change(Status.CONFIRMATION_PENDING, Status.CONFIRMED) == 0
    assert seat_change(Status.CONFIRMATION_PENDING, Status.WAITLISTED) == -1
    assert seat_change(Status.CONFIRMED, Status.CANCELED) == -1
    assert seat_change(Status.WAITLISTED, Status.CANCELED) == 0


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (Status.CANCELED, Status.CONFIRMED),
        (Status.CANCELED, Status.WAITLISTED),
        (Status.CONFIRMED, Status.WAITLISTED),
        (Status.CONFIRMED, Status.CONFIRMATION_PENDING),
        (Status.WAITLISTED, Status.CONFIRMED),
    ],
)
def test_moves_outside_the_state_machine_are_refused(source, target):
    with pytest.raises(IllegalTransition):
        booking(source, START if source is Status.CONFIRMATION_PENDING else None).require_move(target)


def test_can_confirm_only_while_pending_and_before_the_deadline():
    deadline = START - timedelta(hours=1)
    pending = booking(Status.CONFIRMATION_PENDING, deadline)
    assert pending.can_confirm(deadline - timedelta(seconds=1))
    assert not pending.can_confirm(deadline)
    assert not booking(Status.WAITLISTED).can_confirm(deadline - timedelta(hours=1))


def test_an_expiry_timer_firing_early_or_twice_changes_nothing():
    deadline = START - timedelta(hours=1)
    assert expiry_outcome(booking(Status.CONFIRMATION_PENDING, deadline), deadline - timedelta(seconds=1)) is (
        ExpiryOutcome.NOT_DUE
    )
    assert expiry_outcome(booking(Status.WAITLISTED), deadline) is ExpiryOutcome.NOT_PENDING
    assert expiry_outcome(booking(Status.CONFIRMED), deadline) is ExpiryOutcome.NOT_PENDING


def test_an_expired_offer_goes_back_to_the_line_before_the_start_and_is_canceled_after():
    deadline = START - timedelta(hours=1)
    pending = booking(Status.CONFIRMATION_PENDING, deadline)
    assert expiry_outcome(pending, deadline) is ExpiryOutcome.RETURNED_TO_LINE
    assert expiry_outcome(booking(Status.CONFIRMATION_PENDING, START), START) is ExpiryOutcome.CANCELED
