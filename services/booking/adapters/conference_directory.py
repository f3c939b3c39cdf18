"""Looking conferences up in the conference service, which owns them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import grpc

from confbook.conference.v1 import conference_pb2, conference_pb2_grpc
from confbook_common.rpc.client import CALL_TIMEOUT_SECONDS, raise_if_transient
from confbook_common.rpc.metadata import AUTHORIZATION
from confbook_common.timestamps import from_timestamp
from services.booking.domain.errors import ConferenceNotFound
from services.booking.domain.model import Conference
from services.booking.domain.recommendations import Listing


class ConferenceDirectory(Protocol):
    def by_name(self, name: str) -> Conference: ...
    def by_id(self, conference_id: int) -> Conference: ...
    def sharing_topics(self, topics: Sequence[str]) -> list[Listing]: ...
    def forget_owner(self, subject: str, authorization: str) -> int: ...


class GrpcConferenceDirectory:
    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = conference_pb2_grpc.ConferenceServiceStub(channel)

    def by_name(self, name: str) -> Conference:
        return self._get(conference_pb2.GetConferenceRequest(name=name), name)

    def by_id(self, conference_id: int) -> Conference:
        return self._get(conference_pb2.GetConferenceRequest(conference_id=conference_id), conference_id)

    def sharing_topics(self, topics: Sequence[str]) -> list[Listing]:
        request = conference_pb2.FindConferencesByTopicsRequest(topics=list(topics))
        try:
            reply = self._stub.FindConferencesByTopics(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            raise_if_transient(error, "conference")
            raise
        return [
            Listing(
                conference=_conference(found),
                location=found.location,
                topics=tuple(found.topics),
                created_at=from_timestamp(found.created_at),
            )
            for found in reply.conferences
        ]

    def forget_owner(self, subject: str, authorization: str) -> int:
        """The subject's conferences lose their owner (an erasure), asked with the erasing caller's
        own `authorization`: the conference service decides whether it may."""
        request = conference_pb2.ForgetOwnerRequest(subject=subject)
        try:
            reply = self._stub.ForgetOwner(
                request, timeout=CALL_TIMEOUT_SECONDS, metadata=((AUTHORIZATION, authorization),)
            )
        except grpc.RpcError as error:
            raise_if_transient(error, "conference")
            raise
        return reply.conferences_released

    def _get(self, request: conference_pb2.GetConferenceRequest, key: str | int) -> Conference:
        try:
            reply = self._stub.GetConference(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            raise_if_transient(error, "conference")
            if error.code() is grpc.StatusCode.NOT_FOUND:
                raise ConferenceNotFound(key) from error
            raise
        return _conference(reply)


def _conference(reply: conference_pb2.Conference) -> Conference:
    """As created; the slots are only the ledger's first value (docs/adr/0014). No owner (an empty
    `owner_subject`: created before conferences had owners) is None, which only an admin matches."""
    return Conference(
        conference_id=reply.conference_id,
        name=reply.name,
        start=from_timestamp(reply.start),
        end=from_timestamp(reply.end),
        slots=reply.slots,
        owner_subject=reply.owner_subject or None,
    )
