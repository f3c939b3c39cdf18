"""Who may do what with users, bookings, capacities and webhooks, on the real booking schema
(CONTRACT.md, "Who may do what"). Someone else's user or booking answers exactly as an unknown one."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from confbook.events.v1 import events_pb2
from confbook_common.errors import DomainError, Forbidden
from services.booking.adapters import tables
from services.booking.domain.errors import (
    BookingNotFound,
    NotConferenceOwner,
    NotYourUser,
    SubjectHasUser,
    UserExists,
    UserNotFound,
    WebhookNotFound,
)
from services.booking.domain.events import ActorRole, ChangeReason, EventType
from services.booking.domain.model import Status
from services.booking.service_layer import handlers
from services.booking.service_layer import webhooks as webhook_handlers
from tests.integration.callers import ADMIN, ORGANIZER, admin, attendee, organizer, own_booking
from tests.integration.test_booking_service import outbox_events

WINDOW = timedelta(minutes=30)
STRANGER = attendee("a-stranger")
OTHER_ORGANIZER = organizer("oscar")


def refusal(call):
    """The error a call raises: its class, code and message, which must not tell a hidden thing from a missing one."""
    with pytest.raises(DomainError) as raised:
        call()
    return type(raised.value), raised.value.code, str(raised.value)


@pytest.fixture
def now(tomorrow):
    return tomorrow - timedelta(days=1)


@pytest.fixture
def booked(uow, directory, new_user, tomorrow, now):
    """A user's confirmed booking of a conference ORGANIZER owns."""
    conference = directory.add(start=tomorrow, slots=2)
    user = new_user()
    return own_booking(uow, directory, user, conference, now)


def unknown_booking_id(uow):
    with uow() as unit:
        return unit.connection.execute(
            text("SELECT coalesce(max(booking_id), 0) + 1000 FROM booking.bookings")
        ).scalar()


# --- users -----------------------------------------------------------------------------------


def test_a_subject_has_one_user_and_a_taken_id_stays_taken(uow, new_user):
    subject = f"s{uuid.uuid4().hex[:10]}"
    first = handlers.create_user(uow(), f"u{uuid.uuid4().hex[:10]}", ["AI"], attendee(subject))
    assert first.subject == subject
    with pytest.raises(SubjectHasUser) as second:
        handlers.create_user(uow(), f"u{uuid.uuid4().hex[:10]}", [], attendee(subject))
    assert second.value.code == "SUBJECT_HAS_USER"
    with pytest.raises(UserExists) as taken:
        handlers.create_user(uow(), new_user(), [], attendee(f"s{uuid.uuid4().hex[:10]}"))
    assert taken.value.code == "USER_EXISTS"
    with pytest.raises(SubjectHasUser):  # an admin too has one user of its own
        handlers.create_user(uow(), f"u{uuid.uuid4().hex[:10]}", [], admin(subject))


def test_a_user_is_read_by_its_own_subject_and_admins_and_is_unknown_to_anyone_else(uow, directory, new_user, now):
    user = new_user()
    assert handlers.get_user(uow(), user, attendee(user)).user_id == user
    assert handlers.get_user(uow(), user, ADMIN).user_id == user
    assert handlers.list_user_bookings(uow(), user, ADMIN) == []

    unknown = refusal(lambda: handlers.get_user(uow(), "nobody", STRANGER))
    assert unknown[:2] == (UserNotFound, "USER_NOT_FOUND")
    for call in (
        lambda: handlers.get_user(uow(), user, STRANGER),
        lambda: handlers.get_user(uow(), user, ORGANIZER),
        lambda: handlers.list_user_bookings(uow(), user, STRANGER),
        lambda: handlers.recommend_conferences(uow(), directory, user_id=user, limit=10, now=now, caller=STRANGER),
    ):
        assert refusal(call) == (UserNotFound, "USER_NOT_FOUND", str(UserNotFound(user)))


# --- booking for a user ----------------------------------------------------------------------


def test_only_ones_own_user_is_booked_for_unless_an_admin_books(uow, directory, new_user, tomorrow, now):
    conference = directory.add(start=tomorrow, slots=5)
    user, other = new_user(), new_user()

    def book(user_id, caller):
        return handlers.book(uow(), directory, user_id=user_id, conference_name=conference.name, now=now, caller=caller)

    # Another's user and a user that does not exist answer alike: existence cannot be probed.
    assert refusal(lambda: book(other, attendee(user))) == refusal(lambda: book("nobody", attendee(user)))
    assert refusal(lambda: book(other, attendee(user)))[:2] == (NotYourUser, "FORBIDDEN")
    assert issubclass(NotYourUser, Forbidden)
    with pytest.raises(NotYourUser):
        book(user, ORGANIZER)  # not even the conference's owner
    assert book(user, attendee(user)).booking.user_id == user
    assert book(other, ADMIN).booking.user_id == other
    with pytest.raises(UserNotFound):
        book("nobody", ADMIN)
    with uow() as unit:
        count = unit.connection.execute(
            text("SELECT count(*) FROM booking.bookings WHERE conference_id = :id"), {"id": conference.conference_id}
        ).scalar()
    assert count == 2


