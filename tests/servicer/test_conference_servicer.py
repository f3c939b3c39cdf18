"""The conference servicer alone (grpcio-testing): requests in, messages out, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import grpc_testing
import pytest

from confbook.conference.v1 import conference_pb2
from confbook_common.auth.bearer import Callers
from confbook_common.timestamps import from_timestamp, to_timestamp
from services.conference.entrypoints.grpc_servicer import ConferenceServicer
from tests.servicer.fakes import FakeConferenceRepository, FakeConferenceUnitOfWork
from tests.tokens import TokenForge

SERVICE = conference_pb2.DESCRIPTOR.services_by_name["ConferenceService"]
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
FORGE = TokenForge.generated()
ORGANIZER = FORGE.token("olga", "organizer", ttl=3600)


@pytest.fixture
def server():
    repository = FakeConferenceRepository()
    servicer = ConferenceServicer(
        lambda: FakeConferenceUnitOfWork(repository),  # type: ignore[arg-type, return-value]
        Callers(FORGE.verifier()),
    )
    return grpc_testing.server_from_dictionary({SERVICE: servicer}, grpc_testing.strict_real_time())


def invoke(server, method, request, token: str | None = None):
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name[method], metadata, request, None)
    return rpc.termination()


def call(server, method, request):
    response, _, code, _ = invoke(server, method, request, ORGANIZER)
    assert code is grpc.StatusCode.OK
    return response


def a_conference(name: str = "Rust Nation") -> conference_pb2.CreateConferenceRequest:
    return conference_pb2.CreateConferenceRequest(
        name=name, location="London", start=to_timestamp(START), end=to_timestamp(START + timedelta(hours=1)), slots=5
    )


def test_an_organizer_owns_the_conference_it_creates(server):
    assert call(server, "CreateConference", a_conference()).owner_subject == "olga"


def test_conferences_are_read_without_a_token(server):
    call(server, "CreateConference", a_conference())
    found, _, code, _ = invoke(server, "GetConference", conference_pb2.GetConferenceRequest(name="rust nation"))
    assert code is grpc.StatusCode.OK and found.name == "Rust Nation"


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
