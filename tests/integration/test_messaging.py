"""The outbox relay and the idempotent consumer against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pika
import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from confbook.events.v1 import events_pb2
from confbook_common.errors import DependencyUnavailable
from confbook_common.messaging.consumer import EventConsumer, Subscription
from confbook_common.messaging.relay import OutboxRelay
from confbook_common.messaging.topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE,
    EVENTS_EXCHANGE,
    declare_delay_queue,
    declare_event_queue,
    routing_key,
)
from confbook_common.settings import Env, amqp_password, amqp_user
from scripts.broker_accounts import event_publishers, queue_mover_account
from scripts.queue_upgrade import redeclare_changed_queues
from scripts.sandbox import Infrastructure
from services.waitlist.adapters import tables
from services.waitlist.service_layer.unit_of_work import WaitlistUnitOfWork
from tests.conftest import amqp_url_for_tests
from tests.integration.conftest import engine_for
from tests.waiting import eventually

# The consumers under test accept events from the account the tests publish with.
PUBLISHER = amqp_user(amqp_url_for_tests())


@pytest.fixture(scope="module")
def waitlist_engine(infrastructure: Infrastructure) -> Iterator[Engine]:
    yield from engine_for(infrastructure, "waitlist")


@pytest.fixture
def uow(waitlist_engine: Engine) -> Callable[[], WaitlistUnitOfWork]:
    return lambda: WaitlistUnitOfWork(waitlist_engine)


@pytest.fixture
def channel(infrastructure: Infrastructure) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(infrastructure.amqp_url))
    channel = connection.channel()
    channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    yield channel
    connection.close()


@pytest.fixture
def private_queue(channel) -> Callable[[str], str]:
    """A throw-away queue bound to the events exchange under a routing key of its own."""

    def bind(routing_key: str) -> str:
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, EVENTS_EXCHANGE, routing_key=routing_key)
        return queue

    return bind


def get_one(channel, queue, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            return properties, body
        time.sleep(0.05)
    raise AssertionError(f"nothing arrived on {queue} within {timeout}s")


def queued_event(uow, routing_key, *, exchange=EVENTS_EXCHANGE, booking_id=1):
    event = events_pb2.SeatReleased(conference_id=99, booking_id=booking_id)
    with uow() as unit:
        message_id = unit.outbox.add(event, exchange=exchange, to=routing_key)
        unit.commit()
    return message_id


def outbox_row(uow, message_id):
    with uow() as unit:
        return unit.connection.execute(select(tables.outbox).where(tables.outbox.c.message_id == message_id)).one()


def channel_with_confirms(infrastructure):
    connection = pika.BlockingConnection(pika.URLParameters(infrastructure.amqp_url))
    confirming = connection.channel()
    confirming.confirm_delivery()
    return confirming


def relay_for(infrastructure, engine):
    return OutboxRelay(engine=engine, table=tables.outbox, amqp_url=infrastructure.amqp_url)


@pytest.fixture(autouse=True)
def empty_outbox(waitlist_engine):
    """Leave no test message behind for the services' relays to publish later."""
    yield
    with waitlist_engine.begin() as connection:
        connection.execute(delete(tables.outbox).where(tables.outbox.c.routing_key.like("test.%")))
        connection.execute(delete(tables.outbox).where(tables.outbox.c.routing_key.like("nowhere.%")))


def test_the_relay_publishes_persistent_messages_and_marks_them_sent(
    infrastructure, uow, waitlist_engine, channel, private_queue
):
    key = f"test.{uuid.uuid4().hex}"
    queue = private_queue(key)
    message_id = queued_event(uow, key)

    relay_for(infrastructure, waitlist_engine).publish_pending(channel_with_confirms(infrastructure))

    properties, body = get_one(channel, queue)
    assert properties.message_id == message_id
    assert properties.type == "confbook.events.v1.SeatReleased"
    assert properties.delivery_mode == pika.DeliveryMode.Persistent.value
    assert events_pb2.SeatReleased.FromString(body).conference_id == 99
    assert outbox_row(uow, message_id).published_at is not None


def test_an_unroutable_message_stays_in_the_outbox_for_a_later_try(infrastructure, uow, waitlist_engine):
    message_id = queued_event(uow, f"nowhere.{uuid.uuid4().hex}", exchange="")

    relay_for(infrastructure, waitlist_engine).publish_pending(channel_with_confirms(infrastructure))

    row = outbox_row(uow, message_id)
    assert row.published_at is None
    assert row.attempts == 1
    assert row.available_at > row.created_at


def test_the_running_relay_publishes_what_is_committed(infrastructure, uow, waitlist_engine, channel, private_queue):
    key = f"test.{uuid.uuid4().hex}"
    queue = private_queue(key)
    relay = relay_for(infrastructure, waitlist_engine)
    relay.start()
    try:
        deadline = time.monotonic() + 10
        while not relay.healthy and time.monotonic() < deadline:
            time.sleep(0.05)
        message_id = queued_event(uow, key)
        properties, _ = get_one(channel, queue)
    finally:
        relay.stop()
        relay.join(timeout=10)
    assert properties.message_id == message_id


