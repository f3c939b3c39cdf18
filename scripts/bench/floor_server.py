"""The framework floor's back end: BookingService.GetBooking answering one constant Booking, and nothing else.

Usage: python -m scripts.bench.floor_server PORT

It is served by the services' own runtime (a grpc.aio server with the servicer on its thread pool, the same
interceptors, health and reflection), so that what the gateway meets behind it differs from a real service only
in doing no work.
"""

from __future__ import annotations

import sys

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from confbook_common.rpc.server import ServiceRuntime, run_service

NAME = "bench-floor"
# Shaped like a real answer (a confirmed booking with its timestamps), so the gateway converts as much.
_STAMP = Timestamp(seconds=1_900_000_000)
BOOKING = booking_pb2.Booking(
    booking_id=1,
    status=booking_pb2.BOOKING_STATUS_CONFIRMED,
    conference_id=1,
    conference_name="Bench floor",
    user_id="floor",
    can_confirm=False,
    created_at=_STAMP,
    updated_at=_STAMP,
)


class ConstantBookings(booking_pb2_grpc.BookingServiceServicer):
    def GetBooking(self, request: booking_pb2.GetBookingRequest, context: grpc.ServicerContext) -> booking_pb2.Booking:
        return BOOKING


def build(port: int) -> ServiceRuntime:
    runtime = ServiceRuntime(NAME, f"127.0.0.1:{port}")
    runtime.add_service(
        booking_pb2.DESCRIPTOR.services_by_name["BookingService"].full_name,
        # The other RPCs stay the generated base's: UNIMPLEMENTED. Its stubs declare them abstract.
        lambda server: booking_pb2_grpc.add_BookingServiceServicer_to_server(
            ConstantBookings(),  # type: ignore[abstract]
            server,
        ),
    )
    return runtime


def main(argv: list[str]) -> None:
    port = int(argv[1])
    # With WORKERS above 1, as many worker processes share the port, as they do for the services.
    run_service(NAME, lambda: port, build)


if __name__ == "__main__":
    main(sys.argv)
