"""The waitlist rules end to end: promotion, the confirmation window, expiry, overlaps, the start.

The stack runs with a confirmation window of a few seconds (E2E_WINDOW_SECONDS).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc

from confbook.waitlist.v1 import waitlist_pb2, waitlist_pb2_grpc
from confbook_common.rpc.caller_auth import with_token
from tests.conftest import E2E_WINDOW_SECONDS
from tests.e2e.conftest import admin_token, assert_error
from tests.waiting import eventually

WINDOW = timedelta(seconds=E2E_WINDOW_SECONDS)


def parse(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def full_conference(api, *, waiting, slots=1, **options):
    """A conference whose seats are all confirmed, with `waiting` users in line; returns ids in order."""
    conference = api.create_conference(slots=slots, **options)
    holders = [api.book(conference, api.create_user())["booking_id"] for _ in range(slots)]
    line = [api.book(conference, api.create_user())["booking_id"] for _ in range(waiting)]
    return conference, holders, line


def wait_for_status(api, booking_id, status, timeout=10.0):
    return eventually(lambda: (b := api.booking(booking_id))["status"] == status and b, timeout=timeout)


def test_a_freed_seat_is_offered_to_the_head_of_the_line(api):
    _, [holder], [first, second] = full_conference(api, waiting=2)
    canceled_at = datetime.now(UTC)
    assert api.cancel(holder).status_code == 200

    offer = wait_for_status(api, first, "CONFIRMATION_PENDING")
    assert offer["can_confirm"] is True
    assert offer["waitlist_position"] is None
    deadline = parse(offer["confirmation_deadline"])
    # The window from the offer, shown to the second (truncated).
    assert canceled_at + WINDOW - timedelta(seconds=1) <= deadline <= datetime.now(UTC) + WINDOW
    assert api.booking(second)["waitlist_position"] == 1


def watched_offers(stack, conference_id):
    """The waitlist service's view: {booking_id: state} of the offers it knows for a conference."""
    with with_token(grpc.insecure_channel(stack.grpc_target("waitlist")), admin_token(stack)) as channel:
        reply = waitlist_pb2_grpc.WaitlistServiceStub(channel).ListOffers(
            waitlist_pb2.ListOffersRequest(conference_id=conference_id, include_closed=True)
        )
    return {offer.booking_id: waitlist_pb2.OfferState.Name(offer.state) for offer in reply.offers}


def test_an_offer_confirmed_within_the_window_holds_the_seat(api, stack):
    conference, [holder], [first] = full_conference(api, waiting=1)
    api.cancel(holder)
    wait_for_status(api, first, "CONFIRMATION_PENDING")
    eventually(lambda: watched_offers(stack, conference["conference_id"]) == {first: "OFFER_STATE_OPEN"})

    response = api.confirm(first)
    assert response.status_code == 200, response.text
    confirmed = response.json()
    assert (confirmed["status"], confirmed["can_confirm"], confirmed["confirmation_deadline"]) == (
        "CONFIRMED",
        False,
        None,
    )
    eventually(lambda: watched_offers(stack, conference["conference_id"]) == {first: "OFFER_STATE_CLOSED"})
    time.sleep(E2E_WINDOW_SECONDS + 0.5)
    assert api.status(first) == "CONFIRMED", "a confirmed offer does not expire"
    assert api.conference(conference["name"])["available_slots"] == 0


def test_an_unconfirmed_offer_goes_to_the_end_of_the_line_and_the_seat_moves_on(api):
    _, [holder], [first, second, third] = full_conference(api, waiting=3)
    api.cancel(holder)
    wait_for_status(api, first, "CONFIRMATION_PENDING")

    expired = wait_for_status(api, first, "WAITLISTED", timeout=E2E_WINDOW_SECONDS + 5)
    assert expired["confirmation_deadline"] is None
    # The seat moves on at once; until it has, `first` may still be seen third, behind `second`.
    wait_for_status(api, second, "CONFIRMATION_PENDING")
    assert api.booking(first)["waitlist_position"] == 2, "behind everyone who was waiting"
    assert api.booking(third)["waitlist_position"] == 1
    assert_error(api.confirm(first), 409, "BOOKING_NOT_PENDING")


