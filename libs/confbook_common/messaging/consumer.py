"""Consuming events: decode, skip what was handled before, apply, commit, then ack."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Protocol, Self

from google.protobuf.message import DecodeError, Message
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from confbook_common import metrics, tracing
from confbook_common.db import is_transient_db_error, retry_on_conflict
from confbook_common.errors import DependencyUnavailable
from confbook_common.messaging import amqp
from confbook_common.messaging.inbox import Inbox
from confbook_common.worker import Backoff, Worker

log = logging.getLogger(__name__)


class InboxUnitOfWork(Protocol):
    inbox: Inbox

    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None: ...
    def commit(self) -> None: ...


@dataclass(frozen=True)
class Subscription:
    """Messages of `message_type` arriving on `queue` are passed to `handler`.

    The handler runs inside the unit of work that records the message id, so its
    database effects and "handled" are committed together. Anything else it does
    (a gRPC call) must be idempotent: a crash before the commit repeats it.
    """

    queue: str
    message_type: type[Message]
    handler: Callable[[Any, Any], None]
    # The broker user that publishes these (RabbitMQ checks a message's user_id against the
    # publisher's login): a message from anyone else is forged, and goes to the dead letters.
    publisher: str


class ForgedMessage(ValueError):
    """A message that does not come from the service that owns its event."""


class ConsumerCanceled(Exception):
    """The broker stopped delivering to us; the worker starts over."""


def is_transient(error: BaseException) -> bool:
    return isinstance(error, DependencyUnavailable) or is_transient_db_error(error)


class EventConsumer(Worker):
    """One connection, one channel, a handful of queues; handlers run one at a time.

    Transient failures (a service or the database away) are retried in place with
    backoff, keeping the message; anything else rejects it to the dead letters.
    """

    def __init__(
        self,
        *,
        name: str,
        amqp_url: str,
        unit_of_work: Callable[[], InboxUnitOfWork],
        subscriptions: Sequence[Subscription],
        declare_topology: Callable[[BlockingChannel], None],
        prefetch: int = 10,
    ) -> None:
        super().__init__(name=name)
        self._amqp_url = amqp_url
        self._unit_of_work = unit_of_work
        self._subscriptions = subscriptions
        self._declare_topology = declare_topology
        self._prefetch = prefetch
        self._connected = False
        for subscription in subscriptions:  # shown at 0 from the start, so that a rise is seen as one
            metrics.REDELIVERIES.labels(subscription.queue)
            metrics.FORGED_MESSAGES.labels(subscription.queue)

    @property
    def healthy(self) -> bool:
        return self.is_alive() and self._connected

    def loop(self) -> None:
        connection = amqp.connect(self._amqp_url, name=self.name)
        try:
            channel = connection.channel()
            self._declare_topology(channel)
            channel.basic_qos(prefetch_count=self._prefetch)
            canceled: list[str] = []
            # The broker cancels a consumer whose queue was deleted: reconnect and declare it again.
            channel.add_on_cancel_callback(lambda frame: canceled.append(frame.method.consumer_tag))
            for subscription in self._subscriptions:
                channel.basic_consume(
                    subscription.queue, on_message_callback=partial(self._on_message, connection, subscription)
                )
            self._connected = True
            while not self.stopping.is_set():
                connection.process_data_events(time_limit=0.5)
                if canceled:
                    raise ConsumerCanceled(f"the broker canceled consumer {canceled[0]} (queue deleted?)")
        finally:
            self._connected = False
            if connection.is_open:
                connection.close()

    def _on_message(
        self,
        connection: BlockingConnection,
        subscription: Subscription,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        queue = subscription.queue
        if method.redelivered:
            metrics.REDELIVERIES.labels(queue).inc()
        with tracing.consume_span(queue, properties.headers):
            outcome = self._consume(connection, subscription, channel, method.delivery_tag, properties, body)
        metrics.CONSUMED.labels(queue, outcome).inc()

    def _consume(
        self,
        connection: BlockingConnection,
        subscription: Subscription,
        channel: BlockingChannel,
        tag: int,
        properties: BasicProperties,
        body: bytes,
    ) -> str:
        """Handle one delivery and ack, reject or requeue it; returns which (the outcome counted)."""
        try:
            message = self._decode(subscription, properties, body)
        except ForgedMessage as error:
            metrics.FORGED_MESSAGES.labels(subscription.queue).inc()
            log.warning("rejecting a forged message on %s: %s", subscription.queue, error)
            channel.basic_reject(tag, requeue=False)
            return "forged"
        except (DecodeError, ValueError) as error:
            log.error("rejecting undecodable message on %s: %s", subscription.queue, error)
            channel.basic_reject(tag, requeue=False)
            return "undecodable"

        backoff = Backoff()
        while True:
            try:
                retry_on_conflict(partial(self._handle, subscription, properties.message_id, message))
                break
            except Exception as error:
                if self.stopping.is_set():
                    channel.basic_nack(tag, requeue=True)
                    return "requeued"
                if is_transient(error):
                    delay = backoff.next()
                    log.warning("%s: %s; retrying in %.1fs", subscription.queue, error, delay)
                    connection.sleep(delay)  # keeps heartbeats going; no nested deliveries
                    continue
                log.exception("rejecting message %s on %s", properties.message_id, subscription.queue)
                channel.basic_reject(tag, requeue=False)
                return "rejected"
        channel.basic_ack(tag)
        return "handled"

    @staticmethod
    def _decode(subscription: Subscription, properties: BasicProperties, body: bytes) -> Message:
        if properties.user_id != subscription.publisher:
            # user_id is an AMQP short string: at most 255 bytes, safe to log.
            raise ForgedMessage(f"published by {properties.user_id!r}, not by {subscription.publisher!r}")
        expected = subscription.message_type.DESCRIPTOR.full_name
        if properties.type != expected:
            raise ValueError(f"expected {expected}, got type {properties.type!r}")
        if not properties.message_id:
            raise ValueError("message has no message_id")
        return subscription.message_type.FromString(body)

    def _handle(self, subscription: Subscription, message_id: str, message: Message) -> None:
        with self._unit_of_work() as uow:
            if not uow.inbox.first_delivery(subscription.queue, message_id):
                log.info("%s: message %s was handled before, skipping", subscription.queue, message_id)
                return
            subscription.handler(message, uow)
            uow.commit()
