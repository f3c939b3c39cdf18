"""The waitlist schema's lifetimes (docs/adr/0024)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_

from confbook_common.retention import (
    CommonLifetimes,
    RetentionRule,
    delete_expired,
    inbox_rule,
    oldest_by,
    outbox_rule,
)
from services.waitlist.adapters import tables


def rules(lifetimes: CommonLifetimes, closed_offers: timedelta) -> list[RetentionRule]:
    offers = tables.offers
    closed = offers.c.state == "CLOSED"
    return [
        RetentionRule(
            offers,
            closed_offers,
            # An open offer is never purged: its deadline is still to be kept (`closed_offers_by_age`).
            delete_expired(offers, lambda cutoff: and_(closed, offers.c.updated_at < cutoff)),
            # The oldest closed offer: open ones are few and young (an offer lasts one window).
            oldest_by(offers.c.updated_at).where(closed),
        ),
        inbox_rule(tables.processed_messages, lifetimes),
        outbox_rule(tables.outbox, lifetimes),
    ]
