"""Exchanges and queues. Declarations are idempotent; every service declares what it uses."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import Message
from pika.adapters.blocking_connection import BlockingChannel

EVENTS_EXCHANGE = "confbook.events"
DEAD_LETTER_EXCHANGE = "confbook.dead-letter"
DEAD_LETTER_QUEUE = "confbook.dead-letter"


def routing_key(message_type: type[Message] | Message) -> str:
    """Events are routed by their full protobuf name, e.g. confbook.events.v1.SeatReleased."""
    return message_type.DESCRIPTOR.full_name


def declare_events_exchange(channel: BlockingChannel) -> None:
    channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)


def declare_dead_letters(channel: BlockingChannel) -> None:
    """Where messages that cannot be handled (poison) wait for a person to look at them."""
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True)
    channel.queue_bind(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE)


def declare_event_queue(channel: BlockingChannel, queue: str, message_types: Iterable[type[Message]]) -> None:
    """A durable queue receiving the given events; rejected messages go to the dead letters."""
    declare_events_exchange(channel)
    declare_dead_letters(channel)
    channel.queue_declare(queue, durable=True, arguments={"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE})
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
            "x-message-ttl": delay_seconds * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": then_to_queue,
        },
    )
