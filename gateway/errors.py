"""One error body for every failure, and the one table from gRPC status to HTTP status."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from confbook_common import request_id
from confbook_common.idempotency import REPLAYED_METADATA
from confbook_common.rpc.errors import error_reason
from gateway.models import RULE_ERROR

log = logging.getLogger(__name__)

REPLAYED_HEADER = "Idempotent-Replayed"

HTTP_STATUS_BY_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}

# Refusals whose HTTP status says more than their gRPC code can.
HTTP_STATUS_BY_REASON = {"IDEMPOTENCY_KEY_REUSED": 422}

# When a service sent no ErrorInfo reason, the code is named after the status.
_DEFAULT_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "BODY_TOO_LARGE",
    503: "SERVICE_UNAVAILABLE",
}


# What FastAPI says of a body it could not decode at all (not UTF-8, nested too deep for the parser).
_UNPARSABLE_BODY = "There was an error parsing the body"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}}, headers=headers)


def challenge_headers(status: int, reason: str | None, message: str) -> dict[str, str]:
    """RFC 6750's WWW-Authenticate for a refusal a service gave (its token expired since the gateway looked)."""
    if status == 401:
        return {"WWW-Authenticate": f'Bearer realm="confbook", error="invalid_token", error_description="{message}"'}
    if status == 403 and reason == "ROLE_REQUIRED":
        return {"WWW-Authenticate": 'Bearer realm="confbook", error="insufficient_scope"'}
    return {}


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    status = HTTP_STATUS_BY_GRPC.get(error.code())
    if status is None:
        log.error(
            "unexpected gRPC failure (request_id=%s): %s %s", request_id.current.get(), error.code(), error.details()
        )
        return ApiError(500, "INTERNAL_ERROR", "internal error")
    if status == 503:
        log.warning(
            "service unavailable (request_id=%s): %s %s", request_id.current.get(), error.code(), error.details()
        )
        return ApiError(503, "SERVICE_UNAVAILABLE", "a service is unavailable; try again shortly")
    reason = error_reason(error)
    status = HTTP_STATUS_BY_REASON.get(reason or "", status)
    message = error.details() or ""
    code = "UNAUTHENTICATED" if status == 401 else reason or _DEFAULT_CODES[status]
    return ApiError(status, code, message, headers=challenge_headers(status, reason, message))


def from_validation_error(error: RequestValidationError) -> ApiError:
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return ApiError(400, "INVALID_JSON", "the request body is not valid JSON")
    if first["type"] == RULE_ERROR:  # a shared rule's own message, the one the service would give
        return ApiError(400, "VALIDATION_ERROR", str(first["ctx"]["message"]))
    location = first["loc"][1:]  # drop "body" / "path" / "query"
    if not location and first["type"] in ("missing", "model_attributes_type", "dict_type"):
        return ApiError(400, "VALIDATION_ERROR", "the request body must be a JSON object")
    # topics[1], as the services name a list entry; a name is cut short, being the client's own key
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{str(part)[:40]}" for part in location).lstrip(".")
    message = str(first["msg"])
    return ApiError(400, "VALIDATION_ERROR", f"{field}: {message}" if field else message)


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """Every method some route serves at the request's path, for a 405's Allow header."""
    methods = set()
    for route in app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _rate_limit(request: Request) -> dict[str, str]:
    """The RateLimit headers of a write (gateway.auth), which a refusal carries as an answer does."""
    headers: dict[str, str] = getattr(request.state, "rate_limit_headers", {})
    return headers


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, {**_rate_limit(request), **error.headers})

    @app.exception_handler(grpc.aio.AioRpcError)
    async def rpc_error(request: Request, error: grpc.aio.AioRpcError) -> JSONResponse:
        api = from_rpc_error(error)
        response = error_response(api.status, api.code, api.message, {**_rate_limit(request), **api.headers})
        if (REPLAYED_METADATA, "true") in tuple(error.trailing_metadata() or ()):
            response.headers[REPLAYED_HEADER] = "true"  # the first answer to this Idempotency-Key, again
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        api = from_validation_error(error)
        return error_response(api.status, api.code, api.message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        code = _DEFAULT_CODES.get(error.status_code, "HTTP_ERROR")
        detail = error.detail if isinstance(error.detail, str) else "request failed"
        if error.status_code == 400 and detail == _UNPARSABLE_BODY:
            code, detail = "INVALID_JSON", "the request body is not valid JSON"
        response = error_response(error.status_code, code, detail)
        if error.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(app, dict(request.scope)))
        return response

    # Any other exception reaches gateway.edge, which logs it with the request id and answers 500.
