"""The gateway's settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import limits

from confbook_common.auth import TokenRules
from confbook_common.settings import ConfigError, Env
from gateway.rate_limits import RateLimitSettings
from gateway.web import DEFAULT_WEB_DIR


@dataclass(frozen=True)
class GatewayConfig:
    host: str
    port: int
    conference_target: str
    booking_target: str
    waitlist_target: str
    token_rules: TokenRules
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    call_timeout_seconds: float = 5.0
    max_body_bytes: int = 64 * 1024
    # Each request, headers and body, must have arrived this long after its first byte (or after the
    # connection opened); see gateway/http_server.py.
    request_read_timeout_seconds: int = 10
    # The web page's OpenID Connect client, registered at the issuer (the dev issuer knows confbook-dev).
    oidc_client_id: str = "confbook-dev"
    web_dir: Path = DEFAULT_WEB_DIR

    @classmethod
    def from_env(cls, env: Env | None = None) -> Self:
        env = env or Env()
        return cls(
            host=env.listen_host(),
            port=env.port("GATEWAY_PORT", 8080),
            conference_target=env.grpc_target("conference"),
            booking_target=env.grpc_target("booking"),
            waitlist_target=env.grpc_target("waitlist"),
            token_rules=TokenRules.from_env(env),
            rate_limits=RateLimitSettings(
                writes=_limits(env, "GATEWAY_RATE_LIMIT_WRITES", RateLimitSettings.writes),
                failed_authentications=_limits(
                    env, "GATEWAY_RATE_LIMIT_FAILED_AUTHENTICATIONS", RateLimitSettings.failed_authentications
                ),
                storage=env.text("GATEWAY_RATE_LIMIT_STORAGE", RateLimitSettings.storage),
            ),
            request_read_timeout_seconds=env.integer(
                "GATEWAY_REQUEST_READ_TIMEOUT_SECONDS", cls.request_read_timeout_seconds, minimum=1, maximum=300
            ),
            oidc_client_id=env.text("OIDC_CLIENT_ID", cls.oidc_client_id),
            web_dir=Path(env.text("WEB_DIR", str(DEFAULT_WEB_DIR))),
        )


def _limits(env: Env, name: str, default: str) -> str:
    """A bound in the `limits` library's notation, e.g. "20/second;600/minute"."""
    value = env.text(name, default)
    try:
        limits.parse_many(value)
    except ValueError:
        raise ConfigError(f"{name} must be like '20/second;600/minute', got {value!r}") from None
    return value
