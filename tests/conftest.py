"""Shared fixtures: private PostgreSQL and RabbitMQ for the whole run, a fresh database, test levels."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy.engine import make_url

from confbook_common.messaging.topology import DEAD_LETTER_QUEUE
from confbook_common.settings import Env
from scripts import infra
from scripts.migrate import migrate_all
from services.waitlist.adapters import topology as waitlist_topology

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".run" / "test"
# Ports apart from the defaults, so a stack started with `make up` is never touched, and below
# Linux's ephemeral range (32768-60999), where a closing connection can hold a port for a minute.
DEFAULT_TEST_DATABASE_URL = "postgresql://confbook:confbook@127.0.0.1:15432/confbook_test"
DEFAULT_TEST_AMQP_URL = "amqp://guest:guest@127.0.0.1:15673/%2F"
# The end-to-end stack's confirmation window: short, so expiry is seen in seconds.
E2E_WINDOW_SECONDS = 3

_LEVELS = ["unit", "servicer", "integration", "e2e"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder and run the fast levels first."""
    for item in items:
        level = Path(str(item.fspath)).parent.name
        if level in _LEVELS:
            item.add_marker(getattr(pytest.mark, level))

    def rank(item: pytest.Item) -> int:
        marks = {mark.name for mark in item.iter_markers()}
        return next((index for index, level in enumerate(_LEVELS) if level in marks), len(_LEVELS))

    items.sort(key=rank)


@dataclass(frozen=True)
class Infra:
    database_url: str
    amqp_url: str
    broker_is_ours: bool

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a process of the stack gets to use this infrastructure."""
        return {"DATABASE_URL": self.database_url, "AMQP_URL": self.amqp_url, **extra}

    def service_database_url(self, service: str) -> str:
        return Env(self.env()).service_database_url(service)


def _recreate_database(database_url: str) -> None:
    url = make_url(database_url)
    connection = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname="postgres"
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(url.database)))
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
    connection.close()


def _empty_broker(amqp_url: str) -> None:
    """Drop the queues an earlier run may have left messages in."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    for queue in (
        waitlist_topology.SEAT_RELEASED_QUEUE,
        waitlist_topology.OFFER_MADE_QUEUE,
        waitlist_topology.CONFERENCE_STARTED_QUEUE,
        waitlist_topology.OFFER_EXPIRED_QUEUE,
        waitlist_topology.offer_timer_queue(E2E_WINDOW_SECONDS),
        DEAD_LETTER_QUEUE,
    ):
        channel.queue_delete(queue)
    connection.close()


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infra]:
    """PostgreSQL and RabbitMQ at the test URLs (private ones started if none answer), with a fresh database."""
    database_url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL
    amqp_url = os.environ.get("TEST_AMQP_URL") or DEFAULT_TEST_AMQP_URL
    outcomes = infra.up(STATE_DIR, database_url, amqp_url)
    try:
        _recreate_database(database_url)
        migrate_all(Env({"DATABASE_URL": database_url}))
        _empty_broker(amqp_url)
        yield Infra(database_url, amqp_url, broker_is_ours=outcomes[infra.RABBITMQ] is not infra.Outcome.REUSED)
    finally:
        infra.down(STATE_DIR)
