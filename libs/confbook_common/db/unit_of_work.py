"""One database transaction around one command, and retrying it after a lost race."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import ParamSpec, Self, TypeVar

from sqlalchemy import Connection, Transaction
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from confbook_common.db.engine import sqlstate

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

# serialization_failure, deadlock_detected: the transaction did nothing and may simply run again.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


class SqlUnitOfWork:
    """A transaction on one connection; subclasses open their repositories on it.

    Nothing is kept unless `commit()` is called inside the `with` block.
    """

    connection: Connection
    _transaction: Transaction

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._shared: Connection | None = None

    @contextmanager
    def one_transaction(self) -> Iterator[Connection]:
        """One transaction that every `with self` and `autocommit()` inside the block joins, as a
        savepoint; committed when the block ends without an exception. For work that must be kept
        or lost together with a record of its own (an idempotency key and its answer)."""
        with self._engine.connect() as connection, connection.begin():
            self._shared = connection
            try:
                yield connection
            finally:
                self._shared = None

    def __enter__(self) -> Self:
        if self._shared is not None:
            self.connection = self._shared
            self._transaction = self._shared.begin_nested()
        else:
            self.connection = self._engine.connect()
            self._transaction = self.connection.begin()
        self._open_repositories(self.connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            if self._shared is None:
                self.connection.close()

    def commit(self) -> None:
        self._transaction.commit()

    @contextmanager
    def autocommit(self) -> Iterator[Self]:
        """The same repositories with each statement its own transaction.

        For a read of one statement, or for a use case done by one stored function:
        then BEGIN and COMMIT cost no round trips of their own. Whatever the block
        executes is kept as it goes; there is nothing to commit or roll back.
        Inside `one_transaction()` the block is a savepoint of that transaction instead.
        """
        if self._shared is not None:
            with self._shared.begin_nested():
                self.connection = self._shared
                self._open_repositories(self._shared)
                yield self
            return
        with self._engine.connect() as connection:
            # psycopg's own switch, which costs nothing on the wire; SQLAlchemy's isolation_level
            # option would send a SET to reset the session each time the connection goes back.
            driver_connection = connection.connection.dbapi_connection
            assert driver_connection is not None
            driver_connection.autocommit = True
            try:
                self.connection = connection
                self._open_repositories(connection)
                yield self
            finally:
                if not driver_connection.closed:
                    driver_connection.autocommit = False

    def _open_repositories(self, connection: Connection) -> None:
        """Bind the service's repositories to `connection`."""


def _is_retryable(error: DBAPIError) -> bool:
    # A dropped connection (the server restarted, say) surfaces at the first statement on it:
    # run again on a fresh one. Should it drop during a COMMIT, the retry meets the committed
    # effect (a duplicate booking is refused by the database), never a second one.
    return error.connection_invalidated or sqlstate(error) in _RETRYABLE_SQLSTATES


def retries_on_conflict(handler: Callable[P, T]) -> Callable[P, T]:
    """Decorate a handler that opens its own transaction(s) so a lost race runs it again."""

    @functools.wraps(handler)
    def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
        return retry_on_conflict(functools.partial(handler, *args, **kwargs))

    return retrying


def retry_on_conflict(work: Callable[[], T], *, attempts: int = 5) -> T:
    """Run `work` (which opens its own transaction) again after a deadlock or serialization failure."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as error:
            if attempt == attempts or not _is_retryable(error):
                raise
            if error.connection_invalidated:
                log.warning("database connection lost (%s), retrying on a new one", error.orig)
                continue
            log.info("transaction lost a race (%s), retrying", sqlstate(error))
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")