def test_a_refused_booking_for_another_user_holds_none_of_its_locks(uow, directory, new_user, tomorrow, now):
    conference = directory.add(start=tomorrow, slots=5)
    user = new_user()
    handlers.seat_availability(uow(), directory, conference.conference_id)
    with uow() as unit:  # the user's own transaction, holding its row
        unit.users.lock(user)
        with pytest.raises(NotYourUser):  # decided without waiting for it
            handlers.book(uow(), directory, user_id=user, conference_name=conference.name, now=now, caller=STRANGER)


# --- a booking: its user, its conference's owner, admins -------------------------------------


def test_a_booking_is_seen_by_its_user_its_owner_and_admins_and_unknown_to_anyone_else(uow, booked, now):
    booking = booked.booking
    user = attendee(booking.user_id)
    for caller in (user, ORGANIZER, ADMIN):
        assert handlers.get_booking(uow(), booking.booking_id, caller).booking.booking_id == booking.booking_id
        assert handlers.watch_from(uow(), booking.booking_id, None, caller).view.booking.status is Status.CONFIRMED

    missing = unknown_booking_id(uow)
    assert refusal(lambda: handlers.get_booking(uow(), missing, STRANGER)) == (
        BookingNotFound,
        "BOOKING_NOT_FOUND",
        str(BookingNotFound(missing)),
    )
    hidden = (BookingNotFound, "BOOKING_NOT_FOUND", str(BookingNotFound(booking.booking_id)))
    for stranger in (STRANGER, OTHER_ORGANIZER):
        assert refusal(lambda caller=stranger: handlers.get_booking(uow(), booking.booking_id, caller)) == hidden
        assert refusal(lambda caller=stranger: handlers.watch_from(uow(), booking.booking_id, None, caller)) == hidden
        assert refusal(lambda caller=stranger: handlers.confirm(uow(), booking.booking_id, now, caller)) == hidden
        assert refusal(lambda caller=stranger: handlers.cancel(uow(), booking.booking_id, now, caller)) == hidden
    assert handlers.get_booking(uow(), booking.booking_id, ADMIN).booking.status is Status.CONFIRMED


def test_the_owner_or_an_admin_canceling_is_the_organizers_cancellation_and_frees_the_seat(
    uow, directory, new_user, tomorrow, now
):
    conference = directory.add(start=tomorrow, slots=2)
    users = [new_user() for _ in range(4)]
    views = [own_booking(uow, directory, user, conference, now) for user in users]

    by_owner = handlers.cancel(uow(), views[0].booking.booking_id, now, ORGANIZER)
    by_admin = handlers.cancel(uow(), views[1].booking.booking_id, now, ADMIN)
    by_user = handlers.cancel(uow(), views[3].booking.booking_id, now, attendee(users[3]))

    assert {by_owner.booking.status, by_admin.booking.status, by_user.booking.status} == {Status.CANCELED}
    last = {view.booking.booking_id: handlers.changes_after(uow(), view.booking.booking_id, 0)[-1] for view in views}
    assert (last[views[0].booking.booking_id].reason, last[views[0].booking.booking_id].actor_role) == (
        ChangeReason.ORGANIZER,
        ActorRole.ORGANIZER,
    )
    assert (last[views[1].booking.booking_id].reason, last[views[1].booking.booking_id].actor_role) == (
        ChangeReason.ORGANIZER,
        ActorRole.ADMIN,
    )
    assert (last[views[3].booking.booking_id].reason, last[views[3].booking.booking_id].actor_role) == (
        ChangeReason.USER,
        ActorRole.ATTENDEE,
    )
    # As any cancellation of a held seat: the line is owed it.
    released = outbox_events(uow, events_pb2.SeatReleased, conference.conference_id)
    assert [event.booking_id for event in released] == [views[0].booking.booking_id, views[1].booking.booking_id]
    assert {event.reason for event in released} == {events_pb2.SeatReleased.REASON_CANCELED}
    offers = handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)
    assert [offer.booking_id for offer in offers] == [views[2].booking.booking_id]


