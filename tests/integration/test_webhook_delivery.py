"""The webhook sender against the real database and a real HTTP receiver: restarts, retries, giving up."""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from confbook_common.errors import InvalidInput
from scripts.webhook_receiver import WebhookReceiver
from services.booking.adapters import tables
from services.booking.adapters.webhook_store import Receiver
from services.booking.domain.errors import WebhookNotFound
from services.booking.domain.webhooks import RetryPolicy
from services.booking.entrypoints.webhook_sender import WebhookSender
from services.booking.service_layer import webhooks as webhook_handlers
from tests.integration.callers import ORGANIZER, own_booking

FAST_RETRY = RetryPolicy(timedelta(milliseconds=300), timedelta(seconds=1), timedelta(hours=1))


@pytest.fixture
def receiver():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def senders(uow):
    started = []

    def start(policy=FAST_RETRY):
        sender = WebhookSender(uow, policy=policy, timeout_seconds=2, refuse_internal_addresses=False, poll_seconds=0.1)
        sender.start()
        started.append(sender)
        return sender

    yield start
    for sender in started:
        sender.stop()
        sender.join(5)


@pytest.fixture
def subscribed(uow, directory, tomorrow):
    """A conference, and a webhook to `receiver` for its bookings only; deleted afterwards."""
    made = []

    def subscribe(url):
        conference = directory.add(start=tomorrow, slots=1)
        webhook = webhook_handlers.create_webhook(
            uow(),
            directory,
            url=url,
            event_types=None,
            conference_name=conference.name,
            refuse_internal_addresses=False,
            caller=ORGANIZER,  # its owner: sees every booking of it
        )
        made.append(webhook.webhook_id)
        return conference, webhook

    yield subscribe
    for webhook_id in made:
        with contextlib.suppress(WebhookNotFound):  # deleted by the test itself
            webhook_handlers.delete_webhook(uow(), webhook_id, ORGANIZER)


def book(uow, directory, user, conference, tomorrow):
    return own_booking(uow, directory, user, conference, tomorrow - timedelta(days=1)).booking.booking_id


def deliveries(uow, webhook_id):
    with uow() as unit:
        return unit.connection.execute(
            select(tables.webhook_deliveries).where(tables.webhook_deliveries.c.webhook_id == webhook_id)
        ).all()


def test_what_a_stopped_sender_still_owed_is_sent_by_the_next_one(
    uow, directory, new_user, tomorrow, receiver, senders, subscribed
):
    conference, webhook = subscribed(receiver.url)
    receiver.status = 500
    first = senders()
    booking_id = book(uow, directory, new_user(), conference, tomorrow)
    receiver.wait_for(1, timeout=5)
    first.stop()
    first.join(5)
    [pending] = deliveries(uow, webhook.webhook_id)
    assert pending.attempts >= 1 and pending.last_error == "HTTP 500"

    receiver.status = 204
    senders()  # as after a restart: nothing but the database remembers the delivery
    [delivered] = receiver.wait_for(1, timeout=5, accepted=True)
    assert json.loads(delivered.body)["data"]["booking"]["booking_id"] == booking_id
    deadline = time.monotonic() + 5
    while deliveries(uow, webhook.webhook_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert deliveries(uow, webhook.webhook_id) == []


def test_with_several_senders_a_receiver_gets_its_events_one_at_a_time_in_order_once_each(
    uow, directory, new_user, tomorrow, senders, subscribed
):
    answering = 0.3
    receiver = WebhookReceiver(delay=answering).start()
    try:
        conference, _ = subscribed(receiver.url)
        for _ in range(3):  # as the processes of a service and its replicas
            senders()
        users = [new_user() for _ in range(6)]
        booked = []
        for user in users:  # each new event while the receiver is still answering an earlier one
            booked.append(book(uow, directory, user, conference, tomorrow))
            time.sleep(answering / 2)
        arrived = [json.loads(r.body) for r in receiver.wait_for(len(booked), timeout=10)]
        time.sleep(0.5)
        assert len(receiver.received) == len(booked)  # once each
        # In the order they happened, and one at a time: none sent while another was still being answered.
        assert [event["data"]["booking"]["booking_id"] for event in arrived] == booked
        starts = [r.at for r in receiver.received]
        assert all(later - earlier >= answering for earlier, later in itertools.pairwise(starts))
    finally:
        receiver.stop()


def test_a_failing_receiver_is_tried_with_growing_delays_then_given_up(
    uow, directory, new_user, tomorrow, receiver, senders, subscribed
):
    conference, webhook = subscribed(receiver.url)
    receiver.status = 503
    # Tries at about 0, 0.4, 1.2 and 2.8 s; the fourth fails past the 2.5 s span and is the last.
    senders(RetryPolicy(timedelta(milliseconds=400), timedelta(seconds=5), timedelta(seconds=2.5)))
    book(uow, directory, new_user(), conference, tomorrow)
    tries = receiver.wait_for(4, timeout=10)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(tries)]
    assert gaps[0] >= 0.35
    assert gaps[1] > gaps[0] * 1.4 and gaps[2] > gaps[1] * 1.4  # growing

    deadline = time.monotonic() + 10
    while not (rows := deliveries(uow, webhook.webhook_id))[0].gave_up_at and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rows[0].gave_up_at is not None
    count = len(receiver.received)
    time.sleep(1.0)
    assert len(receiver.received) == count  # given up: no more tries


def test_a_deleted_webhook_is_owed_nothing(uow, directory, new_user, tomorrow, receiver, subscribed):
    conference, webhook = subscribed(receiver.url)
    book(uow, directory, new_user(), conference, tomorrow)
    assert len(deliveries(uow, webhook.webhook_id)) == 1  # made with the booking, in its transaction
    webhook_handlers.delete_webhook(uow(), webhook.webhook_id, ORGANIZER)
    assert deliveries(uow, webhook.webhook_id) == []
    with pytest.raises(WebhookNotFound):
        webhook_handlers.delete_webhook(uow(), webhook.webhook_id, ORGANIZER)


def test_a_webhook_deleted_while_a_booking_is_made_neither_fails_it_nor_keeps_a_delivery(
    uow, directory, new_user, tomorrow, receiver, subscribed, booking_engine
):
    conference, webhook = subscribed(receiver.url)
    user = new_user()
    with booking_engine.connect() as deleting:
        # The delete has taken the webhook's row and not committed yet when the booking comes.
        deleting.execute(delete(tables.webhooks).where(tables.webhooks.c.webhook_id == webhook.webhook_id))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            booked = pool.submit(book, uow, directory, user, conference, tomorrow)
            with pytest.raises(concurrent.futures.TimeoutError):
                booked.result(timeout=0.5)  # it waits for the delete...
            deleting.commit()
            booking_id = booked.result(timeout=10)  # ...then books, owing the deleted webhook nothing
    with uow() as unit:
        status = unit.connection.execute(
            select(tables.bookings.c.status).where(tables.bookings.c.booking_id == booking_id)
        ).scalar_one()
    assert status == "CONFIRMED"
    assert deliveries(uow, webhook.webhook_id) == []


def test_a_sender_recording_an_attempt_locks_the_receiver_before_its_deliveries_as_a_delete_does(
    uow, directory, new_user, tomorrow, subscribed, booking_engine
):
    # The other order deadlocks with a delete of the webhook, which locks the webhook's row and
    # then, by the cascade, its deliveries: one of the two would fail.
    conference, webhook = subscribed("http://receiver.invalid/")
    book(uow, directory, new_user(), conference, tomorrow)
    [(delivery, _)] = webhook_handlers.claim_deliveries(uow(), webhook.webhook_id, 10, timedelta(minutes=1))
    receiver = Receiver(webhook.webhook_id, webhook.url, webhook.secret, failures=0)
    webhook_row = tables.webhooks.c.webhook_id == webhook.webhook_id
    with booking_engine.connect() as deleting:
        deleting.execute(select(tables.webhooks).where(webhook_row).with_for_update())
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            recorded = pool.submit(
                webhook_handlers.record_failed, uow(), receiver, delivery, "HTTP 500",
                policy=FAST_RETRY, now=tomorrow, unsent=[],
            )  # fmt: skip
            with pytest.raises(concurrent.futures.TimeoutError):
                recorded.result(timeout=0.5)  # it waits for the receiver's row...
            owed = tables.webhook_deliveries.c.webhook_id == webhook.webhook_id
            # ...holding none of its deliveries meanwhile, so the delete's cascade goes through
            deleting.execute(select(tables.webhook_deliveries).where(owed).with_for_update(nowait=True))
            deleting.execute(delete(tables.webhooks).where(webhook_row))
            deleting.commit()
            recorded.result(timeout=10)
    assert deliveries(uow, webhook.webhook_id) == []


def test_with_the_setting_internal_addresses_are_refused_on_subscribing_and_before_sending(
    uow, directory, new_user, tomorrow, receiver, subscribed
):
    for url in (receiver.url, "http://localhost:9/x", "http://[::1]/", "http://10.0.0.7/hook"):
        with pytest.raises(InvalidInput, match="internal address"):
            webhook_handlers.create_webhook(
                uow(),
                directory,
                url=url,
                event_types=None,
                conference_name=None,
                refuse_internal_addresses=True,
                caller=ORGANIZER,
            )
    # One subscribed before the setting was turned on is still refused at delivery.
    conference, webhook = subscribed(receiver.url)
    sender = WebhookSender(uow, policy=FAST_RETRY, timeout_seconds=2, refuse_internal_addresses=True, poll_seconds=0.1)
    sender.start()
    try:
        book(uow, directory, new_user(), conference, tomorrow)
        deadline = time.monotonic() + 5
        while (
            not ((rows := deliveries(uow, webhook.webhook_id)) and rows[0].last_error) and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert "internal address" in rows[0].last_error
        assert receiver.received == []
    finally:
        sender.stop()
        sender.join(5)


def test_a_sender_stopped_mid_delivery_gives_back_what_it_had_not_finished(
    uow, directory, new_user, tomorrow, senders, subscribed
):
    receiver = WebhookReceiver(delay=1.0).start()
    try:
        conference, webhook = subscribed(receiver.url)
        first = senders()
        for _ in range(3):
            book(uow, directory, new_user(), conference, tomorrow)
        receiver.wait_for(1, timeout=5)  # the first is being answered, slowly
        first.stop()
        first.join(5)
        assert len(receiver.answered_2xx) <= 1
        receiver.delay = 0
        senders()  # well within the lease the first sender held them for
        receiver.wait_for(3, timeout=5, accepted=True)
        delivered = {json.loads(arrival.body)["id"] for arrival in receiver.answered_2xx}
        assert len(delivered) == 3
    finally:
        receiver.stop()
