"""Asyncio gRPC channels to each service, shared by every request of this process."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, cast

import grpc
from grpc_health.v1 import health_pb2_grpc

from confbook.booking.v1 import booking_pb2_grpc
from confbook.conference.v1 import conference_pb2_grpc
from confbook_common import request_id, tracing
from confbook_common.auth import Caller
from gateway.config import GatewayConfig

Stub = TypeVar("Stub")

# A service runs several worker processes on one port and the kernel hands each new
# connection to one of them; a channel is one connection (HTTP/2 multiplexes every call
# over it). Several channels per service, used in turn, spread the calls over the workers.
CHANNELS_PER_SERVICE = 8


# A call on a channel that is reconnecting (its service restarted, say) waits for the
# connection, within its deadline, instead of failing at once; and channels retry soon.
_SERVICE_CONFIG = json.dumps({"methodConfig": [{"name": [{}], "waitForReady": True}]})
_CHANNEL_OPTIONS = [
    # Without a local subchannel pool, channels to one target would share one connection.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def _channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)


class RoundRobin(Generic[Stub]):
    """Stubs over several channels to one service; each call takes the next."""

    def __init__(self, target: str, make_stub: Callable[[grpc.aio.Channel], Stub]) -> None:
        self.channels = [_channel(target) for _ in range(CHANNELS_PER_SERVICE)]
        self._stubs: Iterator[Stub] = itertools.cycle([make_stub(channel) for channel in self.channels])

    def next(self) -> Stub:
        return next(self._stubs)


class ServiceClients:
    def __init__(self, config: GatewayConfig) -> None:
        self.timeout = config.call_timeout_seconds
        # The generated stubs serve both sync and asyncio channels; these are the asyncio kind
        # (a type in the .pyi stubs only).
        self._conferences = RoundRobin(
            config.conference_target,
            lambda channel: cast(
                "conference_pb2_grpc.ConferenceServiceAsyncStub", conference_pb2_grpc.ConferenceServiceStub(channel)
            ),
        )
        self._bookings = RoundRobin(
            config.booking_target,
            lambda channel: cast(
                "booking_pb2_grpc.BookingServiceAsyncStub", booking_pb2_grpc.BookingServiceStub(channel)
            ),
        )
        # Readiness asks one channel per service: any worker's answer speaks for the service.
        self._waitlist_channel = _channel(config.waitlist_target)
        self.health = {
            "conference": health_pb2_grpc.HealthStub(self._conferences.channels[0]),
            "booking": health_pb2_grpc.HealthStub(self._bookings.channels[0]),
            "waitlist": health_pb2_grpc.HealthStub(self._waitlist_channel),
        }

    @staticmethod
    def metadata(*extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        """Metadata for a call made for the current request: its id, so the services log the same one."""
        return (
            (request_id.GRPC_METADATA_KEY, request_id.current.get() or request_id.new()),
            *tracing.carrier().items(),  # the request's trace, which the service's span continues
            *extra,
        )

    @property
    def conferences(self) -> conference_pb2_grpc.ConferenceServiceAsyncStub:
        return self._conferences.next()

    @property
    def bookings(self) -> booking_pb2_grpc.BookingServiceAsyncStub:
        return self._bookings.next()

    def on_behalf_of(self, caller: Caller, credentials: tuple[tuple[str, str], ...]) -> OnBehalfOf:
        """The same channels, every call carrying the caller's token."""
        return OnBehalfOf(self, caller, credentials)

    async def close(self) -> None:
        for channel in [*self._conferences.channels, *self._bookings.channels, self._waitlist_channel]:
            await channel.close(grace=None)


class OnBehalfOf:
    """Calls made for one authenticated request: the shared channels, and its token in every call's metadata."""

    def __init__(self, clients: ServiceClients, caller: Caller, credentials: tuple[tuple[str, str], ...]) -> None:
        self._clients = clients
        self.caller = caller
        self.timeout = clients.timeout
        self._credentials = credentials

    def metadata(self, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return self._clients.metadata(*self._credentials, *extra)

    @property
    def conferences(self) -> conference_pb2_grpc.ConferenceServiceAsyncStub:
        return self._clients.conferences

    @property
    def bookings(self) -> booking_pb2_grpc.BookingServiceAsyncStub:
        return self._clients.bookings
