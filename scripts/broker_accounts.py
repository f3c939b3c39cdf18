"""Each service's RabbitMQ user, allowed only what the service does; no guest.

Provisioned through the management API with AMQP_URL's account, as the migrations
provision each service's PostgreSQL role. A service may declare and publish to
the events exchange, and publish there only the events it owns (topic
permissions on the routing key); only the waitlist service, the one consumer,
has queues, reads, and publishes to the default exchange (its offer timers).
The broker refuses a message whose user_id is not its publisher's login, and
consumers accept an event only from its owner's user (confbook_common.messaging).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from confbook_common.messaging.topology import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EVENT_OWNERS, EVENTS_EXCHANGE
from confbook_common.messaging.topology import routing_key as event_routing_key
from confbook_common.settings import SERVICES, ConfigError, Env, amqp_nodes, amqp_password, amqp_user, with_credentials

log = logging.getLogger("migrate")

_NOTHING = "^$"
_TIMEOUT_SECONDS = 10
_STARTUP_WAIT_SECONDS = 30


@dataclass(frozen=True)
class Permissions:
    """RabbitMQ's three regular expressions over resource names, and the routing keys it may publish."""

    configure: str
    write: str
    read: str
    publishes: str


def _any_of(*names: str) -> str:
    return "^(" + "|".join(names) + ")$"


def _names(*names: str) -> list[str]:
    return [re.escape(name) for name in names]


def permissions(service: str) -> Permissions:
    own_events = [event_routing_key(event) for event, owner in EVENT_OWNERS.items() if owner == service]
    publishes = _any_of(*_names(*own_events)) if own_events else _NOTHING
    if service != "waitlist":
        events = _any_of(*_names(EVENTS_EXCHANGE))
        return Permissions(configure=events, write=events, read=_NOTHING, publishes=publishes)
    # Its queues are all named waitlist.*; the dead letters are declared by the consumer that feeds them.
    queues = [*_names(EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE), r"waitlist\..+"]
    return Permissions(
        configure=_any_of(*queues),
        write=_any_of(*_names("amq.default", DEAD_LETTER_QUEUE), r"waitlist\..+"),  # binding writes to the queue
        read=_any_of(*queues),  # binding reads from the exchange
        publishes=publishes,
    )


def provision_broker_accounts(env: Env) -> None:
    """Create or update every service's user and permissions; delete guest. Idempotent."""
    api = _ManagementApi(env.amqp_management_url(), env.amqp_url())
    vhost = _vhost(env)
    for service in SERVICES:
        user = env.broker_user(service)
        password = amqp_password(env.service_amqp_url(service))
        granted = permissions(service)
        api.put(f"users/{_quote(user)}", {"password": password, "tags": ""})
        api.put(
            f"permissions/{_quote(vhost)}/{_quote(user)}",
            {"configure": granted.configure, "write": granted.write, "read": granted.read},
        )
        api.put(
            f"topic-permissions/{_quote(vhost)}/{_quote(user)}",
            {"exchange": EVENTS_EXCHANGE, "write": granted.publishes, "read": ".*"},
        )
    if amqp_user(env.amqp_url()) != "guest" and api.exists("users/guest"):
        api.delete("users/guest")  # the broker's default account, which any local process knows
        log.info("broker: deleted the guest account")
    log.info("broker accounts are up to date")


def event_publishers(env: Env) -> dict[str, str]:
    """The broker user that owns each event, by message type (its routing key)."""
    return {event_routing_key(event): env.broker_user(owner) for event, owner in EVENT_OWNERS.items()}


# Moves messages between queues on upgrades, keeping each one's publisher (queue_upgrade.py).
_MOVER = "confbook_queue_mover"


@contextmanager
def queue_mover_account(env: Env) -> Iterator[str]:
    """An AMQP URL of a broker account that exists only while the block runs, allowed to republish
    a message under its publisher's user_id (RabbitMQ's impersonator tag), so a moved event is still
    accepted from its owner."""
    api = _ManagementApi(env.amqp_management_url(), env.amqp_url())
    vhost = _vhost(env)
    password = secrets.token_urlsafe(24)
    api.put(f"users/{_MOVER}", {"password": password, "tags": "impersonator"})
    try:
        api.put(f"permissions/{_quote(vhost)}/{_MOVER}", {"configure": ".*", "write": ".*", "read": ".*"})
        yield ",".join(with_credentials(node, _MOVER, password) for node in amqp_nodes(env.amqp_url()))
    finally:
        api.delete(f"users/{_MOVER}")


def _vhost(env: Env) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(amqp_nodes(env.amqp_url())[0]).path[1:] or "/")


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


class _ManagementApi:
    def __init__(self, base_url: str, amqp_url: str) -> None:
        self._base = base_url.rstrip("/") + "/api/"
        login = f"{amqp_user(amqp_url)}:{amqp_password(amqp_url)}"
        self._authorization = "Basic " + base64.b64encode(login.encode()).decode()

    def put(self, path: str, body: dict[str, str]) -> None:
        self._call("PUT", path, json.dumps(body).encode())

    def delete(self, path: str) -> None:
        self._call("DELETE", path)

    def exists(self, path: str) -> bool:
        try:
            self._call("GET", path)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return False
            raise
        return True

    def _call(self, method: str, path: str, body: bytes | None = None) -> None:
        request = urllib.request.Request(self._base + path, data=body, method=method)
        request.add_header("Authorization", self._authorization)
        request.add_header("Content-Type", "application/json")
        # The management plugin starts a little after the broker accepts connections: wait for it.
        deadline = time.monotonic() + _STARTUP_WAIT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS):
                    return
            except urllib.error.HTTPError as error:
                if method == "GET" and error.code == 404:
                    raise
                detail = error.read(300).decode(errors="replace")
                raise ConfigError(f"RabbitMQ's management API refused {method} {path}: {error.code} {detail}") from None
            except OSError as error:  # URLError included: nothing answers there (yet)
                if time.monotonic() < deadline:
                    time.sleep(1)
                    continue
                raise ConfigError(
                    f"cannot reach RabbitMQ's management API at {self._base} ({error}); "
                    "set AMQP_MANAGEMENT_URL, or enable the rabbitmq_management plugin"
                ) from None
