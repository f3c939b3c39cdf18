"""The promotion gRPC API, called by the waitlist service alone (it shows a token); every call is idempotent."""

from __future__ import annotations

from datetime import timedelta

import grpc

from confbook.booking.v1 import promotion_pb2, promotion_pb2_grpc
from confbook_common import validation
from confbook_common.rpc.caller_auth import require_token
from confbook_common.timestamps import to_timestamp, utc_now
from services.booking.service_layer import handlers
from services.booking.service_layer.unit_of_work import UnitOfWorkFactory


class PromotionServicer(promotion_pb2_grpc.PromotionServiceServicer):
    def __init__(self, unit_of_work: UnitOfWorkFactory, confirmation_window: timedelta, token: str) -> None:
        self._uow = unit_of_work
        self._window = confirmation_window
        self._token = token

    def OfferFreeSeats(
        self, request: promotion_pb2.OfferFreeSeatsRequest, context: grpc.ServicerContext
    ) -> promotion_pb2.OfferFreeSeatsResponse:
        require_token(context, self._token)
        conference_id = validation.positive_id("conference_id", request.conference_id)
        offers = handlers.offer_free_seats(self._uow(), conference_id, utc_now(), self._window)
        return promotion_pb2.OfferFreeSeatsResponse(
            offers_made=[
                promotion_pb2.SeatOffer(
                    booking_id=offer.booking_id,
                    conference_id=conference_id,
                    user_id=offer.user_id,
                    deadline=to_timestamp(offer.offer_deadline) if offer.offer_deadline else None,
                )
                for offer in offers
            ]
        )

    def ExpireOffer(
        self, request: promotion_pb2.ExpireOfferRequest, context: grpc.ServicerContext
    ) -> promotion_pb2.ExpireOfferResponse:
        require_token(context, self._token)
        booking_id = validation.positive_id("booking_id", request.booking_id)
        outcome = handlers.expire_offer(self._uow(), booking_id, utc_now())
        return promotion_pb2.ExpireOfferResponse(
            outcome=promotion_pb2.ExpireOutcome.Value(f"EXPIRE_OUTCOME_{outcome.value}")
        )

    def CloseWaitlist(
        self, request: promotion_pb2.CloseWaitlistRequest, context: grpc.ServicerContext
    ) -> promotion_pb2.CloseWaitlistResponse:
        require_token(context, self._token)
        conference_id = validation.positive_id("conference_id", request.conference_id)
        return promotion_pb2.CloseWaitlistResponse(
            canceled=handlers.close_waitlist(self._uow(), conference_id, utc_now())
        )
