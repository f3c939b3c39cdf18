"""The booking service's settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Self

from confbook_common.settings import Env

SERVICE = "booking"
SCHEMA = "booking"


@dataclass(frozen=True)
class BookingConfig:
    listen_address: str
    database_url: str
    amqp_url: str
    conference_target: str
    confirmation_window: timedelta
    promotion_token: str

    @classmethod
    def from_env(cls, env: Env | None = None) -> Self:
        env = env or Env()
        return cls(
            listen_address=f"{env.listen_host()}:{env.grpc_port(SERVICE)}",
            database_url=env.service_database_url(SERVICE),
            amqp_url=env.service_amqp_url(SERVICE),
            conference_target=env.grpc_target("conference"),
            confirmation_window=timedelta(seconds=env.confirmation_window_seconds()),
            promotion_token=env.promotion_token(),
        )
