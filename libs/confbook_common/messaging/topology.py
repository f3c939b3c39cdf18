"""Exchanges and queues. Declarations are idempotent; every service declares what it uses.

Every queue is a quorum queue: on a cluster its messages live on a majority of the
nodes, so one node going down loses none of them and a queue's leader moves to a
survivor; on a single node it is a durable queue like any other. Quorum queues
cannot be exclusive or auto-deleted, and need a consumer prefetch (ours is 10).
Messages are published persistent with confirms (relay.py) and acked after commit
(consumer.py), so the broker holds each until the effect is stored.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import Message
from pika.adapters.blocking_connection import BlockingChannel

from confbook.events.v1 import events_pb2

EVENTS_EXCHANGE = "confbook.events"
DEAD_LETTER_EXCHANGE = "confbook.dead-letter"
DEAD_LETTER_QUEUE = "confbook.dead-letter"

# The service that publishes each event. A consumer accepts an event only from that service's broker
# user (RabbitMQ vouches for a message's user_id). On the events exchange the broker lets each service
# publish only its own; OfferExpired never goes there (the waitlist's timers use the default exchange).
EVENT_OWNERS: dict[type[Message], str] = {
    events_pb2.ConferenceStarted: "conference",
    events_pb2.SeatReleased: "booking",
    events_pb2.OfferMade: "booking",
    events_pb2.OfferEnded: "booking",
    events_pb2.OfferExpired: "waitlist",  # its own timer, back from the delay queue
}

QUORUM = {"x-queue-type": "quorum"}
# A message leaving a queue for another (a rejected one to the dead letters, an expired timer to
# its due queue) is kept until the target confirms it, not sent and forgotten as by default.
# RabbitMQ requires reject-publish overflow for that (the queues have no length limit anyway).
_DEAD_LETTER_AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


def routing_key(message_type: type[Message] | Message) -> str:
    """Events are routed by their full protobuf name, e.g. confbook.events.v1.SeatReleased."""
    return message_type.DESCRIPTOR.full_name


def declare_events_exchange(channel: BlockingChannel) -> None:
    channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)


def declare_dead_letters(channel: BlockingChannel) -> None:
    """Where messages that cannot be handled (poison) wait for a person to look at them."""
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True, arguments=QUORUM)
    channel.queue_bind(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE)


def declare_event_queue(channel: BlockingChannel, queue: str, message_types: Iterable[type[Message]]) -> None:
    """A durable queue receiving the given events; rejected messages go to the dead letters."""
    declare_events_exchange(channel)
    declare_dead_letters(channel)
    arguments = {**QUORUM, "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, **_DEAD_LETTER_AT_LEAST_ONCE}
    channel.queue_declare(queue, durable=True, arguments=arguments)
    for message_type in message_types:
        channel.queue_bind(queue, EVENTS_EXCHANGE, routing_key=routing_key(message_type))


def delay_queue_name(prefix: str, delay_seconds: int) -> str:
    # The delay is part of the name: a queue's TTL cannot change once declared.
    return f"{prefix}.{delay_seconds}s"


def declare_delay_queue(channel: BlockingChannel, queue: str, *, delay_seconds: int, then_to_queue: str) -> None:
    """A consumer-less queue whose messages move to `then_to_queue` after `delay_seconds`.

    One TTL for the whole queue: RabbitMQ expires messages only at the head of a
    queue, so with a single TTL arrival order is also expiry order and nothing stalls.
    """
    channel.queue_declare(
        queue,
        durable=True,
        arguments={
            **QUORUM,
            **_DEAD_LETTER_AT_LEAST_ONCE,
            "x-message-ttl": delay_seconds * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": then_to_queue,
        },
    )
