"""Who may do what with the booking service's data, and the organizer's view's pages, as pure rules."""

from __future__ import annotations

import math

import pytest

from confbook.booking.v1 import booking_pb2
from confbook_common.auth.caller import Caller, Role
from confbook_common.booking_json import event_json
from confbook_common.errors import InvalidInput
from services.booking.domain import access, listing
from services.booking.domain.events import Actor, ActorRole
from services.booking.domain.listing import Position
from services.booking.domain.model import Status

pytestmark = pytest.mark.unit


def caller(subject: str, *roles: Role) -> Caller:
    return Caller(subject=subject, roles=frozenset({Role.ATTENDEE, *roles}), expires_at=math.inf)


ADA = caller("ada")
OLGA = caller("olga", Role.ORGANIZER)
ROOT = caller("root", Role.ADMIN)


def test_a_user_is_read_by_its_subject_and_admins():
    assert access.may_read_user(ADA, "ada")
    assert access.may_read_user(ROOT, "ada")
    assert not access.may_read_user(OLGA, "ada")
    assert not access.may_read_user(ADA, None)  # made before users had subjects: admins only
    assert access.may_read_user(ROOT, None)


def test_a_booking_is_made_for_ones_own_user_unless_an_admin_makes_it():
    assert access.booking_for_subject(ADA) == "ada"
    assert access.booking_for_subject(OLGA) == "olga"
    assert access.booking_for_subject(ROOT) is None
    assert access.may_book_for(ADA, "ada") and not access.may_book_for(ADA, "bob")
    assert not access.may_book_for(ADA, None)
    assert access.may_book_for(ROOT, "bob") and access.may_book_for(ROOT, None)


def test_a_booking_is_seen_by_its_user_its_conferences_owner_and_admins():
    assert access.may_see_booking(ADA, user_subject="ada", owner_subject="olga")
    assert access.may_see_booking(OLGA, user_subject="ada", owner_subject="olga")
    assert access.may_see_booking(ROOT, user_subject="ada", owner_subject="olga")
    assert not access.may_see_booking(caller("bob"), user_subject="ada", owner_subject="olga")
    assert not access.may_see_booking(caller("oscar", Role.ORGANIZER), user_subject="ada", owner_subject="olga")
    assert not access.may_see_booking(ADA, user_subject=None, owner_subject=None)


def test_a_cancellation_by_anyone_but_the_user_is_the_organizers():
    assert not access.is_organizers_cancellation(ADA, user_subject="ada")
    assert access.is_organizers_cancellation(OLGA, user_subject="ada")
    assert access.is_organizers_cancellation(ROOT, user_subject="ada")
    assert not access.is_organizers_cancellation(caller("ada", Role.ADMIN), user_subject="ada")


def test_a_conference_is_managed_by_its_owner_and_admins():
    assert access.may_manage_conference(OLGA, "olga")
    assert access.may_manage_conference(ROOT, "olga")
    assert not access.may_manage_conference(caller("oscar", Role.ORGANIZER), "olga")
    assert not access.may_manage_conference(OLGA, None)
    assert access.may_manage_conference(ROOT, None)


def test_an_admins_webhook_sees_everything_anyone_elses_what_its_creator_may_read():
    assert access.webhook_sees_everything(ROOT)
    assert not access.webhook_sees_everything(OLGA)
    assert not access.webhook_sees_everything(ADA)


def test_an_actor_is_the_callers_strongest_role():
    assert Actor.of(ADA) == Actor("ada", ActorRole.ATTENDEE)
    assert Actor.of(OLGA) == Actor("olga", ActorRole.ORGANIZER)
    assert Actor.of(caller("root", Role.ORGANIZER, Role.ADMIN)) == Actor("root", ActorRole.ADMIN)


def test_an_events_json_says_who_caused_it():
    event = booking_pb2.BookingEvent(event_id="e", type="booking.canceled", reason="organizer", actor_role="admin")
    data = event_json(event)["data"]
    assert (data["reason"], data["by"]) == ("organizer", "admin")


# --- the organizer's view: which statuses, and its page tokens ------------------------------


def test_the_view_lists_every_active_status_in_order_or_the_one_asked_for():
    assert listing.statuses_listed(None) == (Status.CONFIRMED, Status.CONFIRMATION_PENDING, Status.WAITLISTED)
    assert listing.statuses_listed(Status.CANCELED) == (Status.CANCELED,)


@pytest.mark.parametrize(
    "position",
    [
        Position(Status.CONFIRMED, 1),
        Position(Status.CONFIRMATION_PENDING, 2**63 - 1),
        Position(Status.WAITLISTED, 2**31 - 1),
        Position(Status.CANCELED, 7),
    ],
)
def test_a_page_token_is_the_position_it_was_made_from(position):
    token = listing.page_token(position)
    assert listing.position_after(token, (position.status,)) == position
    assert listing.position_after(token, listing.statuses_listed(position.status)) == position


def test_an_empty_token_is_the_first_page():
    assert listing.position_after("", listing.ACTIVE_ORDER) is None


@pytest.mark.parametrize("token", ["x", "1", "1_", "_1", "1_-1", "0_1", "5_1", "4_1", "1_1 ", "\u0661_1"])
def test_a_token_this_view_could_not_have_given_is_refused(token):
    with pytest.raises(InvalidInput) as refused:
        listing.position_after(token, listing.ACTIVE_ORDER)
    assert refused.value.field == "page_token"


def test_a_page_size_is_1_to_100_and_0_is_the_default():
    assert listing.page_size(0) == 50
    assert listing.page_size(1) == 1
    assert listing.page_size(100) == 100
    for wrong in (-1, 101):
        with pytest.raises(InvalidInput):
            listing.page_size(wrong)
