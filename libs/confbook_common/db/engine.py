"""Engines with the timeouts every service wants, on psycopg 3 (docs/adr/0020)."""

from __future__ import annotations

import psycopg
import sqlalchemy
from psycopg import sql
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from confbook_common import tracing


def _with_psycopg(url: str) -> URL:
    """The URL with psycopg 3 as its driver, whichever PostgreSQL driver it names (or none)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string()}")
    return parsed.set(drivername="postgresql+psycopg")


def create_engine(url: str, *, application_name: str, pool_size: int = 10) -> Engine:
    """A pool of psycopg 3 connections. psycopg binds parameters on the server and prepares a
    statement once a connection has run it a few times (prepare_threshold, 5): from then on
    PostgreSQL only executes it there, with no parse and no plan."""
    # No pre-ping: it costs a round trip on every checkout. A connection found dead
    # fails its statement instead; that invalidates the pool's older connections and
    # the unit of work runs again on a fresh one (see retry_on_conflict).
    # A lock wait longer than a few seconds means something is stuck: fail the
    # request (the caller may retry) rather than pile up behind it.
    engine = sqlalchemy.create_engine(
        _with_psycopg(url),
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


def sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE PostgreSQL gave with the error, if it gave one."""
    return _diagnostic(error, "sqlstate")


def violated_constraint(error: DBAPIError) -> str | None:
    """The name of the constraint an IntegrityError broke, as PostgreSQL reports it."""
    return _diagnostic(error, "constraint_name")


def _diagnostic(error: DBAPIError, field: str) -> str | None:
    # Both drivers (psycopg for the services, psycopg2 for the tools) put the server's fields in `diag`.
    return getattr(getattr(error.orig, "diag", None), field, None)


def listening_connection(engine: Engine, channel: str) -> psycopg.Connection[tuple[object, ...]]:
    """A connection of its own, outside the pool and in autocommit, LISTENing on `channel`:
    its notifications arrive whenever it is readable."""
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs.pop("context", None)  # SQLAlchemy's adapters, for its own connections only
    connection = psycopg.connect(**kwargs, autocommit=True)
    connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
    return connection
