"""The one mapping from domain errors to gRPC statuses, applied to every servicer."""

from __future__ import annotations

import inspect
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
from confbook_common.rpc.observation import MethodObservation

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


def guarded(handler: grpc.RpcMethodHandler | None, method: str) -> grpc.RpcMethodHandler | None:
    """The handler, its exceptions turned into statuses if it is a sync unary one (all our servicers' are).

    Logs only the unexpected, with the request id (the caller's x-request-id metadata when sane,
    else a new one), which the INTERNAL answer names and nothing else.
    """
    if handler is None or handler.unary_unary is None or not _is_sync(handler.unary_unary):
        return handler  # streaming (health Watch, reflection), which handle their own errors
    inner = handler.unary_unary
    observation = MethodObservation(method)

    def guarded_call(request: Any, context: grpc.ServicerContext) -> Any:
        with observation.begin(context) as call:
            response, status = _answer(request, context)
            if status is None:
                return response
            call.code = status.code
            # What abort_with_status() does, which the asyncio server's context for sync handlers lacks; and
            # there abort() sends the status without raising, so nothing may follow it.
            context.set_trailing_metadata(status.trailing_metadata)
            context.abort(status.code, status.details)
            return None

    def _answer(request: Any, context: grpc.ServicerContext) -> tuple[Any, grpc.Status | None]:
        """The response, or the status the call fails with."""
        if request is _UNDECODABLE:
            status = _UNDECODABLE_STATUS
        else:
            try:
                return inner(request, context), None
            except DomainError as error:
                status = status_for(error)
            except DependencyUnavailable as error:
                log.warning("%s: %s", method, error)
                status = _unavailable(str(error))
            except Exception as error:
                if is_transient_db_error(error):
                    log.warning("%s: database unavailable: %s", method, error)
                    status = _unavailable("database unavailable, try again")
                else:
                    failed = request_id.current.get()
                    log.exception("%s failed (request_id=%s)", method, failed)
                    message = f"internal error (request id {failed})"
                    status = rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message=message))
        return None, status

    return grpc.unary_unary_rpc_method_handler(
        guarded_call,
        request_deserializer=_lenient(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


def _is_sync(behavior: Callable[..., Any]) -> bool:
    return not inspect.iscoroutinefunction(behavior)


class ErrorMappingInterceptor(grpc.ServerInterceptor):
    """`guarded` on every call of a grpc.server (the services wrap their handlers once, at registration)."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        return guarded(continuation(handler_call_details), handler_call_details.method)
