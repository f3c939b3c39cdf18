"""Shared fixtures: private PostgreSQL and RabbitMQ for the whole run, a fresh database, test levels."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from scripts import sandbox
from scripts.sandbox import Infrastructure

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".run" / "test"
# Ports apart from the defaults, so a stack started with `make up` is never touched, and below
# Linux's ephemeral range (32768-60999), where a closing connection can hold a port for a minute.
DEFAULT_TEST_DATABASE_URL = "postgresql://confbook:confbook@127.0.0.1:15432/confbook_test"
DEFAULT_TEST_AMQP_URL = "amqp://confbook:confbook@127.0.0.1:15673/%2F"
# The end-to-end stack's confirmation window: short, so expiry is seen in seconds.
E2E_WINDOW_SECONDS = 3

_LEVELS = ["unit", "servicer", "integration", "e2e"]

# Property-based tests: a short run in `make test`, the long one in `make fuzz` (FUZZ=long).
LONG_FUZZ = os.environ.get("FUZZ") == "long"
settings.register_profile(
    "quick", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile(
    "long", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("long" if LONG_FUZZ else "quick")


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


def amqp_url_for_tests() -> str:
    return os.environ.get("TEST_AMQP_URL") or DEFAULT_TEST_AMQP_URL


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    """PostgreSQL and RabbitMQ at the test URLs (private ones started if none answer), a fresh database."""
    infrastructure = sandbox.prepare(
        STATE_DIR,
        os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL,
        amqp_url_for_tests(),
        window_seconds=E2E_WINDOW_SECONDS,
    )
    try:
        yield infrastructure
    finally:
        sandbox.release(infrastructure)
