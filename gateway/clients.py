"""One asyncio gRPC channel per service, shared by every request of this process."""

from __future__ import annotations

from typing import cast

import grpc
from grpc_health.v1 import health_pb2_grpc

from confbook.booking.v1 import booking_pb2_grpc
from confbook.conference.v1 import conference_pb2_grpc
from gateway.config import GatewayConfig


class ServiceClients:
    def __init__(self, config: GatewayConfig) -> None:
        self.timeout = config.call_timeout_seconds
        self._channels = {
            "conference": grpc.aio.insecure_channel(config.conference_target),
            "booking": grpc.aio.insecure_channel(config.booking_target),
            "waitlist": grpc.aio.insecure_channel(config.waitlist_target),
        }
        # The generated stubs serve both sync and asyncio channels; these are the asyncio kind.
        self.conferences = cast(
            "conference_pb2_grpc.ConferenceServiceAsyncStub",  # a type in the .pyi stubs only
            conference_pb2_grpc.ConferenceServiceStub(self._channels["conference"]),
        )
        self.bookings = cast(
            "booking_pb2_grpc.BookingServiceAsyncStub", booking_pb2_grpc.BookingServiceStub(self._channels["booking"])
        )
        self.health = {name: health_pb2_grpc.HealthStub(channel) for name, channel in self._channels.items()}

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)
