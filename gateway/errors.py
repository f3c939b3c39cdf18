"""One error body for every failure, and the one table from gRPC status to HTTP status."""

from __future__ import annotations

import logging

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from confbook_common.rpc.errors import error_reason

log = logging.getLogger(__name__)

HTTP_STATUS_BY_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}

# When a service sent no ErrorInfo reason, the code is named after the status.
_DEFAULT_CODES = {
    400: "VALIDATION_ERROR",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "BODY_TOO_LARGE",
    503: "SERVICE_UNAVAILABLE",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    status = HTTP_STATUS_BY_GRPC.get(error.code())
    if status is None:
        log.error("unexpected gRPC failure: %s %s", error.code(), error.details())
        return ApiError(500, "INTERNAL_ERROR", "internal error")
    if status == 503:
        log.warning("service unavailable: %s %s", error.code(), error.details())
        return ApiError(503, "SERVICE_UNAVAILABLE", "a service is unavailable; try again shortly")
    return ApiError(status, error_reason(error) or _DEFAULT_CODES[status], error.details() or "")


def from_validation_error(error: RequestValidationError) -> ApiError:
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return ApiError(400, "INVALID_JSON", "the request body is not valid JSON")
    location = [str(part) for part in first["loc"][1:]]  # drop "body" / "path" / "query"
    if not location and first["type"] in ("missing", "model_attributes_type", "dict_type"):
        return ApiError(400, "VALIDATION_ERROR", "the request body must be a JSON object")
    field = ".".join(location)
    message = str(first["msg"])
    return ApiError(400, "VALIDATION_ERROR", f"{field}: {message}" if field else message)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message)

    @app.exception_handler(grpc.aio.AioRpcError)
    async def rpc_error(_: Request, error: grpc.aio.AioRpcError) -> JSONResponse:
        api = from_rpc_error(error)
        return error_response(api.status, api.code, api.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        api = from_validation_error(error)
        return error_response(api.status, api.code, api.message)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        code = _DEFAULT_CODES.get(error.status_code, "HTTP_ERROR")
        detail = error.detail if isinstance(error.detail, str) else "request failed"
        return error_response(error.status_code, code, detail)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "INTERNAL_ERROR", "internal error")
