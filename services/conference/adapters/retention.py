"""The conference schema's lifetimes (docs/adr/0024): conferences themselves are kept."""

from __future__ import annotations

from confbook_common.retention import CommonLifetimes, RetentionRule, idempotency_keys_rule, outbox_rule
from services.conference.adapters import tables


def rules(lifetimes: CommonLifetimes) -> list[RetentionRule]:
    return [outbox_rule(tables.outbox, lifetimes), idempotency_keys_rule(tables.idempotency_keys, lifetimes)]