def test_a_confirmation_after_the_deadline_is_refused_even_before_the_expiry_has_run(api, stack):
    _, [holder], [first] = full_conference(api, waiting=1)
    api.cancel(holder)
    offer = wait_for_status(api, first, "CONFIRMATION_PENDING")
    stack.pause("waitlist")  # no timer or sweeper can act
    try:
        # The deadline is shown truncated to the second: the real one is within the next second.
        time.sleep(max(0.0, (parse(offer["confirmation_deadline"]) - datetime.now(UTC)).total_seconds()) + 1.2)
        assert api.booking(first)["can_confirm"] is False
        assert_error(api.confirm(first), 409, "CONFIRMATION_EXPIRED")
    finally:
        stack.resume("waitlist")

    def offered_again():
        current = api.booking(first)
        return (
            current["status"] == "CONFIRMATION_PENDING"
            and current["confirmation_deadline"] != (offer["confirmation_deadline"])
        )

    # Once the waitlist service runs again the offer expires; alone in line, it is offered anew.
    eventually(offered_again)


def test_canceling_a_pending_offer_passes_the_seat_on(api):
    _, [holder], [first, second] = full_conference(api, waiting=2)
    api.cancel(holder)
    wait_for_status(api, first, "CONFIRMATION_PENDING")
    assert api.cancel(first).json()["status"] == "CANCELED"
    wait_for_status(api, second, "CONFIRMATION_PENDING")


def test_booking_a_free_seat_cancels_the_users_overlapping_waiting_bookings(api):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    full, _, _ = full_conference(api, waiting=0, start=start)
    free = api.create_conference(start=start + timedelta(hours=1))
    user = api.create_user()
    waiting = api.book(full, user)
    assert waiting["status"] == "WAITLISTED"

    assert api.book(free, user)["status"] == "CONFIRMED"
    assert api.status(waiting["booking_id"]) == "CANCELED"


def test_confirming_an_offer_cancels_overlapping_bookings_and_passes_their_seats_on(api):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=11)
    first_choice, [holder_a], _ = full_conference(api, waiting=0, start=start)
    second_choice, [holder_b], _ = full_conference(api, waiting=0, start=start + timedelta(hours=1))
    user = api.create_user()
    mine_a = api.book(first_choice, user)["booking_id"]
    mine_b = api.book(second_choice, user)["booking_id"]
    behind_me_on_b = api.book(second_choice, api.create_user())["booking_id"]
    api.cancel(holder_a)
    api.cancel(holder_b)
    wait_for_status(api, mine_a, "CONFIRMATION_PENDING")
    wait_for_status(api, mine_b, "CONFIRMATION_PENDING")

    assert api.confirm(mine_a).json()["status"] == "CONFIRMED"

    assert api.status(mine_b) == "CANCELED"
    wait_for_status(api, behind_me_on_b, "CONFIRMATION_PENDING")


def test_at_the_start_waiting_and_pending_bookings_are_canceled(api):
    start = datetime.now(UTC) + timedelta(seconds=4)
    conference, [holder, keeper], [first, second] = full_conference(api, waiting=2, slots=2, start=start)
    api.cancel(holder)
    offer = wait_for_status(api, first, "CONFIRMATION_PENDING")
    assert parse(offer["confirmation_deadline"]) <= start.replace(microsecond=0) + timedelta(seconds=1)

    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
    eventually(lambda: {api.status(first), api.status(second)} == {"CANCELED"}, timeout=4)
    assert api.status(keeper) == "CONFIRMED"
    assert_error(api.confirm(first), 409)
    assert_error(api.cancel(keeper), 409, "CONFERENCE_STARTED")
    assert api.conference(conference["name"])["waitlist_length"] == 0


def test_many_seats_freed_at_once_are_offered_in_line_order(api):
    _, holders, line = full_conference(api, waiting=8, slots=5)
    with ThreadPoolExecutor(max_workers=5) as pool:
        assert all(r.status_code == 200 for r in pool.map(api.cancel, holders))

    for booking_id in line[:5]:
        wait_for_status(api, booking_id, "CONFIRMATION_PENDING")
    assert [api.booking(b)["waitlist_position"] for b in line[5:]] == [1, 2, 3]


def test_parallel_bookings_get_distinct_places_and_never_oversell(api):
    conference = api.create_conference(slots=3)
    users = [api.create_user() for _ in range(30)]
    with ThreadPoolExecutor(max_workers=15) as pool:
        results = list(pool.map(lambda user: api.book(conference, user), users))

    confirmed = [r for r in results if r["status"] == "CONFIRMED"]
    waiting = sorted(r["waitlist_position"] for r in results if r["status"] == "WAITLISTED")
    assert len(confirmed) == 3
    assert waiting == list(range(1, 28))
    found = api.conference(conference["name"])
    assert (found["available_slots"], found["waitlist_length"]) == (0, 27)
