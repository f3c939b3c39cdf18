"""Lifetimes are read from the environment once, in seconds or with a unit, and checked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from confbook_common.retention import CommonLifetimes, RetentionSettings
from confbook_common.settings import ConfigError, Env
from services.booking.config import BookingLifetimes
from services.waitlist.config import WaitlistConfig


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("30D", timedelta(days=30)),
    ],
)
def test_a_lifetime_is_whole_seconds_or_a_number_with_a_unit(raw, expected):
    assert Env({"RETENTION_OUTBOX": raw}).duration("RETENTION_OUTBOX", timedelta(days=1)) == expected


@pytest.mark.parametrize("raw", ["0", "-5", "1.5h", "h", "3w", "ten", "999999999d"])
def test_a_malformed_or_unreasonable_lifetime_refuses_to_start(raw):
    with pytest.raises(ConfigError, match="RETENTION_INBOX"):
        CommonLifetimes.from_env(Env({"RETENTION_INBOX": raw}))


def test_the_defaults_are_the_documented_ones():
    common = CommonLifetimes.from_env(Env({}))
    assert (common.outbox, common.inbox, common.idempotency_keys) == (
        timedelta(days=1),
        timedelta(days=7),
        timedelta(hours=24),
    )
    booking = BookingLifetimes.from_env(Env({}), watch_seconds=300)
    assert (booking.booking_events, booking.webhook_deliveries, booking.canceled_bookings) == (
        timedelta(days=30),
        timedelta(days=7),
        timedelta(days=90),
    )
    assert RetentionSettings.from_env(Env({})) == RetentionSettings(batch_size=500, every_seconds=60)


def test_booking_events_must_outlive_a_stream_so_that_it_can_resume():
    with pytest.raises(ConfigError, match="WATCH_MAX_SECONDS"):
        BookingLifetimes.from_env(Env({"RETENTION_BOOKING_EVENTS": "300"}), watch_seconds=300)
    assert BookingLifetimes.from_env(Env({"RETENTION_BOOKING_EVENTS": "301"}), watch_seconds=300)


def test_the_waitlist_reads_its_closed_offers_lifetime():
    env = Env(
        {
            "RETENTION_CLOSED_OFFERS": "2h",
            "PROMOTION_TOKEN": "x" * 16,
            "OIDC_ISSUER": "https://i.test",
            "OIDC_AUDIENCE": "confbook",
        }
    )
    assert WaitlistConfig.from_env(env).closed_offers_lifetime == timedelta(hours=2)
