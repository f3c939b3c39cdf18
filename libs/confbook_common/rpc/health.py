"""The standard health service on the event loop: a Watch stream is a coroutine waiting, not a thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from confbook_common.validation import shown


class HealthServicer(health_pb2_grpc.HealthServicer):
    """Check and Watch over statuses set from the event loop.

    Not grpc_health's asyncio servicer: when one of several watchers of a service
    ends, it drops the condition the others wait on, and they hear no more changes.
    Here every change wakes every watcher once, whatever the service they watch.
    """

    def __init__(self) -> None:
        self._statuses: dict[str, health_pb2.HealthCheckResponse.ServingStatus.ValueType] = {
            "": health_pb2.HealthCheckResponse.SERVING
        }
        self._changed = asyncio.Event()
        self._shutting_down = False

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        status = self._statuses.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {shown(request.service)}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(  # an async generator, which the asyncio server runs as a response stream
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        last = None
        while True:
            changed = self._changed  # taken before reading the status, so no change slips between the two
            status = self._statuses.get(request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            await changed.wait()

    def set(self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        """Called on the event loop; watchers hear only real changes."""
        if self._shutting_down or self._statuses.get(service) == status:
            return
        self._statuses[service] = status
        self._changed.set()
        self._changed = asyncio.Event()

    def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on, whatever is set later."""
        for service in self._statuses:
            self.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        self._shutting_down = True
