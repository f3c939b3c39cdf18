"""Engines with the timeouts every service wants."""

from __future__ import annotations

import psycopg2
import psycopg2.extensions
import sqlalchemy
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from confbook_common import tracing


def create_engine(url: str, *, application_name: str, pool_size: int = 10) -> Engine:
    # No pre-ping: it costs a round trip on every checkout. A connection found dead
    # fails its statement instead; that invalidates the pool's older connections and
    # the unit of work runs again on a fresh one (see retry_on_conflict).
    # A lock wait longer than a few seconds means something is stuck: fail the
    # request (the caller may retry) rather than pile up behind it.
    engine = sqlalchemy.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_pre_ping=False,
        connect_args={
            "application_name": application_name,
            "connect_timeout": 5,
            "options": "-c lock_timeout=5s -c statement_timeout=30s -c timezone=UTC",
        },
    )
    tracing.instrument_engine(engine)
    return engine


def is_transient_db_error(error: BaseException) -> bool:
    """The database is unreachable or timed out: worth retrying later, not a bug."""
    if isinstance(error, OperationalError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def violated_constraint(error: DBAPIError) -> str | None:
    """The name of the constraint an IntegrityError broke, as PostgreSQL reports it."""
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def listening_connection(engine: Engine, channel: str) -> psycopg2.extensions.connection:
    """A connection of its own, outside the pool and in autocommit, LISTENing on `channel`:
    its notifications arrive whenever it is readable."""
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    connection = psycopg2.connect(*args, **kwargs)
    connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    with connection.cursor() as cursor:
        cursor.execute(f'LISTEN "{channel}"')
    return connection
