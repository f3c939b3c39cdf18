"""Safe retries: a write method called with an idempotency key runs once; a retry gets the first answer.

The key's row is written in the same transaction as the effect (docs/adr/0014): a crash
before the commit leaves neither, after it both, so a retry after a lost answer replays it.
"""

from __future__ import annotations

import collections
import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    text,
)

from confbook_common import validation
from confbook_common.db import SqlUnitOfWork, retry_on_conflict
from confbook_common.errors import Conflict, DomainError, RecordedRefusal, Unprocessable
from confbook_common.rpc.errors import status_message_for
from confbook_common.rpc.metadata import metadata_value

log = logging.getLogger(__name__)

T = TypeVar("T")
Response = TypeVar("Response", bound=Message)

KEY_METADATA = "idempotency-key"
# What the gateway adds of the HTTP request (method, path, canonical JSON body), hashed.
HTTP_FINGERPRINT_METADATA = "idempotency-http-fingerprint"
REPLAYED_METADATA = "idempotent-replayed"
# Replays within this long; the rows are purged by retention (RETENTION_IDEMPOTENCY_KEYS).
KEY_LIFETIME = timedelta(hours=24)


class RequestInProgress(Conflict):
    code = "REQUEST_IN_PROGRESS"

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed; retry shortly")


class KeyReused(Unprocessable):
    code = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used for a different request (method, path or body)")


def idempotency_keys_table(metadata: MetaData) -> Table:
    """The keys of one service's write methods, in the schema of `metadata` (migrations create it)."""
    return Table(
        "idempotency_keys",
        metadata,
        Column("key", Text, primary_key=True),
        Column("fingerprint", Text, nullable=False),
        # The answer: a serialized response message, or for a refusal its gRPC code and google.rpc.Status.
        Column("response", LargeBinary),
        Column("error_code", Integer),
        Column("error_status", LargeBinary),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    """A status as gRPC's abort takes it (grpc_status builds its own the same way)."""


def fingerprint(method: str, request: Message, http_fingerprint: str | None) -> str:
    """What makes two requests with one key the same request."""
    digest = hashlib.sha256(method.encode())
    digest.update(b"\0" + request.SerializeToString(deterministic=True))
    digest.update(b"\0" + (http_fingerprint or "").encode())
    return digest.hexdigest()


class IdempotentCalls:
    """Runs a service's write methods once per idempotency key, over its `idempotency_keys` table."""

    def __init__(self, table: Table) -> None:
        self._table = table
        # Advisory locks are database-wide: the schema keeps two services' equal keys apart.
        self._namespace = f"{table.schema}:"

    def keyed(self, context: grpc.ServicerContext) -> bool:
        """Whether the call came with an idempotency key."""
        return metadata_value(context, KEY_METADATA) is not None

    def run(
        self,
        uow: SqlUnitOfWork,
        context: grpc.ServicerContext,
        method: str,
        request: Message,
        work: Callable[[], Response],
        response_type: type[Response],
        *,
        caller: str,
    ) -> Response:
        """`work()` (a use case on `uow`, and encoding its answer), at most once per key of `caller`.

        A key belongs to its caller (the token's subject): the same key from two callers is two
        keys, and one caller's answer is never replayed to another. Without a key this is just
        `work()`: the fast path stays as it is.
        """
        sent = metadata_value(context, KEY_METADATA)
        if sent is None:
            return work()
        # A key is visible ASCII without spaces, so the first space ends it: no two callers' keys meet.
        key = f"{validation.idempotency_key('idempotency-key', sent)} {caller}"
        request_fingerprint = fingerprint(method, request, metadata_value(context, HTTP_FINGERPRINT_METADATA))
        replay, response = retry_on_conflict(lambda: self._run_once(uow, key, request_fingerprint, work, response_type))
        if replay:
            context.set_trailing_metadata(((REPLAYED_METADATA, "true"),))
        return response

    def _run_once(
        self,
        uow: SqlUnitOfWork,
        key: str,
        request_fingerprint: str,
        work: Callable[[], Response],
        response_type: type[Response],
    ) -> tuple[bool, Response]:
        refusal: DomainError | None = None
        with uow.one_transaction() as connection:
            locked = connection.execute(
                text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": self._namespace + key},
            ).scalar()
            if not locked:
                raise RequestInProgress()
            row = connection.execute(
                select(self._table).where(
                    self._table.c.key == key, self._table.c.created_at > func.now() - KEY_LIFETIME
                )
            ).first()
            if row is not None:
                if row.fingerprint != request_fingerprint:
                    raise KeyReused()
                if row.response is None:
                    raise RecordedRefusal(_replayed_status(row.error_status))
                return True, response_type.FromString(row.response)
            # An expired key is free again.
            connection.execute(delete(self._table).where(self._table.c.key == key))
            savepoint = connection.begin_nested()
            try:
                response = work()
            except DomainError as error:
                # A refusal changed nothing; it is the answer, and a retry gets it again.
                savepoint.rollback()
                refusal = error
                status = status_message_for(error)
                connection.execute(
                    insert(self._table).values(
                        key=key,
                        fingerprint=request_fingerprint,
                        error_code=status.code,
                        error_status=status.SerializeToString(),
                    )
                )
            else:
                savepoint.commit()
                connection.execute(
                    insert(self._table).values(
                        key=key, fingerprint=request_fingerprint, response=response.SerializeToString()
                    )
                )
        if refusal is not None:
            raise refusal
        return False, response


def _replayed_status(serialized: bytes) -> grpc.Status:
    status = rpc_status.to_status(status_pb2.Status.FromString(serialized))
    return _Status(
        code=status.code,
        details=status.details,
        trailing_metadata=(*status.trailing_metadata, (REPLAYED_METADATA, "true")),
    )


def forget_caller(connection: Connection, table: Table, caller: str) -> int:
    """Drop every key of one caller (its person was erased); returns how many. A key's caller is
    what follows its first space (see IdempotentCalls.run). Rare: a scan of a day's keys."""
    caller_of_key = func.substr(table.c.key, func.strpos(table.c.key, " ") + 1)
    return connection.execute(delete(table).where(caller_of_key == caller)).rowcount or 0
