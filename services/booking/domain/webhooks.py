"""Webhooks: what a subscription may name, how deliveries are signed, when a failed one is tried again."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from confbook_common import validation
from services.booking.domain.events import EventType

WEBHOOKS_MAX = 1000
SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 24


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    url: str
    # None: every type.
    event_types: tuple[EventType, ...] | None
    # The conference's name; None: every conference.
    conference: str | None
    secret: str
    created_at: datetime

    @property
    def events(self) -> tuple[EventType, ...]:
        return self.event_types or tuple(EventType)


def webhook_url(url: str) -> str:
    return validation.webhook_url("url", url)


def event_types(values: Sequence[str]) -> tuple[EventType, ...] | None:
    """The types to deliver; None (all of them) for an empty list."""
    return tuple(EventType(value) for value in validation.event_types("events", values)) or None


def is_internal_address(address: str) -> bool:
    """Loopback, private, link-local and every other address not on the public internet."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `webhook-signature` header: v1 and the base64 HMAC-SHA256 of
    "{id}.{timestamp}.{body}", keyed with the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class RetryPolicy:
    """Growing delays between tries of a failing receiver, for at least `give_up_after`."""

    first_delay: timedelta
    max_delay: timedelta
    give_up_after: timedelta

    def delay(self, failures: int) -> timedelta:
        """The wait after the `failures`-th failure in a row (1, 2, ...): doubling, up to max_delay."""
        return min(self.first_delay * 2 ** min(failures - 1, 40), self.max_delay)

    def gives_up(self, created_at: datetime, now: datetime) -> bool:
        """A delivery that failed at `now` is dropped only once it has been tried for give_up_after."""
        return now - created_at >= self.give_up_after
