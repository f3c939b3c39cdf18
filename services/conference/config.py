"""The conference service's settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from confbook_common.auth import TokenRules
from confbook_common.settings import Env

SERVICE = "conference"
SCHEMA = "conference"


@dataclass(frozen=True)
class ConferenceConfig:
    listen_address: str
    database_url: str
    amqp_url: str
    token_rules: TokenRules

    @classmethod
    def from_env(cls, env: Env | None = None) -> Self:
        env = env or Env()
        return cls(
            listen_address=f"{env.listen_host()}:{env.grpc_port(SERVICE)}",
            database_url=env.service_database_url(SERVICE),
            amqp_url=env.service_amqp_url(SERVICE),
            token_rules=TokenRules.from_env(env),
        )
