"""Asking the booking service, which owns bookings, to move them (its promotion API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

import grpc
from google.protobuf.message import Message

from confbook.booking.v1 import promotion_pb2, promotion_pb2_grpc
from confbook_common.errors import DependencyUnavailable
from confbook_common.rpc.client import CALL_TIMEOUT_SECONDS, raise_if_transient
from confbook_common.rpc.errors import error_reason
from services.waitlist.domain.model import ExpiryOutcome

Reply = TypeVar("Reply")


class Promotions(Protocol):
    def offer_free_seats(self, conference_id: int) -> int: ...
    def expire_offer(self, booking_id: int) -> ExpiryOutcome: ...
    def close_waitlist(self, conference_id: int) -> int: ...


class GrpcPromotions:
    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = promotion_pb2_grpc.PromotionServiceStub(channel)

    def offer_free_seats(self, conference_id: int) -> int:
        request = promotion_pb2.OfferFreeSeatsRequest(conference_id=conference_id)
        reply = self._call(self._stub.OfferFreeSeats, request)
        return len(reply.offers_made)

    def expire_offer(self, booking_id: int) -> ExpiryOutcome:
        reply = self._call(self._stub.ExpireOffer, promotion_pb2.ExpireOfferRequest(booking_id=booking_id))
        name = promotion_pb2.ExpireOutcome.Name(reply.outcome)
        return ExpiryOutcome(name.removeprefix("EXPIRE_OUTCOME_"))

    def close_waitlist(self, conference_id: int) -> int:
        request = promotion_pb2.CloseWaitlistRequest(conference_id=conference_id)
        try:
            return self._call(self._stub.CloseWaitlist, request).canceled
        except grpc.RpcError as error:
            if error_reason(error) == "CONFERENCE_NOT_STARTED":
                # The booking service's clock is a moment behind ours: try again shortly.
                raise DependencyUnavailable(f"conference {conference_id} not started yet for booking") from error
            raise

    @staticmethod
    def _call(method: Callable[..., Reply], request: Message) -> Reply:
        try:
            return method(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            raise_if_transient(error, "booking")
            raise
