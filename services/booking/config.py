"""The booking service's settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Self

from confbook_common.auth import TokenRules
from confbook_common.retention import CommonLifetimes, RetentionSettings, lifetime
from confbook_common.settings import ConfigError, Env
from services.booking.domain.webhooks import RetryPolicy

SERVICE = "booking"
SCHEMA = "booking"


# Doubling from 5 s to an hour between tries, for 24 hours: about 30 tries in all.
DEFAULT_WEBHOOK_RETRY = RetryPolicy(
    first_delay=timedelta(seconds=5), max_delay=timedelta(hours=1), give_up_after=timedelta(hours=24)
)


BOOKING_EVENTS_LIFETIME = ("RETENTION_BOOKING_EVENTS", timedelta(days=30))
WEBHOOK_DELIVERIES_LIFETIME = ("RETENTION_WEBHOOK_DELIVERIES", timedelta(days=7))
CANCELED_BOOKINGS_LIFETIME = ("RETENTION_CANCELED_BOOKINGS", timedelta(days=90))


@dataclass(frozen=True)
class BookingLifetimes:
    booking_events: timedelta = BOOKING_EVENTS_LIFETIME[1]
    webhook_deliveries: timedelta = WEBHOOK_DELIVERIES_LIFETIME[1]
    canceled_bookings: timedelta = CANCELED_BOOKINGS_LIFETIME[1]  # counted from the end of the booking's conference

    @classmethod
    def from_env(cls, env: Env, *, watch_seconds: int) -> BookingLifetimes:
        lifetimes = cls(
            booking_events=lifetime(env, BOOKING_EVENTS_LIFETIME),
            webhook_deliveries=lifetime(env, WEBHOOK_DELIVERIES_LIFETIME),
            canceled_bookings=lifetime(env, CANCELED_BOOKINGS_LIFETIME),
        )
        # A stream that ended by itself resumes from its last event: it must still be there.
        if lifetimes.booking_events.total_seconds() <= watch_seconds:
            raise ConfigError(
                f"{BOOKING_EVENTS_LIFETIME[0]} must be longer than WATCH_MAX_SECONDS ({watch_seconds} s), "
                "so that a stream can resume from its last event"
            )
        return lifetimes


@dataclass(frozen=True)
class BookingConfig:
    listen_address: str
    database_url: str
    amqp_url: str
    conference_target: str
    confirmation_window: timedelta
    promotion_token: str
    # Whose access tokens count (OIDC_ISSUER, OIDC_AUDIENCE...): every call but the public ones needs one.
    token_rules: TokenRules
    # A WatchBooking stream ends by itself (OK) after this long; the client watches again from its last event.
    watch_seconds: int = 300
    # Refuse webhook URLs whose host resolves to a private, loopback or other internal address
    # (checked on subscribing and again before each delivery).
    refuse_internal_webhook_addresses: bool = False
    webhook_retry: RetryPolicy = field(default_factory=lambda: DEFAULT_WEBHOOK_RETRY)
    # One attempt to deliver, connecting included.
    webhook_timeout_seconds: int = 10
    # How long what grows with traffic is kept (docs/adr/0024), and how the purge goes about it.
    lifetimes: BookingLifetimes = field(default_factory=BookingLifetimes)
    common_lifetimes: CommonLifetimes = field(default_factory=CommonLifetimes)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    @classmethod
    def from_env(cls, env: Env | None = None) -> Self:
        env = env or Env()
        watch_seconds = env.integer("WATCH_MAX_SECONDS", cls.watch_seconds, minimum=1, maximum=24 * 3600)
        return cls(
            listen_address=f"{env.listen_host()}:{env.grpc_port(SERVICE)}",
            database_url=env.service_database_url(SERVICE),
            amqp_url=env.service_amqp_url(SERVICE),
            conference_target=env.grpc_target("conference"),
            confirmation_window=timedelta(seconds=env.confirmation_window_seconds()),
            promotion_token=env.promotion_token(),
            token_rules=TokenRules.from_env(env),
            watch_seconds=watch_seconds,
            refuse_internal_webhook_addresses=env.flag("WEBHOOK_REFUSE_PRIVATE_ADDRESSES", False),
            webhook_retry=RetryPolicy(
                first_delay=timedelta(seconds=env.integer("WEBHOOK_RETRY_FIRST_SECONDS", 5, minimum=1, maximum=3600)),
                max_delay=timedelta(
                    seconds=env.integer("WEBHOOK_RETRY_MAX_SECONDS", 3600, minimum=1, maximum=24 * 3600)
                ),
                give_up_after=timedelta(
                    seconds=env.integer("WEBHOOK_RETRY_FOR_SECONDS", 24 * 3600, minimum=1, maximum=30 * 24 * 3600)
                ),
            ),
            webhook_timeout_seconds=env.integer(
                "WEBHOOK_TIMEOUT_SECONDS", cls.webhook_timeout_seconds, minimum=1, maximum=60
            ),
            lifetimes=BookingLifetimes.from_env(env, watch_seconds=watch_seconds),
            common_lifetimes=CommonLifetimes.from_env(env),
            retention=RetentionSettings.from_env(env),
        )
