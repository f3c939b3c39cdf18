"""What one client may hold of a service: connections, streams and their lifetimes, all bounded (docs/adr/0011)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Self

import grpc

from confbook_common.settings import Env

# Streams one HTTP/2 connection may have open at once; a client past it waits for one to end.
MAX_STREAMS_PER_CONNECTION = 256
# Calls beyond the open streams that may wait for one of the threads running the servicers.
MAX_QUEUED_CALLS = 1000
# A connection with no call for this long is closed; the gateway's channels simply reconnect.
_CONNECTION_IDLE_MS = 5 * 60 * 1000
# Every connection is told to go away after this long (each one a little sooner or later, by
# gRPC's jitter), and closed once its calls had the grace to finish; clients reconnect, which
# also spreads connections again over workers and replicas.
_CONNECTION_AGE_MS = 30 * 60 * 1000
_CONNECTION_AGE_GRACE_MS = 30 * 1000
# A connection that has not finished the HTTP/2 handshake by then is dropped.
_HANDSHAKE_TIMEOUT_MS = 10 * 1000
# Peers that vanished without closing are found by our pings; clients pinging more often than
# this with no call under way are told to go away after a few strikes.
_KEEPALIVE_MS = 60 * 1000
_KEEPALIVE_TIMEOUT_MS = 20 * 1000
_MIN_CLIENT_PING_INTERVAL_MS = 60 * 1000
_MAX_PING_STRIKES = 2


@dataclass(frozen=True)
class StreamBounds:
    """Bounds on the streaming calls (reflection, health Watch): how many, how idle, how long."""

    idle_seconds: int = 30
    max_seconds: int = 600
    max_streams: int = 1000

    @classmethod
    def from_env(cls, env: Env | None = None) -> Self:
        env = env or Env()
        default = cls()
        return cls(
            idle_seconds=env.integer("GRPC_STREAM_IDLE_SECONDS", default.idle_seconds, minimum=1, maximum=3600),
            max_seconds=env.integer("GRPC_STREAM_MAX_SECONDS", default.max_seconds, minimum=1, maximum=24 * 3600),
            max_streams=env.integer("GRPC_MAX_STREAMS", default.max_streams, minimum=1, maximum=100_000),
        )

    @property
    def max_concurrent_rpcs(self) -> int:
        """The server's own last bound, on every call at once."""
        return self.max_streams + MAX_QUEUED_CALLS


def server_options() -> list[tuple[str, int]]:
    """The connection-level bounds, as grpc.aio.server options."""
    return [
        # Worker processes and replicas on one host share the port; the kernel spreads connections.
        # `make up` and the test stacks check that a port is free before starting anything on it.
        ("grpc.so_reuseport", 1),
        ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
        ("grpc.max_connection_idle_ms", _CONNECTION_IDLE_MS),
        ("grpc.max_connection_age_ms", _CONNECTION_AGE_MS),
        ("grpc.max_connection_age_grace_ms", _CONNECTION_AGE_GRACE_MS),
        ("grpc.server_handshake_timeout_ms", _HANDSHAKE_TIMEOUT_MS),
        ("grpc.keepalive_time_ms", _KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", _KEEPALIVE_TIMEOUT_MS),
        ("grpc.http2.min_ping_interval_without_data_ms", _MIN_CLIENT_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", _MAX_PING_STRIKES),
    ]


class StreamLimiter:
    """Refuses a stream past `max_streams` with RESOURCE_EXHAUSTED, and ends with DEADLINE_EXCEEDED one
    whose client sent nothing for `idle_seconds` or that has run `max_seconds`.

    Only asyncio handlers written as async generators are bounded; unary ones pass untouched.
    """

    def __init__(self, bounds: StreamBounds) -> None:
        self._bounds = bounds
        self._open = 0

    def bounded(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.stream_stream is not None and inspect.isasyncgenfunction(handler.stream_stream):
            return grpc.stream_stream_rpc_method_handler(
                self._bounded_stream_stream(handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            return grpc.unary_stream_rpc_method_handler(
                self._bounded_unary_stream(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _bounded_stream_stream(self, inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def bounded(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            responses = inner(self._idle_bounded(requests, context), context)
            async for response in self._within_count(context, self._time_bounded(responses, context)):
                yield response

        return bounded

    def _bounded_unary_stream(self, inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def bounded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for response in self._within_count(context, self._time_bounded(inner(request, context), context)):
                yield response

        return bounded

    async def _within_count(self, context: grpc.aio.ServicerContext, stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
        if self._open >= self._bounds.max_streams:
            _end(context, grpc.StatusCode.RESOURCE_EXHAUSTED, "too many open streams, try again later")
            return
        self._open += 1
        try:
            async for response in stream:
                yield response
        finally:
            self._open -= 1

    async def _idle_bounded(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        iterator = aiter(requests)
        while True:
            try:
                request = await _next_within(iterator, self._bounds.idle_seconds)
            except StopAsyncIteration:
                return
            except TimeoutError:
                # The requests simply end, so the servicer ends its stream too, and the call with this status.
                _end(context, grpc.StatusCode.DEADLINE_EXCEEDED, f"no request for {self._bounds.idle_seconds} s")
                return
            yield request

    async def _time_bounded(
        self, responses: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        deadline = asyncio.get_running_loop().time() + self._bounds.max_seconds
        iterator = aiter(responses)
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                response = await _next_within(iterator, max(remaining, 0))
            except StopAsyncIteration:
                return
            except TimeoutError:
                _end(context, grpc.StatusCode.DEADLINE_EXCEEDED, f"a stream lasts at most {self._bounds.max_seconds} s")
                return
            yield response


async def _next_within(iterator: AsyncIterator[Any], seconds: float) -> Any:
    """The next item within `seconds` (else TimeoutError). If the call is canceled meanwhile (the
    client went away), how the step then ends (a stream's StopAsyncIteration, say) is taken here,
    not reported by asyncio as an exception nobody retrieved."""
    step = asyncio.ensure_future(anext(iterator))
    try:
        return await asyncio.wait_for(step, seconds)
    except asyncio.CancelledError:
        step.add_done_callback(_retrieve)
        raise


def _retrieve(step: asyncio.Future[Any]) -> None:
    if not step.cancelled():
        step.exception()


def _end(context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """The status the call ends with once its handler returns.

    Not context.abort(): on a stream the client has not half-closed, the asyncio server
    then leaves the HTTP/2 stream open, and its connection refuses new streams once they
    reach its limit. Returning with a code closes it.
    """
    context.set_code(code)
    context.set_details(details)
