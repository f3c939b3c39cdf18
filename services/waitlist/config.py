"""The waitlist service's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Self

from confbook_common.auth import TokenRules
from confbook_common.retention import CommonLifetimes, RetentionSettings, lifetime
from confbook_common.settings import SERVICES, Env

SERVICE = "waitlist"
SCHEMA = "waitlist"
CLOSED_OFFERS_LIFETIME = ("RETENTION_CLOSED_OFFERS", timedelta(days=30))


@dataclass(frozen=True)
class WaitlistConfig:
    listen_address: str
    database_url: str
    amqp_url: str
    booking_target: str
    confirmation_window_seconds: int
    # Each service's broker user: whom the events it owns are accepted from.
    broker_users: Mapping[str, str]
    promotion_token: str
    token_rules: TokenRules
    lifetimes: CommonLifetimes = field(default_factory=CommonLifetimes)
    closed_offers_lifetime: timedelta = CLOSED_OFFERS_LIFETIME[1]
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    @classmethod
    def from_env(cls, env: Env | None = None) -> Self:
        env = env or Env()
        return cls(
            listen_address=f"{env.listen_host()}:{env.grpc_port(SERVICE)}",
            database_url=env.service_database_url(SERVICE),
            amqp_url=env.service_amqp_url(SERVICE),
            booking_target=env.grpc_target("booking"),
            confirmation_window_seconds=env.confirmation_window_seconds(),
            broker_users={service: env.broker_user(service) for service in SERVICES},
            promotion_token=env.promotion_token(),
            token_rules=TokenRules.from_env(env),
            lifetimes=CommonLifetimes.from_env(env),
            closed_offers_lifetime=lifetime(env, CLOSED_OFFERS_LIFETIME),
            retention=RetentionSettings.from_env(env),
        )
