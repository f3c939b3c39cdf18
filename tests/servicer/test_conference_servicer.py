"""The conference servicer alone (grpcio-testing): requests in, messages out, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import grpc_testing
import pytest

from confbook.conference.v1 import conference_pb2
from confbook_common.timestamps import from_timestamp, to_timestamp
from services.conference.entrypoints.grpc_servicer import ConferenceServicer
from tests.servicer.fakes import FakeConferenceRepository, FakeConferenceUnitOfWork

SERVICE = conference_pb2.DESCRIPTOR.services_by_name["ConferenceService"]
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)


@pytest.fixture
def server():
    repository = FakeConferenceRepository()
    servicer = ConferenceServicer(lambda: FakeConferenceUnitOfWork(repository))  # type: ignore[arg-type, return-value]
    return grpc_testing.server_from_dictionary({SERVICE: servicer}, grpc_testing.strict_real_time())


def call(server, method, request):
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name[method], (), request, None)
    response, _, code, _ = rpc.termination()
    assert code is grpc.StatusCode.OK
    return response


def test_a_created_conference_comes_back_with_its_id_and_utc_times(server):
    created = call(
        server,
        "CreateConference",
        conference_pb2.CreateConferenceRequest(
            name=" Data Days ",
            location="Lyon",
            start=to_timestamp(START),
            end=to_timestamp(START + timedelta(hours=6)),
            slots=30,
            topics=["Data", "SQL"],
        ),
    )
    assert created.conference_id == 1
    assert created.name == "Data Days"
    assert from_timestamp(created.start) == START
    assert from_timestamp(created.end) - from_timestamp(created.start) == timedelta(hours=6)
    assert list(created.topics) == ["Data", "SQL"]
    assert created.HasField("created_at")


def test_a_conference_is_found_by_name_ignoring_case_or_by_id(server):
    request = conference_pb2.CreateConferenceRequest(
        name="Rust Nation",
        location="London",
        start=to_timestamp(START),
        end=to_timestamp(START + timedelta(hours=1)),
        slots=5,
    )
    created = call(server, "CreateConference", request)
    by_name = call(server, "GetConference", conference_pb2.GetConferenceRequest(name="rust nation"))
    by_id = call(server, "GetConference", conference_pb2.GetConferenceRequest(conference_id=created.conference_id))
    assert by_name == created == by_id
