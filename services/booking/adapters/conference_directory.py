"""Looking conferences up in the conference service, which owns them."""

from __future__ import annotations

from typing import Protocol

import grpc

from confbook.conference.v1 import conference_pb2, conference_pb2_grpc
from confbook_common.rpc.client import CALL_TIMEOUT_SECONDS, raise_if_transient
from confbook_common.timestamps import from_timestamp
from services.booking.domain.errors import ConferenceNotFound
from services.booking.domain.model import Conference


class ConferenceDirectory(Protocol):
    def by_name(self, name: str) -> Conference: ...
    def by_id(self, conference_id: int) -> Conference: ...


class GrpcConferenceDirectory:
    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = conference_pb2_grpc.ConferenceServiceStub(channel)

    def by_name(self, name: str) -> Conference:
        return self._get(conference_pb2.GetConferenceRequest(name=name), name)

    def by_id(self, conference_id: int) -> Conference:
        return self._get(conference_pb2.GetConferenceRequest(conference_id=conference_id), conference_id)

    def _get(self, request: conference_pb2.GetConferenceRequest, key: str | int) -> Conference:
        try:
            reply = self._stub.GetConference(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            raise_if_transient(error, "conference")
            if error.code() is grpc.StatusCode.NOT_FOUND:
                raise ConferenceNotFound(key) from error
            raise
        return Conference(
            conference_id=reply.conference_id,
            name=reply.name,
            start=from_timestamp(reply.start),
            end=from_timestamp(reply.end),
            slots=reply.slots,
        )
