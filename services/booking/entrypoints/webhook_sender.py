"""Sends what each webhook receiver is owed: its own queue, its own task, its own failures.

A thread of its own in every booking service process, running an asyncio loop.
The database makes the deliveries with each change (migration 0006); the sender
looks for receivers owed one every `poll_seconds`, rather than being woken by a
NOTIFY per change (docs/adr/0017). Each receiver with deliveries due is held by
one sender of one process at a time (a lease in the database) and gets one task
there that sends them one at a time, oldest event first, so a slow or failing
receiver only ever holds up itself.
A failure makes that receiver wait a growing delay (RetryPolicy) with everything
it is owed; other receivers, and bookings, never wait for it. Pending deliveries
live in the database, so a restart resumes them; delivery is at least once and
`webhook-id` (the event id) lets a receiver drop a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta

import httpx

from confbook_common.booking_json import event_json
from confbook_common.timestamps import utc_now
from confbook_common.worker import Worker
from services.booking.adapters.receiver_addresses import internal_address_of
from services.booking.adapters.webhook_store import Receiver
from services.booking.domain.events import BookingEvent
from services.booking.domain.webhooks import RetryPolicy, signature
from services.booking.entrypoints.grpc_servicer import to_event_message
from services.booking.service_layer import webhooks as steps
from services.booking.service_layer.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

USER_AGENT = "confbook-webhooks/1"


def delivery_body(event: BookingEvent) -> bytes:
    return json.dumps(event_json(to_event_message(event)), separators=(",", ":")).encode()


class WebhookSender(Worker):
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        *,
        policy: RetryPolicy,
        timeout_seconds: float,
        refuse_internal_addresses: bool,
        poll_seconds: float = 0.1,
        max_receivers: int = 100,
        batch_size: int = 10,
    ) -> None:
        super().__init__(name="webhook-sender")
        self._uow = unit_of_work
        self._policy = policy
        self._timeout = timeout_seconds
        self._refuse_internal = refuse_internal_addresses
        self._poll_seconds = poll_seconds
        self._max_receivers = max_receivers
        self._batch_size = batch_size
        # A claimed delivery comes back to the queue after this, should this process die mid-attempt.
        self._lease = timedelta(seconds=batch_size * timeout_seconds + 30)
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._connected = False

    @property
    def healthy(self) -> bool:
        return self.is_alive() and self._connected

    def loop(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, headers={"user-agent": USER_AGENT}
            ) as client:
                while not self.stopping.is_set():
                    await self._start_due(client)
                    self._connected = True
                    await asyncio.sleep(self._poll_seconds)
        finally:
            self._connected = False
            for task in self._sending.values():
                task.cancel()
            await asyncio.gather(*self._sending.values(), return_exceptions=True)
            self._sending.clear()

    async def _start_due(self, client: httpx.AsyncClient) -> None:
        room = self._max_receivers - len(self._sending)
        if room <= 0:
            return
        for receiver in await asyncio.to_thread(steps.take_due_receivers, self._uow(), room, self._lease):
            if receiver.webhook_id in self._sending or len(self._sending) >= self._max_receivers:
                continue
            task = asyncio.get_running_loop().create_task(self._serve(client, receiver))
            self._sending[receiver.webhook_id] = task
            task.add_done_callback(self._finished(receiver.webhook_id))

    def _finished(self, webhook_id: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self._sending.pop(webhook_id, None)

        return forget

    async def _serve(self, client: httpx.AsyncClient, receiver: Receiver) -> None:
        """Send the receiver's due deliveries until none is left or one fails, then let go of it."""
        try:
            await self._send_owed(client, receiver)
        except Exception:  # noqa: BLE001 - one receiver's trouble must not stop the others
            log.warning("webhook %s: sending stopped; its deliveries come back when their lease ends",
                        receiver.webhook_id, exc_info=True)  # fmt: skip
        finally:
            # Any sender may take the receiver now; should this fail, the hold runs out by itself.
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.to_thread(steps.let_go, self._uow(), receiver.webhook_id))

    async def _send_owed(self, client: httpx.AsyncClient, receiver: Receiver) -> None:
        while not self.stopping.is_set():
            claimed = await asyncio.to_thread(
                steps.claim_deliveries, self._uow(), receiver.webhook_id, self._batch_size, self._lease
            )
            if not claimed:
                return
            sent = 0
            try:
                for delivery, event in claimed:
                    error = await self._send(client, receiver, event)
                    sent += 1
                    if error is not None:
                        log.info("webhook %s: delivery %d failed: %s", receiver.webhook_id, delivery.delivery_id, error)
                        unsent = [later.delivery_id for later, _ in claimed[sent:]]
                        await asyncio.to_thread(
                            steps.record_failed,
                            self._uow(),
                            receiver,
                            delivery,
                            error,
                            policy=self._policy,
                            now=utc_now(),
                            unsent=unsent,
                        )
                        return
                    await asyncio.to_thread(
                        steps.record_delivered, self._uow(), receiver.webhook_id, delivery.delivery_id
                    )
                    if receiver.failures:
                        receiver = Receiver(receiver.webhook_id, receiver.url, receiver.secret, 0)
            except asyncio.CancelledError:
                # Stopping: what was claimed and not yet tried is due again at once, not after its lease.
                untried = [later.delivery_id for later, _ in claimed[sent:]]
                if untried:
                    await asyncio.shield(asyncio.to_thread(steps.release_deliveries, self._uow(), untried))
                raise

    async def _send(self, client: httpx.AsyncClient, receiver: Receiver, event: BookingEvent) -> str | None:
        """POST the event as Standard Webhooks says; None on a 2xx answer, else what went wrong."""
        if self._refuse_internal:
            try:
                address = await asyncio.to_thread(internal_address_of, receiver.url)
            except Exception as error:  # noqa: BLE001 - an unresolvable host is a failed attempt
                return str(error)
            if address is not None:
                return f"refused: the host resolves to an internal address ({address})"
        body = delivery_body(event)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": event.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(receiver.secret, event.event_id, timestamp, body),
        }
        try:
            response = await client.post(receiver.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