def test_a_delay_queue_hands_messages_on_after_its_delay_and_not_before(channel):
    delay_queue, due_queue = f"test.timers.{uuid.uuid4().hex}", f"test.due.{uuid.uuid4().hex}"
    channel.queue_declare(due_queue, exclusive=True)
    declare_delay_queue(channel, delay_queue, delay_seconds=1, then_to_queue=due_queue)
    try:
        sent = {}
        for booking_id in (1, 2):
            message_id = str(uuid.uuid4())
            publish(channel, delay_queue, events_pb2.OfferExpired(booking_id=booking_id), message_id=message_id)
            sent[message_id] = time.monotonic()
        arrivals = [(get_one(channel, due_queue)[0].message_id, time.monotonic()) for _ in sent]
    finally:
        channel.queue_delete(delay_queue)
    assert [message_id for message_id, _ in arrivals] == list(sent), "in the order they were sent"
    assert all(arrived - sent[message_id] >= 1.0 for message_id, arrived in arrivals), "never early"


class Recorder:
    """A handler that remembers what it saw and can fail on demand."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.seen: list[int] = []
        self.failures = list(failures or [])

    def __call__(self, event, uow) -> None:
        if self.failures:
            raise self.failures.pop(0)
        uow.offers.open(event.booking_id, event.conference_id, datetime.now(UTC) + timedelta(days=1))
        self.seen.append(event.booking_id)


@pytest.fixture
def consume(infrastructure, uow):
    """Run an EventConsumer on a fresh queue with the given handler until the test ends."""
    consumers = []

    def start(handler) -> str:
        queue = f"test.consumer.{uuid.uuid4().hex}"
        consumer = EventConsumer(
            name=queue,
            amqp_url=infrastructure.amqp_url,
            unit_of_work=uow,
            subscriptions=[Subscription(queue, events_pb2.SeatReleased, handler, publisher=PUBLISHER)],
            declare_topology=lambda channel: declare_event_queue(channel, queue, []),
        )
        consumer.start()
        consumers.append((consumer, queue))
        deadline = time.monotonic() + 10
        while not consumer.healthy and time.monotonic() < deadline:
            time.sleep(0.05)
        return queue

    yield start
    for consumer, _ in consumers:
        consumer.stop()
    for consumer, _ in consumers:
        consumer.join(timeout=10)
    connection = pika.BlockingConnection(pika.URLParameters(infrastructure.amqp_url))
    for _, queue in consumers:
        connection.channel().queue_delete(queue)
    connection.close()


def publish(channel, queue, event, *, message_id, message_type=None, user_id=PUBLISHER):
    """As the test's broker account (the broker refuses any other user_id on its connection)."""
    properties = pika.BasicProperties(
        message_id=message_id, type=message_type or event.DESCRIPTOR.full_name, delivery_mode=2, user_id=user_id
    )
    channel.basic_publish("", queue, event.SerializeToString(), properties)


def queue_depth(channel, queue):
    return channel.queue_declare(queue, passive=True).method.message_count


def test_a_message_not_from_the_owner_of_its_event_goes_to_the_dead_letters_unhandled(consume, channel):
    recorder = Recorder()
    queue = consume(recorder)
    before = queue_depth(channel, DEAD_LETTER_QUEUE)
    event = events_pb2.SeatReleased(booking_id=uuid.uuid4().int % 10**12)

    publish(channel, queue, event, message_id=str(uuid.uuid4()), user_id=None)  # anyone may leave user_id out

    eventually(lambda: queue_depth(channel, DEAD_LETTER_QUEUE) == before + 1)
    assert recorder.seen == []
    publish(channel, queue, event, message_id=str(uuid.uuid4()))
    eventually(lambda: recorder.seen == [event.booking_id])


def test_a_redelivered_message_is_handled_once(consume, channel):
    recorder = Recorder()
    queue = consume(recorder)
    booking_id = uuid.uuid4().int % 10**12
    event = events_pb2.SeatReleased(conference_id=1, booking_id=booking_id)
    message_id = str(uuid.uuid4())
    publish(channel, queue, event, message_id=message_id)
    publish(channel, queue, event, message_id=message_id)
    publish(channel, queue, event, message_id=str(uuid.uuid4()))

    eventually(lambda: len(recorder.seen) == 2 and queue_depth(channel, queue) == 0)
    time.sleep(0.3)
    assert recorder.seen == [booking_id, booking_id], "the duplicate was skipped, the new message handled"


