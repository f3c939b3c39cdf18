"""Reading configuration from the environment, once, at start-up."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "postgresql://confbook:confbook@127.0.0.1:5432/confbook"
DEFAULT_AMQP_URL = "amqp://confbook:confbook@127.0.0.1:5672/%2F"
# Where RabbitMQ's management API listens, unless AMQP_MANAGEMENT_URL says: the AMQP port plus this
# (5672 → 15672, RabbitMQ's own convention).
MANAGEMENT_PORT_OFFSET = 10000
DEFAULT_GRPC_PORTS = {"conference": 50051, "booking": 50052, "waitlist": 50053}
SERVICES = tuple(DEFAULT_GRPC_PORTS)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LONGEST_DURATION = timedelta(days=100 * 365)


class ConfigError(Exception):
    """A setting is missing or malformed; the process should not start."""


class Env:
    """Typed access to environment variables with defaults."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def text(self, name: str, default: str) -> str:
        value = self._environ.get(name, "").strip()
        return value or default

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    def duration(self, name: str, default: timedelta, *, minimum: timedelta = timedelta(seconds=1)) -> timedelta:
        """A length of time: whole seconds, or a number with a unit: `90s`, `15m`, `12h`, `30d`."""
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        unit = raw[-1] if raw[-1] in _DURATION_UNITS else "s"
        number = raw[:-1] if raw[-1] in _DURATION_UNITS else raw
        if not number.isdigit():
            raise ConfigError(f"{name} must be a whole number of seconds or like 90s, 15m, 12h, 30d; got {raw!r}")
        value = timedelta(seconds=int(number) * _DURATION_UNITS[unit])
        if value < minimum or value > _LONGEST_DURATION:
            raise ConfigError(f"{name} must be between {minimum} and {_LONGEST_DURATION.days} days, got {raw!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, minimum=1, maximum=65535)

    def listen_host(self) -> str:
        return self.text("LISTEN_HOST", "127.0.0.1")

    def grpc_port(self, service: str) -> int:
        return self.port(f"{service.upper()}_GRPC_PORT", DEFAULT_GRPC_PORTS[service])

    def grpc_target(self, service: str) -> str:
        """Where clients reach a service: <SERVICE>_GRPC_HOST (default loopback) and its port."""
        host = self.text(f"{service.upper()}_GRPC_HOST", "127.0.0.1")
        return f"{host}:{self.grpc_port(service)}"

    def amqp_url(self) -> str:
        """The broker and an account allowed to create users and queues (migrations only).

        A comma-separated list names the nodes of a cluster; clients try them in turn.
        """
        return self.text("AMQP_URL", DEFAULT_AMQP_URL)

    def service_amqp_url(self, service: str) -> str:
        """A service connects to the broker as its own user, allowed only what it needs.

        <SERVICE>_AMQP_URL wins; otherwise AMQP_URL's nodes with the service's user and
        <SERVICE>_AMQP_PASSWORD (default: the user name, for local use).
        """
        explicit = self.text(f"{service.upper()}_AMQP_URL", "")
        if explicit:
            return explicit
        user = service_account(service)
        password = self.text(f"{service.upper()}_AMQP_PASSWORD", user)
        return ",".join(with_credentials(url, user, password) for url in amqp_nodes(self.amqp_url()))

    def broker_user(self, service: str) -> str:
        """The RabbitMQ user a service publishes as: what consumers accept its events from."""
        return amqp_user(self.service_amqp_url(service))

    def amqp_management_url(self) -> str:
        """RabbitMQ's management API (provisioning users and permissions), with AMQP_URL's account."""
        explicit = self.text("AMQP_MANAGEMENT_URL", "")
        if explicit:
            return explicit
        node = urllib.parse.urlsplit(amqp_nodes(self.amqp_url())[0])
        scheme = "https" if node.scheme == "amqps" else "http"
        port = (node.port or (5671 if node.scheme == "amqps" else 5672)) + MANAGEMENT_PORT_OFFSET
        host = f"[{node.hostname}]" if node.hostname and ":" in node.hostname else node.hostname
        return f"{scheme}://{host}:{port}"

    def admin_database_url(self) -> str:
        """The database and an account allowed to create roles and schemas (migrations only)."""
        return self.text("DATABASE_URL", DEFAULT_DATABASE_URL)

    def service_database_url(self, service: str) -> str:
        """A service connects as its own role, which can touch only its own schema.

        <SERVICE>_DATABASE_URL wins; otherwise DATABASE_URL's server and database with the
        service's role and <SERVICE>_DB_PASSWORD (default: the role name, for local use).
        """
        explicit = self.text(f"{service.upper()}_DATABASE_URL", "")
        if explicit:
            return explicit
        role = service_account(service)
        password = self.text(f"{service.upper()}_DB_PASSWORD", role)
        url = make_url(self.admin_database_url()).set(username=role, password=password)
        return url.render_as_string(hide_password=False)

    def workers(self) -> int:
        """Processes per service (and for the gateway): by default one per core."""
        return self.integer("WORKERS", len(os.sched_getaffinity(0)), minimum=1, maximum=64)

    def promotion_token(self) -> str:
        """The secret the waitlist service shows the booking service's PromotionService; no default."""
        token = self.text("PROMOTION_TOKEN", "")
        if len(token) < 16:
            raise ConfigError(
                "PROMOTION_TOKEN must be set to a secret of at least 16 characters, the same for "
                "the booking and waitlist services (e.g. `openssl rand -hex 32`)"
            )
        return token

    def confirmation_window_seconds(self) -> int:
        return self.integer("CONFIRMATION_WINDOW_SECONDS", 3600, minimum=1, maximum=7 * 24 * 3600)


def service_account(service: str) -> str:
    """The PostgreSQL role and RabbitMQ user a service logs in as; prefixed so a shared server has no clash."""
    return f"confbook_{service}"


def amqp_nodes(url: str) -> list[str]:
    """The node URLs of an AMQP_URL (one, or a cluster's, comma-separated)."""
    return [node.strip() for node in url.split(",") if node.strip()]


def amqp_user(url: str) -> str:
    """The user a connection to `url` authenticates as."""
    return urllib.parse.unquote(urllib.parse.urlsplit(amqp_nodes(url)[0]).username or "")


def amqp_password(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(amqp_nodes(url)[0]).password or "")


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    address = parts.netloc.rpartition("@")[2]
    login = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{login}@{address}"))
