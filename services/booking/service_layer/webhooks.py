"""Webhook use cases: subscribing, listing, unsubscribing; and the steps of sending what is owed.

A subscription is its creator's alone: nobody else lists or deletes it (another's answers as an
unknown one, even to an admin), and it delivers only what its creator may read (domain.access),
which the database decides as it makes each event's deliveries (migration 0008)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from confbook_common.auth.caller import Caller
from confbook_common.db import retries_on_conflict
from services.booking.adapters.conference_directory import ConferenceDirectory
from services.booking.adapters.receiver_addresses import refuse_internal
from services.booking.adapters.webhook_store import ClaimedDelivery, Receiver
from services.booking.domain import access
from services.booking.domain.errors import TooManyWebhooks, WebhookNotFound
from services.booking.domain.events import BookingEvent, EventType
from services.booking.domain.webhooks import WEBHOOKS_MAX, RetryPolicy, Webhook, new_secret
from services.booking.service_layer.unit_of_work import BookingUnitOfWork

# --- subscriptions ------------------------------------------------------------------


def create_webhook(
    uow: BookingUnitOfWork,
    directory: ConferenceDirectory,
    *,
    url: str,
    event_types: tuple[EventType, ...] | None,
    conference_name: str | None,
    refuse_internal_addresses: bool,
    caller: Caller,
) -> Webhook:
    """A new subscription of the caller's, with its own signing secret; a named conference must exist."""
    if refuse_internal_addresses:
        refuse_internal(url)
    conference = directory.by_name(conference_name) if conference_name is not None else None
    with uow:
        # A soft bound: two concurrent creations may both pass it, which costs nothing.
        if uow.webhooks.count() >= WEBHOOKS_MAX:
            raise TooManyWebhooks(WEBHOOKS_MAX)
        if conference is not None:
            uow.seats.ensure(conference)  # the filter refers to this service's copy
        webhook = uow.webhooks.add(
            url,
            event_types,
            conference.conference_id if conference else None,
            new_secret(),
            owner_subject=caller.subject,
            sees_everything=access.webhook_sees_everything(caller),
        )
        uow.commit()
    return webhook


@retries_on_conflict
def list_webhooks(uow: BookingUnitOfWork, caller: Caller) -> list[Webhook]:
    with uow.autocommit():
        return uow.webhooks.of_owner(caller.subject)


@retries_on_conflict
def delete_webhook(uow: BookingUnitOfWork, webhook_id: str, caller: Caller) -> None:
    with uow:
        if not uow.webhooks.remove(webhook_id, owner_subject=caller.subject):
            raise WebhookNotFound(webhook_id)
        uow.commit()


# --- sending (the webhook sender's steps) ---------------------------------------------


@retries_on_conflict
def take_due_receivers(uow: BookingUnitOfWork, limit: int, lease: timedelta) -> list[Receiver]:
    """Receivers owed a delivery now, held by the caller for `lease` (or until it lets go)."""
    with uow.autocommit():
        return uow.webhooks.take_due_receivers(limit, lease)


@retries_on_conflict
def let_go(uow: BookingUnitOfWork, webhook_id: str) -> None:
    with uow.autocommit():
        uow.webhooks.let_go(webhook_id)


@retries_on_conflict
def claim_deliveries(
    uow: BookingUnitOfWork, webhook_id: str, limit: int, lease: timedelta
) -> list[tuple[ClaimedDelivery, BookingEvent]]:
    """The receiver's next due deliveries, leased, each with its event."""
    with uow:
        claimed = uow.webhooks.claim(webhook_id, limit, lease)
        events = uow.events.by_sequences([delivery.event_sequence for delivery in claimed])
        uow.commit()
    return [(delivery, events[delivery.event_sequence]) for delivery in claimed]


@retries_on_conflict
def release_deliveries(uow: BookingUnitOfWork, delivery_ids: Sequence[int]) -> None:
    with uow:
        uow.webhooks.release(delivery_ids)
        uow.commit()


@retries_on_conflict
def record_delivered(uow: BookingUnitOfWork, webhook_id: str, delivery_id: int) -> None:
    with uow:
        uow.webhooks.delivered(webhook_id, delivery_id)
        uow.commit()


@retries_on_conflict
def record_failed(
    uow: BookingUnitOfWork,
    receiver: Receiver,
    delivery: ClaimedDelivery,
    error: str,
    *,
    policy: RetryPolicy,
    now: datetime,
    unsent: Sequence[int],
) -> None:
    """The receiver waits a growing delay; the delivery is dropped once tried for the policy's span."""
    with uow:
        uow.webhooks.failed(
            receiver.webhook_id,
            delivery.delivery_id,
            error,
            retry_in=policy.delay(receiver.failures + 1),
            give_up=policy.gives_up(delivery.created_at, now),
            unsent=unsent,
        )
        uow.commit()