def test_a_transient_failure_is_retried_until_it_succeeds(consume, channel):
    recorder = Recorder(failures=[DependencyUnavailable("booking away"), DependencyUnavailable("still away")])
    queue = consume(recorder)
    event = events_pb2.SeatReleased(conference_id=1, booking_id=uuid.uuid4().int % 10**12)
    publish(channel, queue, event, message_id=str(uuid.uuid4()))
    eventually(lambda: recorder.seen == [event.booking_id])


def test_a_message_that_cannot_be_handled_goes_to_the_dead_letters(consume, channel):
    recorder = Recorder(failures=[ValueError("a bug")])
    queue = consume(recorder)
    channel.queue_purge(DEAD_LETTER_QUEUE)
    poison = events_pb2.SeatReleased(conference_id=1, booking_id=uuid.uuid4().int % 10**12)
    publish(channel, queue, poison, message_id=str(uuid.uuid4()))
    publish(channel, queue, poison, message_id=str(uuid.uuid4()), message_type="confbook.events.v1.Unknown")

    eventually(lambda: queue_depth(channel, DEAD_LETTER_QUEUE) == 2)
    assert recorder.seen == []
    assert queue_depth(channel, queue) == 0


def test_handled_messages_commit_with_their_effect(consume, channel, uow):
    recorder = Recorder()
    queue = consume(recorder)
    event = events_pb2.SeatReleased(conference_id=1, booking_id=uuid.uuid4().int % 10**12)
    message_id = str(uuid.uuid4())
    publish(channel, queue, event, message_id=message_id)
    eventually(lambda: recorder.seen == [event.booking_id])
    with uow() as unit:
        handled = unit.connection.execute(
            select(tables.processed_messages).where(tables.processed_messages.c.message_id == message_id)
        ).all()
        offers = unit.offers.of_conference(1, include_closed=True)
    assert [row.queue for row in handled] == [queue]
    assert event.booking_id in {offer.booking_id for offer in offers}


def test_classic_queues_of_an_earlier_version_become_quorum_queues_with_their_messages(infrastructure):
    """What `make migrate` does to a broker that an earlier version declared classic queues on:
    each message comes back with its publisher's user_id, or its event owner's if it had none."""
    prefix = f"test.upgrade.{uuid.uuid4().hex}"
    events_queue, timers_queue, due_queue = f"{prefix}.events", f"{prefix}.timers", f"{prefix}.due"
    queues = [events_queue, timers_queue, due_queue]
    env = Env(infrastructure.env())
    booking_user, waitlist_user = env.broker_user("booking"), env.broker_user("waitlist")

    def declare_now(channel):
        declare_event_queue(channel, events_queue, [events_pb2.SeatReleased])
        declare_event_queue(channel, due_queue, [])
        declare_delay_queue(channel, timers_queue, delay_seconds=3600, then_to_queue=due_queue)

    connection = pika.BlockingConnection(pika.URLParameters(infrastructure.amqp_url))
    channel = connection.channel()
    try:
        with queue_mover_account(env) as mover_url:
            # As the earlier versions left them: classic queues, holding a message the booking
            # service stamped (which only an impersonating account may republish) and unstamped ones.
            mover = pika.BlockingConnection(pika.URLParameters(mover_url))
            mover_channel = mover.channel()
            mover_channel.queue_declare(
                events_queue, durable=True, arguments={"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE}
            )
            mover_channel.queue_declare(timers_queue, durable=True, arguments={"x-message-ttl": 3_600_000})
            publish(mover_channel, events_queue, events_pb2.SeatReleased(), message_id="stamped", user_id=booking_user)
            publish(mover_channel, events_queue, events_pb2.SeatReleased(), message_id="unstamped", user_id=None)
            publish(mover_channel, timers_queue, events_pb2.OfferExpired(), message_id="timer", user_id=None)
            mover.close()

            moved = redeclare_changed_queues(mover_url, [*queues], declare_now, event_publishers(env))

        assert sorted(moved) == sorted([events_queue, timers_queue])
        assert [queue_depth(channel, queue) for queue in queues] == [2, 1, 0]
        declare_now(channel)  # would close the channel if any were still classic
        publishers = {}
        for queue in (events_queue, timers_queue):
            while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
                publishers[message[1].message_id] = message[1].user_id
        assert publishers == {"stamped": booking_user, "unstamped": booking_user, "timer": waitlist_user}
        channel.basic_publish(EVENTS_EXCHANGE, routing_key(events_pb2.SeatReleased), b"")
        assert eventually(lambda: queue_depth(channel, events_queue) == 1), "the exchange binding is not back"
        assert not api_user_exists(env, "confbook_queue_mover"), "the mover account outlived the move"
    finally:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
        connection.close()


def api_user_exists(env: Env, user: str) -> bool:
    request = urllib.request.Request(env.amqp_management_url().rstrip("/") + f"/api/users/{user}")
    login = f"{amqp_user(env.amqp_url())}:{amqp_password(env.amqp_url())}"
    request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise
