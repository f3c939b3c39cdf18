"""Queues that an earlier version declared otherwise (classic rather than quorum, say), declared
anew with their messages.

A queue's arguments cannot change once declared: a service declaring the queue
differently is refused. This runs with the migrations, before the services
start: each queue the new declarations are refused for has its messages moved
to a holding quorum queue, goes, is created again by the new declarations
(bindings included), and gets its messages back. A message
is acked where it was only after the broker confirmed its copy, so a crash in
between duplicates a message (consumers drop duplicates by message id) but
never loses one; running it again finishes the job.

Consumers accept an event only with its owner's user_id (confbook_common.messaging), so a
message keeps its user_id when moved (the mover account may impersonate, broker_accounts.py),
and one from a version that did not stamp it gets its event's owner.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from confbook_common.messaging.topology import QUORUM

log = logging.getLogger("migrate")

_HOLDING_SUFFIX = ".upgrading"
_PRECONDITION_FAILED = 406
_NOT_FOUND = 404
# How the broker refuses a declaration that differs from the queue's (its type or another argument).
_REFUSAL = re.compile(r"inequivalent arg '[^']+' for queue '([^']+)'")


def redeclare_changed_queues(
    amqp_url: str,
    queues: list[str],
    declare_all: Callable[[BlockingChannel], None],
    publishers: Mapping[str, str],
) -> list[str]:
    """Declare with `declare_all`, first emptying and deleting each queue it is refused for.

    `queues` names every queue `declare_all` declares, to find what an interrupted run left
    held; `publishers` names the broker user owning each message type, for messages published
    without a user_id. Returns the queues whose messages were moved.
    """
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        held = [queue for queue in queues if _exists(connection, queue + _HOLDING_SUFFIX)]
        while (changed := _refused_queue(connection, declare_all)) is not None:
            channel = _confirming_channel(connection)
            channel.queue_declare(changed + _HOLDING_SUFFIX, durable=True, arguments=QUORUM)
            count = _move(channel, changed, changed + _HOLDING_SUFFIX, publishers)
            channel.queue_delete(changed)
            channel.close()
            log.info("queue %s: %d message(s) held while it is declared anew", changed, count)
            held.append(changed)
        # A fresh channel: RabbitMQ 3.10 fails a channel that publishes to a queue it saw deleted and declared anew.
        channel = _confirming_channel(connection)
        for queue in dict.fromkeys(held):
            count = _move(channel, queue + _HOLDING_SUFFIX, queue, publishers)
            channel.queue_delete(queue + _HOLDING_SUFFIX)
            log.info("queue %s: declared anew, %d message(s) moved back", queue, count)
        return list(dict.fromkeys(held))
    finally:
        if connection.is_open:
            connection.close()


def _refused_queue(connection: BlockingConnection, declare_all: Callable[[BlockingChannel], None]) -> str | None:
    """None once every declaration succeeds, else the queue that one was refused for."""
    probe = connection.channel()  # a refused declaration closes its channel
    try:
        declare_all(probe)
    except pika.exceptions.ChannelClosedByBroker as error:
        match = _REFUSAL.search(error.reply_text)
        if error.reply_code != _PRECONDITION_FAILED or match is None:
            raise
        return match.group(1)
    probe.close()
    return None


def _confirming_channel(connection: BlockingConnection) -> BlockingChannel:
    channel = connection.channel()
    channel.confirm_delivery()
    return channel


def _exists(connection: BlockingConnection, queue: str) -> bool:
    probe = connection.channel()
    try:
        probe.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code == _NOT_FOUND:
            return False
        raise
    probe.close()
    return True


def _move(channel: BlockingChannel, source: str, target: str, publishers: Mapping[str, str]) -> int:
    count = 0
    while True:
        method, properties, body = channel.basic_get(source, auto_ack=False)
        if method is None:
            return count
        if properties.user_id is None and properties.type is not None:
            properties.user_id = publishers.get(properties.type)
        channel.basic_publish("", target, body, properties, mandatory=True)  # confirmed before it returns
        channel.basic_ack(method.delivery_tag)
        count += 1
