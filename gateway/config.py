"""The gateway's settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from confbook_common.settings import Env


@dataclass(frozen=True)
class GatewayConfig:
    host: str
    port: int
    conference_target: str
    booking_target: str
    waitlist_target: str
    call_timeout_seconds: float = 5.0
    max_body_bytes: int = 64 * 1024
    # Each request, headers and body, must have arrived this long after its first byte (or after the
    # connection opened); see gateway/http_server.py.
    request_read_timeout_seconds: int = 10

    @classmethod
    def from_env(cls, env: Env | None = None) -> Self:
        env = env or Env()
        return cls(
            host=env.listen_host(),
            port=env.port("GATEWAY_PORT", 8080),
            conference_target=env.grpc_target("conference"),
            booking_target=env.grpc_target("booking"),
            waitlist_target=env.grpc_target("waitlist"),
            request_read_timeout_seconds=env.integer(
                "GATEWAY_REQUEST_READ_TIMEOUT_SECONDS", cls.request_read_timeout_seconds, minimum=1, maximum=300
            ),
        )