def test_the_owner_may_confirm_an_offer_for_its_user(uow, directory, new_user, tomorrow, now):
    conference = directory.add(start=tomorrow, slots=1)
    holder, waiting = new_user(), new_user()
    held = own_booking(uow, directory, holder, conference, now)
    line = own_booking(uow, directory, waiting, conference, now)
    handlers.cancel(uow(), held.booking.booking_id, now, attendee(holder))
    handlers.offer_free_seats(uow(), conference.conference_id, now, WINDOW)

    confirmed = handlers.confirm(uow(), line.booking.booking_id, now, ORGANIZER)

    assert confirmed.booking.status is Status.CONFIRMED
    last = handlers.changes_after(uow(), line.booking.booking_id, 0)[-1]
    assert (last.type, last.reason, last.actor_role) == (EventType.CONFIRMED, ChangeReason.USER, ActorRole.ORGANIZER)


# --- capacity: the owner's -------------------------------------------------------------------


def test_only_the_owner_or_an_admin_changes_a_conferences_capacity(uow, directory, tomorrow, now):
    olgas = directory.add(start=tomorrow, slots=3)
    oscars = directory.add(start=tomorrow, slots=3, owner=OTHER_ORGANIZER.subject)

    def change(conference, slots, caller):
        return handlers.change_capacity(
            uow(), directory, conference_name=conference.name, slots=slots, now=now, caller=caller
        )

    # The conference is public: a stranger is told no, not that it does not exist.
    for conference, caller in ((oscars, ORGANIZER), (olgas, OTHER_ORGANIZER), (olgas, STRANGER)):
        assert refusal(lambda c=conference, who=caller: change(c, 9, who))[:2] == (NotConferenceOwner, "FORBIDDEN")
    assert change(olgas, 4, ORGANIZER).slots == 4
    assert change(oscars, 5, OTHER_ORGANIZER).slots == 5
    assert change(olgas, 6, ADMIN).slots == 6
    assert handlers.seat_availability(uow(), directory, oscars.conference_id).slots == 5


def test_a_conference_without_an_owner_is_managed_by_admins_alone(uow, directory, tomorrow, now):
    conference = directory.add(start=tomorrow, slots=3, owner=None)
    with pytest.raises(NotConferenceOwner):
        handlers.change_capacity(uow(), directory, conference_name=conference.name, slots=4, now=now, caller=ORGANIZER)
    assert (
        handlers.change_capacity(
            uow(), directory, conference_name=conference.name, slots=4, now=now, caller=ADMIN
        ).slots
        == 4
    )


# --- who caused each change ------------------------------------------------------------------


def actors(uow, booking_id):
    with uow() as unit:
        rows = unit.connection.execute(
            select(
                tables.booking_events.c.reason,
                tables.booking_events.c.actor_subject,
                tables.booking_events.c.actor_role,
            )
            .where(tables.booking_events.c.booking_id == booking_id)
            .order_by(tables.booking_events.c.sequence)
        )
        return [tuple(row) for row in rows]


def test_each_event_records_who_caused_it(uow, directory, new_user, tomorrow, now):
    main = directory.add(start=tomorrow, slots=1)
    beside = directory.add(start=tomorrow + timedelta(minutes=30), slots=1)
    holder, user = new_user(), new_user()
    held = own_booking(uow, directory, holder, main, now)
    by_admin = handlers.book(
        uow(), directory, user_id=user, conference_name=main.name, now=now, caller=admin("root")
    ).booking.booking_id
    own_booking(uow, directory, new_user(), beside, now)
    waiting_beside = own_booking(uow, directory, user, beside, now).booking.booking_id
    handlers.cancel(uow(), held.booking.booking_id, now, attendee(holder))
    [offer] = handlers.offer_free_seats(uow(), main.conference_id, now, WINDOW)
    assert offer.offer_deadline is not None
    handlers.expire_offer(uow(), by_admin, offer.offer_deadline)
    handlers.offer_free_seats(uow(), main.conference_id, now, WINDOW)
    handlers.confirm(uow(), by_admin, now, attendee(user))

    assert actors(uow, held.booking.booking_id) == [
        ("user", holder, "attendee"),
        ("user", holder, "attendee"),
    ]
    assert actors(uow, by_admin) == [
        ("user", "root", "admin"),  # booked by an admin for the user
        ("seat_freed", None, "system"),
        ("offer_expired", None, "system"),
        ("seat_freed", None, "system"),
        ("user", user, "attendee"),
    ]
    # Confirming canceled the user's overlapping booking: the one who confirmed caused it.
    assert actors(uow, waiting_beside)[-1] == ("overlap", user, "attendee")
    late = own_booking(uow, directory, new_user(), main, now).booking.booking_id
    handlers.close_waitlist(uow(), main.conference_id, tomorrow)
    assert actors(uow, late)[-1] == ("conference_started", None, "system")


