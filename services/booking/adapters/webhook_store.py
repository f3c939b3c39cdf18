"""Webhook subscriptions and the deliveries still owed to each receiver, in the booking schema.

A receiver's deliveries are its own queue: rows of `webhook_deliveries`, made by the
database with the event, in the transaction of the change (migration 0006), and claimed
by a sender with a lease (`due_at` moved past the attempt), so a sender that dies
mid-attempt leaves them to be claimed again once the lease ends. A sender also holds
the receiver itself (`webhooks.held_until`, a lease too) while it sends, so that each
receiver gets its events one at a time and oldest first, whichever process sends them.
A failure makes the whole receiver wait (`webhooks.retry_at`), not each delivery on
its own. Every step that locks both takes the receiver's row first, then its deliveries,
as a delete of the webhook (and its cascade) does, so that none deadlocks another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, delete, exists, func, insert, or_, select, update

from services.booking.adapters.tables import conference_seats, webhook_deliveries, webhooks
from services.booking.domain.events import EventType
from services.booking.domain.webhooks import Webhook

_WEBHOOKS = select(webhooks, conference_seats.c.name.label("conference_name")).outerjoin(
    conference_seats, conference_seats.c.conference_id == webhooks.c.conference_id
)


def _to_webhook(row: Row) -> Webhook:
    return Webhook(
        webhook_id=str(row.webhook_id),
        url=row.url,
        event_types=tuple(EventType(value) for value in row.event_types) if row.event_types else None,
        conference=row.conference_name,
        secret=row.secret,
        created_at=row.created_at,
    )


@dataclass(frozen=True)
class Receiver:
    """A webhook as its sender needs it."""

    webhook_id: str
    url: str
    secret: str
    failures: int


@dataclass(frozen=True)
class ClaimedDelivery:
    delivery_id: int
    event_sequence: int
    created_at: datetime
    attempts: int


class WebhookStore:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # --- subscriptions ---------------------------------------------------------------

    def count(self) -> int:
        return self._connection.execute(select(func.count()).select_from(webhooks)).scalar_one()

    def add(
        self,
        url: str,
        event_types: tuple[EventType, ...] | None,
        conference_id: int | None,
        secret: str,
        *,
        owner_subject: str,
        sees_everything: bool,
    ) -> Webhook:
        webhook_id = self._connection.execute(
            insert(webhooks)
            .values(
                url=url,
                event_types=[value.value for value in event_types] if event_types else None,
                conference_id=conference_id,
                secret=secret,
                owner_subject=owner_subject,
                sees_everything=sees_everything,
            )
            .returning(webhooks.c.webhook_id)
        ).scalar_one()
        webhook = self.get(str(webhook_id))
        assert webhook is not None
        return webhook

    def get(self, webhook_id: str) -> Webhook | None:
        row = self._connection.execute(_WEBHOOKS.where(webhooks.c.webhook_id == webhook_id)).first()
        return _to_webhook(row) if row else None

    def of_owner(self, owner_subject: str) -> list[Webhook]:
        """The subscriptions `owner_subject` created, oldest first."""
        rows = self._connection.execute(
            _WEBHOOKS.where(webhooks.c.owner_subject == owner_subject).order_by(
                webhooks.c.created_at, webhooks.c.webhook_id
            )
        )
        return [_to_webhook(row) for row in rows]

    def remove(self, webhook_id: str, *, owner_subject: str) -> bool:
        """Delete the webhook, if `owner_subject` created it, and (by the foreign key's cascade) what
        it was still owed."""
        deleted = delete(webhooks).where(webhooks.c.webhook_id == webhook_id, webhooks.c.owner_subject == owner_subject)
        return self._connection.execute(deleted).rowcount > 0

    # --- sending ---------------------------------------------------------------------------

    def take_due_receivers(self, limit: int, lease: timedelta) -> list[Receiver]:
        """Receivers owed a delivery now, not waiting out a failure and not held by another sender,
        held by this one for `lease`: a receiver gets its events from one sender at a time, in order.

        FOR NO KEY UPDATE, not FOR UPDATE: bookings hold the webhooks they deliver to FOR KEY SHARE
        until they commit, and a receiver must not be skipped for as long as bookings go on.
        """
        owed = exists().where(
            webhook_deliveries.c.webhook_id == webhooks.c.webhook_id,
            webhook_deliveries.c.gave_up_at.is_(None),
            webhook_deliveries.c.due_at <= func.now(),
        )
        free = or_(webhooks.c.held_until.is_(None), webhooks.c.held_until <= func.now())
        due = (
            select(webhooks.c.webhook_id)
            .where(webhooks.c.retry_at <= func.now(), free, owed)
            .order_by(webhooks.c.retry_at)
            .limit(limit)
            .with_for_update(skip_locked=True, key_share=True)
            .scalar_subquery()
        )
        rows = self._connection.execute(
            update(webhooks)
            .where(webhooks.c.webhook_id.in_(due))
            .values(held_until=func.now() + lease)
            .returning(webhooks.c.webhook_id, webhooks.c.url, webhooks.c.secret, webhooks.c.failures)
        )
        return [Receiver(str(row.webhook_id), row.url, row.secret, row.failures) for row in rows]

    def let_go(self, webhook_id: str) -> None:
        """The sender holding the receiver is done with it (for now)."""
        self._connection.execute(update(webhooks).where(webhooks.c.webhook_id == webhook_id).values(held_until=None))

    def claim(self, webhook_id: str, limit: int, lease: timedelta) -> list[ClaimedDelivery]:
        """Up to `limit` of the receiver's due deliveries, oldest event first, leased for `lease`,
        and the receiver held as long."""
        self._connection.execute(
            update(webhooks).where(webhooks.c.webhook_id == webhook_id).values(held_until=func.now() + lease)
        )
        due = (
            select(webhook_deliveries.c.delivery_id)
            .where(
                webhook_deliveries.c.webhook_id == webhook_id,
                webhook_deliveries.c.gave_up_at.is_(None),
                webhook_deliveries.c.due_at <= func.now(),
            )
            .order_by(webhook_deliveries.c.event_sequence)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        rows = self._connection.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.delivery_id.in_(due))
            .values(due_at=func.now() + lease, attempts=webhook_deliveries.c.attempts + 1)
            .returning(
                webhook_deliveries.c.delivery_id,
                webhook_deliveries.c.event_sequence,
                webhook_deliveries.c.created_at,
                webhook_deliveries.c.attempts,
            )
        ).all()
        claimed = [ClaimedDelivery(row.delivery_id, row.event_sequence, row.created_at, row.attempts) for row in rows]
        return sorted(claimed, key=lambda delivery: delivery.event_sequence)

    def delivered(self, webhook_id: str, delivery_id: int) -> None:
        # The receiver before its delivery, the order a delete of the webhook locks them in.
        self._connection.execute(
            update(webhooks)
            .where(webhooks.c.webhook_id == webhook_id, webhooks.c.failures > 0)
            .values(failures=0, retry_at=func.now())
        )
        self._connection.execute(delete(webhook_deliveries).where(webhook_deliveries.c.delivery_id == delivery_id))

    def failed(
        self,
        webhook_id: str,
        delivery_id: int,
        error: str,
        *,
        retry_in: timedelta,
        give_up: bool,
        unsent: Sequence[int],
    ) -> None:
        """The receiver failed `delivery_id`: it waits `retry_in`, and so do its `unsent` claimed deliveries."""
        retry_at = func.now() + retry_in
        # The receiver before its deliveries, the order a delete of the webhook locks them in.
        self._connection.execute(
            update(webhooks)
            .where(webhooks.c.webhook_id == webhook_id)
            .values(failures=webhooks.c.failures + 1, retry_at=retry_at)
        )
        self._connection.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.delivery_id == delivery_id)
            .values(last_error=error[:500], due_at=retry_at, gave_up_at=func.now() if give_up else None)
        )
        if unsent:
            self._connection.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.delivery_id.in_(list(unsent)))
                .values(due_at=retry_at, attempts=webhook_deliveries.c.attempts - 1)
            )

    def release(self, delivery_ids: Sequence[int]) -> None:
        """Give claimed deliveries back unsent (the sender is stopping): due again at once, no try counted."""
        self._connection.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.delivery_id.in_(list(delivery_ids)))
            .values(due_at=func.now(), attempts=webhook_deliveries.c.attempts - 1)
        )

    def pending_count(self, webhook_id: str) -> int:
        return self._connection.execute(
            select(func.count())
            .select_from(webhook_deliveries)
            .where(webhook_deliveries.c.webhook_id == webhook_id, webhook_deliveries.c.gave_up_at.is_(None))
        ).scalar_one()
