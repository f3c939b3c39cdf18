"""gRPC entry point: decode the request, call a handler, encode the answer."""

from __future__ import annotations

import grpc

from confbook.conference.v1 import conference_pb2, conference_pb2_grpc
from confbook_common import validation
from confbook_common.auth.bearer import Callers
from confbook_common.errors import InvalidInput
from confbook_common.idempotency import IdempotentCalls
from confbook_common.timestamps import to_timestamp, utc_now
from services.conference.adapters import tables
from services.conference.domain.model import Conference, interests, new_conference
from services.conference.service_layer import handlers
from services.conference.service_layer.unit_of_work import UnitOfWorkFactory


def to_message(conference: Conference) -> conference_pb2.Conference:
    return conference_pb2.Conference(
        conference_id=conference.conference_id,
        name=conference.name,
        location=conference.location,
        start=to_timestamp(conference.start),
        end=to_timestamp(conference.end),
        slots=conference.slots,
        topics=list(conference.topics),
        created_at=to_timestamp(conference.created_at),
        owner_subject=conference.owner_subject or "",
    )


# A token's subject as issuers make them (OIDC allows 255 ASCII characters; some issuers more).
SUBJECT_MAX_LENGTH = 1000

_SERVICE = conference_pb2.DESCRIPTOR.services_by_name["ConferenceService"].full_name


class ConferenceServicer(conference_pb2_grpc.ConferenceServiceServicer):
    """CreateConference runs once per `idempotency-key` when a caller sends one (confbook_common.idempotency).

    Conferences are public: only CreateConference needs a token (an organizer's or an admin's).
    """

    def __init__(self, unit_of_work: UnitOfWorkFactory, callers: Callers) -> None:
        self._uow = unit_of_work
        self._callers = callers
        self._once = IdempotentCalls(tables.idempotency_keys)

    def CreateConference(
        self, request: conference_pb2.CreateConferenceRequest, context: grpc.ServicerContext
    ) -> conference_pb2.Conference:
        caller = self._callers.of(context)
        new = new_conference(
            name=request.name,
            location=request.location,
            start=validation.timestamp("start", request.start) if request.HasField("start") else None,
            end=validation.timestamp("end", request.end) if request.HasField("end") else None,
            slots=request.slots,
            topics=list(request.topics),
            now=utc_now(),
        )
        uow = self._uow()
        return self._once.run(
            uow,
            context,
            f"/{_SERVICE}/CreateConference",
            request,
            lambda: to_message(handlers.create_conference(uow, new, caller)),
            conference_pb2.Conference,
            caller=caller.subject,
        )

    def GetConference(
        self, request: conference_pb2.GetConferenceRequest, context: grpc.ServicerContext
    ) -> conference_pb2.Conference:
        key = request.WhichOneof("key")
        if key == "conference_id":
            conference_id = validation.positive_id("conference_id", request.conference_id)
            return to_message(handlers.get_conference(self._uow(), conference_id=conference_id))
        if key is None:
            raise InvalidInput("key", "conference_id or name is required")
        name = validation.NAME_LOOKUP("name", request.name)
        return to_message(handlers.get_conference(self._uow(), name=name))

    def ListConferences(
        self, request: conference_pb2.ListConferencesRequest, context: grpc.ServicerContext
    ) -> conference_pb2.ListConferencesResponse:
        page = handlers.list_conferences(self._uow(), request.page_size, request.page_token)
        return conference_pb2.ListConferencesResponse(
            conferences=[to_message(c) for c in page.conferences], next_page_token=page.next_token
        )

    def FindConferencesByTopics(
        self, request: conference_pb2.FindConferencesByTopicsRequest, context: grpc.ServicerContext
    ) -> conference_pb2.FindConferencesByTopicsResponse:
        topics = interests(list(request.topics))
        found = handlers.conferences_sharing_topics(self._uow(), topics, utc_now())
        return conference_pb2.FindConferencesByTopicsResponse(conferences=[to_message(c) for c in found])

    def ForgetOwner(
        self, request: conference_pb2.ForgetOwnerRequest, context: grpc.ServicerContext
    ) -> conference_pb2.ForgetOwnerResponse:
        caller = self._callers.of(context)
        subject = validation.text("subject", request.subject, max_length=SUBJECT_MAX_LENGTH)
        if not subject:
            raise InvalidInput("subject", "must not be blank")
        released = handlers.forget_owner(self._uow(), subject, caller)
        return conference_pb2.ForgetOwnerResponse(conferences_released=released)
