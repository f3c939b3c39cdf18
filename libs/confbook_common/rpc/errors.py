"""The one mapping from domain errors to gRPC statuses, applied to every servicer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from confbook_common import request_id
from confbook_common.db import is_transient_db_error
from confbook_common.errors import (
    AlreadyExists,
    Conflict,
    DependencyUnavailable,
    DomainError,
    InvalidInput,
    NotFound,
    Unauthenticated,
)

log = logging.getLogger(__name__)

ERROR_DOMAIN = "confbook"
# Where gRPC carries the rich google.rpc.Status of a failed call.
_DETAILS_KEY = "grpc-status-details-bin"

_CODES: list[tuple[type[DomainError], int]] = [
    (InvalidInput, code_pb2.INVALID_ARGUMENT),
    (NotFound, code_pb2.NOT_FOUND),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (Conflict, code_pb2.FAILED_PRECONDITION),
    (Unauthenticated, code_pb2.UNAUTHENTICATED),
]


def _packed(detail: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def status_for(error: DomainError) -> grpc.Status:
    """A status whose ErrorInfo.reason carries the error's stable code (e.g. CONFERENCE_STARTED)."""
    code = next((code for kind, code in _CODES if isinstance(error, kind)), code_pb2.FAILED_PRECONDITION)
    details = [_packed(error_details_pb2.ErrorInfo(reason=error.code, domain=ERROR_DOMAIN))]
    if isinstance(error, InvalidInput):
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.problem)
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    return rpc_status.to_status(status_pb2.Status(code=code, message=error.message, details=details))


def _unavailable(message: str) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason="SERVICE_UNAVAILABLE", domain=ERROR_DOMAIN)
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[_packed(info)]))


def error_reason(error: grpc.RpcError) -> str | None:
    """The ErrorInfo.reason a server attached to a failed call (sync or asyncio), if any."""
    metadata: Iterable[tuple[str, bytes]] = error.trailing_metadata() or ()  # type: ignore[assignment]
    for key, value in metadata:
        if key != _DETAILS_KEY:
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return info.reason
    return None


class _Undecodable:
    """Stands in for a request whose bytes did not parse, so that it is refused as INVALID_ARGUMENT:
    gRPC itself would answer INTERNAL."""


_UNDECODABLE = _Undecodable()
_UNDECODABLE_STATUS = status_for(InvalidInput("request", "is not a valid protobuf message for this method"))


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError):  # malformed bytes; invalid UTF-8 in a string field
            return _UNDECODABLE

    return deserialize


def _request_id(context: grpc.ServicerContext) -> str:
    sent = next((value for key, value in context.invocation_metadata() if key == request_id.GRPC_METADATA_KEY), None)
    return request_id.accept(sent if isinstance(sent, str) else None)


class ErrorMappingInterceptor(grpc.ServerInterceptor):
    """Turns exceptions escaping a unary handler into statuses; logs only the unexpected, with the
    request id (the caller's x-request-id metadata when sane, else a new one)."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming: health Watch and reflection, which handle their own errors
        inner = handler.unary_unary
        method = handler_call_details.method

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            if request is _UNDECODABLE:
                context.abort_with_status(_UNDECODABLE_STATUS)
            try:
                return inner(request, context)
            except DomainError as error:
                status = status_for(error)
            except DependencyUnavailable as error:
                log.warning("%s: %s", method, error)
                status = _unavailable(str(error))
            except Exception as error:
                if not is_transient_db_error(error):
                    failed = _request_id(context)
                    log.exception("%s failed (request_id=%s)", method, failed)
                    context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {failed})")
                log.warning("%s: database unavailable: %s", method, error)
                status = _unavailable("database unavailable, try again")
            context.abort_with_status(status)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
