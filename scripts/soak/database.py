"""Read-only connections to each service's schema, for waiting and for the checks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine


class Databases:
    def __init__(self, urls: Mapping[str, str]) -> None:
        """`urls`: for each service, a login that can read its schema."""
        self._engines: dict[str, Engine] = {
            service: create_engine(url, pool_size=1, pool_pre_ping=True) for service, url in urls.items()
        }

    @contextmanager
    def snapshot(self, service: str) -> Iterator[Connection]:
        """One REPEATABLE READ transaction: every query inside sees the same moment."""
        engine = self._engines[service].execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with engine.connect() as connection, connection.begin():
            yield connection

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
