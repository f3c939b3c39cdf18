"""The one mapping from domain errors to gRPC statuses, applied to every servicer."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable
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
    Forbidden,
    InvalidInput,
    NotFound,
    RecordedRefusal,
    Unauthenticated,
    Unprocessable,
)
from confbook_common.rpc.observation import MethodObservation

log = logging.getLogger(__name__)

ERROR_DOMAIN = "confbook"
# Where gRPC carries the rich google.rpc.Status of a failed call.
_DETAILS_KEY = "grpc-status-details-bin"

_CODES: list[tuple[type[DomainError], int]] = [
    (InvalidInput, code_pb2.INVALID_ARGUMENT),
    (Unprocessable, code_pb2.INVALID_ARGUMENT),
    (NotFound, code_pb2.NOT_FOUND),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (Conflict, code_pb2.FAILED_PRECONDITION),
    (Unauthenticated, code_pb2.UNAUTHENTICATED),
    (Forbidden, code_pb2.PERMISSION_DENIED),
]


def _packed(detail: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def status_for(error: DomainError) -> grpc.Status:
    """A status whose ErrorInfo.reason carries the error's stable code (e.g. CONFERENCE_STARTED)."""
    if isinstance(error, RecordedRefusal):
        return error.status
    return rpc_status.to_status(status_message_for(error))


def status_message_for(error: DomainError) -> status_pb2.Status:
    """The google.rpc.Status of a refusal: its code, message, ErrorInfo and, for bad input, BadRequest."""
    code = next((code for kind, code in _CODES if isinstance(error, kind)), code_pb2.FAILED_PRECONDITION)
    details = [_packed(error_details_pb2.ErrorInfo(reason=error.code, domain=ERROR_DOMAIN))]
    if isinstance(error, InvalidInput):
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.problem)
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    return status_pb2.Status(code=code, message=error.message, details=details)


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


def _status_of(error: Exception, method: str, context: grpc.ServicerContext) -> grpc.Status:
    """The status a handler's exception is answered with; only the unexpected is logged in full."""
    if isinstance(error, DomainError):
        return status_for(error)
    if isinstance(error, DependencyUnavailable):
        log.warning("%s: %s", method, error)
        return _unavailable(str(error))
    if is_transient_db_error(error):
        log.warning("%s: database unavailable: %s", method, error)
        return _unavailable("database unavailable, try again")
    failed = request_id.current.get() or _request_id(context)  # set by the observation, when there is one
    log.exception("%s failed (request_id=%s)", method, failed)
    message = f"internal error (request id {failed})"
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message=message))


def guarded(handler: grpc.RpcMethodHandler | None, method: str) -> grpc.RpcMethodHandler | None:
    """The handler, its exceptions turned into statuses if it is a sync unary one or an asyncio
    server stream (all our servicers' are).

    Logs only the unexpected, with the request id (the caller's x-request-id metadata when sane,
    else a new one), which the INTERNAL answer names and nothing else.
    """
    if handler is not None and handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
        return _guarded_stream(handler, method)
    if handler is None or handler.unary_unary is None or not _is_sync(handler.unary_unary):
        return handler  # other streams (health Watch, reflection), which handle their own errors
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
            except Exception as error:  # noqa: BLE001 - every failure becomes a status
                status = _status_of(error, method, context)
        return None, status

    return grpc.unary_unary_rpc_method_handler(
        guarded_call,
        request_deserializer=_lenient(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


def _guarded_stream(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    inner: Callable[..., AsyncIterator[Any]] = handler.unary_stream  # type: ignore[assignment]

    async def guarded_stream(request: Any, context: Any) -> AsyncIterator[Any]:
        if request is _UNDECODABLE:
            status = _UNDECODABLE_STATUS
        else:
            try:
                async for response in inner(request, context):
                    yield response
                return
            except Exception as error:  # noqa: BLE001 - every failure becomes a status
                status = _status_of(error, method, context)
        # Set and return rather than abort (see confbook_common.rpc.bounds._end).
        context.set_trailing_metadata(status.trailing_metadata)
        context.set_code(status.code)
        context.set_details(status.details)

    return grpc.unary_stream_rpc_method_handler(
        guarded_stream,
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
