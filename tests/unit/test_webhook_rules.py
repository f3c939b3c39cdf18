"""Webhook rules without I/O: URLs, event types, internal addresses, signatures, the retry schedule."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from confbook_common import validation
from confbook_common.errors import InvalidInput
from services.booking.config import DEFAULT_WEBHOOK_RETRY
from services.booking.domain.events import EVENT_TYPE_OF_STATUS, EventType
from services.booking.domain.model import Status
from services.booking.domain.webhooks import RetryPolicy, event_types, is_internal_address, new_secret, signature


def test_a_signature_verifies_with_the_standard_webhooks_library():
    secret = new_secret()
    body = b'{"id":"e1","type":"booking.offered"}'
    stamp = int(time.time())
    headers = {
        "webhook-id": "e1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature(secret, "e1", stamp, body),
    }
    assert StandardWebhook(secret).verify(body, headers) == {"id": "e1", "type": "booking.offered"}
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(secret).verify(body, {**headers, "webhook-id": "e2"})


def test_secrets_are_distinct_and_in_the_standard_form():
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(secret.startswith("whsec_") and len(secret) > 30 for secret in secrets)


@pytest.mark.parametrize(
    "url",
    ["https://example.com/hooks", "http://127.0.0.1:8000/x?y=1", "HTTPS://EXAMPLE.COM", "http://[::1]:9/"],
)
def test_http_and_https_urls_with_a_host_are_accepted(url):
    assert validation.webhook_url("url", url) == url


@pytest.mark.parametrize(
    "url",
    ["", "ftp://example.com", "file:///etc/passwd", "example.com", "http://", "https://a b", "http://h:70000/",
     "http://h:0/", "gopher://x", "http://exa\x00mple.com", "https://" + "a" * 2000],
)  # fmt: skip
def test_other_urls_are_refused_naming_the_field(url):
    with pytest.raises(InvalidInput) as refused:
        validation.webhook_url("url", url)
    assert refused.value.field == "url"


def test_event_types_are_the_contracts_and_an_empty_list_means_all():
    assert tuple(event_type.value for event_type in EventType) == validation.BOOKING_EVENT_TYPES
    assert set(EVENT_TYPE_OF_STATUS) == set(Status)
    assert event_types([]) is None
    assert event_types(["booking.offered", "booking.canceled"]) == (EventType.OFFERED, EventType.CANCELED)
    with pytest.raises(InvalidInput, match=r"events\[1\]"):
        event_types(["booking.offered", "booking.offered"])
    with pytest.raises(InvalidInput, match=r"events\[0\]"):
        event_types(["booking.moved"])


@pytest.mark.parametrize(
    ("address", "internal"),
    [("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True), ("169.254.169.254", True),
     ("0.0.0.0", True), ("::1", True), ("fd00::1", True), ("fe80::1", True), ("::ffff:127.0.0.1", True),
     ("100.64.0.1", True), ("224.0.0.1", True), ("8.8.8.8", False), ("2001:4860:4860::8888", False)],
)  # fmt: skip
def test_internal_addresses_are_told_from_public_ones(address, internal):
    assert is_internal_address(address) is internal


def test_retry_delays_double_up_to_their_cap():
    policy = RetryPolicy(timedelta(seconds=5), timedelta(minutes=1), timedelta(hours=1))
    assert [policy.delay(n).total_seconds() for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert policy.delay(10_000) == timedelta(minutes=1)


def test_by_default_a_delivery_is_retried_for_at_least_a_day():
    policy = DEFAULT_WEBHOOK_RETRY
    created = datetime(2030, 1, 1, tzinfo=UTC)
    now, failures = created, 0
    while not policy.gives_up(created, now):
        failures += 1
        now += policy.delay(failures)
    assert now - created >= timedelta(hours=24)
    assert failures < 50  # growing delays, not a retry storm
