"""The conference service's settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from confbook_common.auth import TokenRules
from confbook_common.retention import CommonLifetimes, RetentionSettings
from confbook_common.settings import Env

SERVICE = "conference"
SCHEMA = "conference"


@dataclass(frozen=True)
class ConferenceConfig:
    listen_address: str
    database_url: str
    amqp_url: str
    token_rules: TokenRules
    lifetimes: CommonLifetimes = field(default_factory=CommonLifetimes)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    @classmethod
    def from_env(cls, env: Env | None = None) -> Self:
        env = env or Env()
        return cls(
            listen_address=f"{env.listen_host()}:{env.grpc_port(SERVICE)}",
            database_url=env.service_database_url(SERVICE),
            amqp_url=env.service_amqp_url(SERVICE),
            token_rules=TokenRules.from_env(env),
            lifetimes=CommonLifetimes.from_env(env),
            retention=RetentionSettings.from_env(env),
        )
