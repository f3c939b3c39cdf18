"""The waitlist service's gRPC API, for operators (admins): which offers it is watching."""

from __future__ import annotations

import grpc

from confbook.waitlist.v1 import waitlist_pb2, waitlist_pb2_grpc
from confbook_common import validation
from confbook_common.auth.bearer import Callers
from confbook_common.errors import RoleMissing
from confbook_common.timestamps import to_timestamp
from services.waitlist.domain.model import Offer
from services.waitlist.service_layer import handlers
from services.waitlist.service_layer.unit_of_work import UnitOfWorkFactory


def to_offer_message(offer: Offer) -> waitlist_pb2.Offer:
    return waitlist_pb2.Offer(
        booking_id=offer.booking_id,
        conference_id=offer.conference_id,
        deadline=to_timestamp(offer.deadline),
        state=waitlist_pb2.OfferState.Value(f"OFFER_STATE_{offer.state.value}"),
    )


class WaitlistServicer(waitlist_pb2_grpc.WaitlistServiceServicer):
    def __init__(self, unit_of_work: UnitOfWorkFactory, callers: Callers) -> None:
        self._uow = unit_of_work
        self._callers = callers

    def ListOffers(
        self, request: waitlist_pb2.ListOffersRequest, context: grpc.ServicerContext
    ) -> waitlist_pb2.ListOffersResponse:
        if not self._callers.of(context).is_admin:
            # Offers name bookings of every user; this service does not know who owns a conference.
            raise RoleMissing("listing offers needs the admin role")
        conference_id = validation.positive_id("conference_id", request.conference_id)
        offers = handlers.list_offers(self._uow(), conference_id, include_closed=request.include_closed)
        return waitlist_pb2.ListOffersResponse(offers=[to_offer_message(offer) for offer in offers])