# --- webhooks: their creator's, delivering what it may read ----------------------------------


@pytest.fixture
def subscribe(uow, directory):
    made = []

    def create(caller, conference=None):
        webhook = webhook_handlers.create_webhook(
            uow(),
            directory,
            url="http://receiver.invalid/hooks",
            event_types=None,
            conference_name=conference.name if conference else None,
            refuse_internal_addresses=False,
            caller=caller,
        )
        made.append((webhook.webhook_id, caller))
        return webhook.webhook_id

    yield create
    for webhook_id, caller in made:  # no other test's bookings are owed to these
        with contextlib.suppress(WebhookNotFound):
            webhook_handlers.delete_webhook(uow(), webhook_id, caller)


def delivered_bookings(uow, webhook_id):
    with uow() as unit:
        return set(
            unit.connection.execute(
                select(tables.booking_events.c.booking_id)
                .join(
                    tables.webhook_deliveries,
                    tables.webhook_deliveries.c.event_sequence == tables.booking_events.c.sequence,
                )
                .where(tables.webhook_deliveries.c.webhook_id == webhook_id)
            ).scalars()
        )


def test_a_webhook_delivers_only_what_its_creator_may_read(uow, directory, new_user, tomorrow, now, subscribe):
    olgas = directory.add(start=tomorrow, slots=5)
    oscars = directory.add(start=tomorrow + timedelta(days=1), slots=5, owner=OTHER_ORGANIZER.subject)
    alice, bob = new_user(), new_user()
    handlers.seat_availability(uow(), directory, olgas.conference_id)
    handlers.seat_availability(uow(), directory, oscars.conference_id)
    everything_alice = subscribe(attendee(alice))  # no filter: still only her own bookings
    olgas_own = subscribe(ORGANIZER, olgas)
    oscar_on_olgas = subscribe(OTHER_ORGANIZER, olgas)  # a conference he does not own: nothing of others
    admins = subscribe(admin(f"root-{uuid.uuid4().hex[:6]}"), olgas)

    alice_at_olgas = own_booking(uow, directory, alice, olgas, now).booking.booking_id
    bob_at_olgas = own_booking(uow, directory, bob, olgas, now).booking.booking_id
    alice_at_oscars = own_booking(uow, directory, alice, oscars, now).booking.booking_id
    handlers.cancel(uow(), bob_at_olgas, now, ORGANIZER)

    assert delivered_bookings(uow, everything_alice) == {alice_at_olgas, alice_at_oscars}
    assert delivered_bookings(uow, olgas_own) == {alice_at_olgas, bob_at_olgas}
    assert delivered_bookings(uow, oscar_on_olgas) == set()
    assert delivered_bookings(uow, admins) == {alice_at_olgas, bob_at_olgas}
    with uow() as unit:
        olgas_count = unit.connection.execute(
            text("SELECT count(*) FROM booking.webhook_deliveries WHERE webhook_id = :id"), {"id": olgas_own}
        ).scalar()
    assert olgas_count == 3  # each change once: two bookings, one cancellation


def test_a_webhook_is_listed_and_deleted_by_its_creator_alone(uow, subscribe):
    creator, other, root = attendee(f"s{uuid.uuid4().hex[:8]}"), attendee(f"s{uuid.uuid4().hex[:8]}"), admin()
    mine = subscribe(creator)
    theirs = subscribe(other)

    assert [webhook.webhook_id for webhook in webhook_handlers.list_webhooks(uow(), creator)] == [mine]
    assert [webhook.webhook_id for webhook in webhook_handlers.list_webhooks(uow(), other)] == [theirs]
    assert mine not in [webhook.webhook_id for webhook in webhook_handlers.list_webhooks(uow(), root)]
    for caller in (other, root):  # even an admin: another's subscription is no subscription of its
        assert refusal(lambda who=caller: webhook_handlers.delete_webhook(uow(), mine, who)) == (
            WebhookNotFound,
            "WEBHOOK_NOT_FOUND",
            str(WebhookNotFound(mine)),
        )
    webhook_handlers.delete_webhook(uow(), mine, creator)
    assert webhook_handlers.list_webhooks(uow(), creator) == []
