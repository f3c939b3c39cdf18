"""Publishing outbox rows to RabbitMQ with publisher confirms, then marking them sent."""

from __future__ import annotations

import logging
import select as io_select
from collections.abc import Callable

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import UnroutableError
from sqlalchemy import Row, Table, func, update
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Engine

from confbook_common import metrics, tracing
from confbook_common.db import listening_connection
from confbook_common.messaging import amqp
from confbook_common.messaging.outbox import notify_channel
from confbook_common.messaging.topology import declare_events_exchange
from confbook_common.settings import amqp_user
from confbook_common.worker import Worker

log = logging.getLogger(__name__)

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"


class _NotifyListener:
    """A dedicated autocommit connection LISTENing for "there are new outbox rows"."""

    def __init__(self, engine: Engine, channel: str) -> None:
        self._connection = listening_connection(engine, channel)

    def wait(self, timeout: float) -> None:
        """Return on a notification or after `timeout` seconds, whichever comes first."""
        readable, _, _ = io_select.select([self._connection], [], [], timeout)
        if readable:
            for _ in self._connection.notifies(timeout=0):  # read them all; that one came is enough
                pass

    def close(self) -> None:
        self._connection.close()


class OutboxRelay(Worker):
    """Claims pending rows (SKIP LOCKED, so replicas share the work), publishes, marks them sent.

    A row is marked only after the broker confirmed the message, so a crash in
    between publishes it again: consumers are idempotent by message id. Rows are
    never tracked by an "id > last seen" mark: ids commit out of order.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        table: Table,
        amqp_url: str,
        declare_topology: Callable[[BlockingChannel], None] = declare_events_exchange,
        batch_size: int = 100,
        poll_seconds: float = 0.5,
    ) -> None:
        super().__init__(name=f"outbox-relay-{table.schema}")
        self._engine = engine
        self._table = table
        self._amqp_url = amqp_url
        # Stamped on every message; the broker refuses it unless it is the connection's user.
        self._user_id = amqp_user(amqp_url)
        # What this service publishes to must exist first, or mandatory messages come back unroutable.
        self._declare_topology = declare_topology
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._connected = False
        self._published = metrics.PUBLISHED.labels(str(table.schema))

    @property
    def healthy(self) -> bool:
        return self.is_alive() and self._connected

    def loop(self) -> None:
        connection = amqp.connect(self._amqp_url, name=self.name)
        listener = _NotifyListener(self._engine, notify_channel(str(self._table.schema)))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            self._declare_topology(channel)
            self._connected = True
            while not self.stopping.is_set():
                if self.publish_pending(channel) < self._batch_size:
                    listener.wait(self._poll_seconds)
                connection.process_data_events(time_limit=0)  # heartbeats
        finally:
            self._connected = False
            listener.close()
            if connection.is_open:
                connection.close()

    def publish_pending(self, channel: BlockingChannel) -> int:
        """Publish one batch; returns how many rows were claimed."""
        table = self._table
        with self._engine.begin() as db:
            rows = db.execute(
                sql_select(table)
                .where(table.c.published_at.is_(None), table.c.available_at <= func.now())
                .order_by(table.c.id)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            sent: list[int] = []
            unroutable: list[int] = []
            for row in rows:
                try:
                    self._publish(channel, row)
                    sent.append(row.id)
                except UnroutableError:
                    unroutable.append(row.id)
            if sent:
                db.execute(update(table).where(table.c.id.in_(sent)).values(published_at=func.now()))
            if unroutable:
                # No queue is bound yet (its consumer has never started): keep the
                # message and try again later rather than let the broker drop it.
                log.warning("%d outbox message(s) unroutable, will retry", len(unroutable))
                db.execute(
                    update(table)
                    .where(table.c.id.in_(unroutable))
                    .values(
                        attempts=table.c.attempts + 1,
                        available_at=func.now()
                        + func.make_interval(0, 0, 0, 0, 0, 0, func.least(func.power(2, table.c.attempts), 60)),
                    )
                )
        return len(rows)

    def _publish(self, channel: BlockingChannel, row: Row) -> None:
        # In the trace of the change that wrote the row; its consumer continues it from the headers.
        with tracing.publish_span(row.trace_context, row.routing_key) as trace_headers:
            channel.basic_publish(
                exchange=row.exchange,
                routing_key=row.routing_key,
                body=row.payload,
                properties=pika.BasicProperties(
                    message_id=row.message_id,
                    type=row.message_type,
                    content_type=PROTOBUF_CONTENT_TYPE,
                    delivery_mode=pika.DeliveryMode.Persistent,
                    timestamp=int(row.created_at.timestamp()),
                    app_id=str(self._table.schema),
                    user_id=self._user_id,
                    headers=trace_headers or None,
                ),
                mandatory=True,
            )
        self._published.inc()
