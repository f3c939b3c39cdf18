"""Domain errors and failures become gRPC statuses with a stable reason, through a real in-process server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy.exc import OperationalError

from confbook.conference.v1 import conference_pb2, conference_pb2_grpc
from confbook_common.auth.bearer import Callers
from confbook_common.rpc.errors import ErrorMappingInterceptor, error_reason
from confbook_common.timestamps import to_timestamp
from services.conference.domain.model import Conference
from services.conference.entrypoints.grpc_servicer import ConferenceServicer
from tests.servicer.fakes import FakeConferenceRepository, FakeConferenceUnitOfWork
from tests.tokens import TokenForge

FORGE = TokenForge.generated()


class FailingRepository(FakeConferenceRepository):
    def __init__(self, failure: Exception) -> None:
        super().__init__()
        self.failure = failure

    def get_by_name(self, name: str) -> Conference | None:
        raise self.failure


@contextmanager
def serve_channel(repository: FakeConferenceRepository) -> Iterator[grpc.Channel]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[ErrorMappingInterceptor()])
    servicer = ConferenceServicer(
        lambda: FakeConferenceUnitOfWork(repository),  # type: ignore[arg-type, return-value]
        Callers(FORGE.verifier()),
    )
    conference_pb2_grpc.add_ConferenceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    server.stop(None)


@contextmanager
def serve(repository: FakeConferenceRepository) -> Iterator[conference_pb2_grpc.ConferenceServiceStub]:
    with serve_channel(repository) as channel:
        yield conference_pb2_grpc.ConferenceServiceStub(channel)


@pytest.fixture
def conferences() -> Iterator[conference_pb2_grpc.ConferenceServiceStub]:
    with serve(FakeConferenceRepository()) as stub:
        yield stub


def failure_of(call):
    with pytest.raises(grpc.RpcError) as failure:
        call()
    return failure.value


def test_invalid_input_is_invalid_argument_naming_the_field(conferences):
    error = failure_of(lambda: conferences.CreateConference(conference_pb2.CreateConferenceRequest(name="Bad!")))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED  # who asks comes first: a stranger learns nothing
    organizer = (("authorization", f"Bearer {FORGE.token('olga', 'organizer')}"),)
    request = conference_pb2.CreateConferenceRequest(name="Bad!")
    error = failure_of(lambda: conferences.CreateConference(request, metadata=organizer))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "name: may contain only letters, digits and spaces"
    assert error_reason(error) == "VALIDATION_ERROR"
    status = rpc_status.from_call(error)
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    assert bad_request.field_violations[0].field == "name"


def test_an_unknown_conference_is_not_found_with_its_reason(conferences):
    error = failure_of(lambda: conferences.GetConference(conference_pb2.GetConferenceRequest(name="Nothing")))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.NOT_FOUND, "CONFERENCE_NOT_FOUND")


def test_an_unreachable_database_is_unavailable():
    with serve(FailingRepository(OperationalError("SELECT", {}, Exception("connection refused")))) as stub:
        error = failure_of(lambda: stub.GetConference(conference_pb2.GetConferenceRequest(name="x")))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.UNAVAILABLE, "SERVICE_UNAVAILABLE")


def test_a_bug_is_an_internal_error_that_reveals_nothing():
    with serve(FailingRepository(RuntimeError("secret detail"))) as stub:
        error = failure_of(lambda: stub.GetConference(conference_pb2.GetConferenceRequest(name="x")))
    assert error.code() is grpc.StatusCode.INTERNAL
    assert "secret" not in error.details()


def test_a_bug_is_logged_with_the_callers_request_id(caplog):
    with serve(FailingRepository(RuntimeError("secret detail"))) as stub, caplog.at_level(logging.ERROR):
        request = conference_pb2.GetConferenceRequest(name="x")
        error = failure_of(lambda: stub.GetConference(request, metadata=(("x-request-id", "trace-7"),)))
    assert error.code() is grpc.StatusCode.INTERNAL
    assert "trace-7" in error.details()
    assert any("trace-7" in record.getMessage() and record.exc_info for record in caplog.records)


@pytest.mark.parametrize(
    "payload",
    [b"\x12\x02\xff\xfe", b"\xff\xff\xff", b"\x12\x05ab"],
    ids=["invalid UTF-8 in a string", "no valid field", "truncated"],
)
def test_bytes_that_are_no_request_are_invalid_argument(payload):
    with serve_channel(FakeConferenceRepository()) as channel:
        raw = channel.unary_unary(
            "/confbook.conference.v1.ConferenceService/GetConference",
            request_serializer=lambda data: data,
            response_deserializer=lambda data: data,
        )
        error = failure_of(lambda: raw(payload))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("token", "code", "reason"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
        (FORGE.token("olga", "organizer", ttl=-600), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
        (FORGE.token("ann"), grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED"),
    ],
    ids=["no token", "expired", "attendee"],
)
def test_only_organizers_and_admins_create_conferences(conferences, token, code, reason):
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    start = datetime.now(UTC) + timedelta(days=3)
    request = conference_pb2.CreateConferenceRequest(
        name="Owned", location="Oslo", start=to_timestamp(start), end=to_timestamp(start + timedelta(hours=1)), slots=1
    )
    error = failure_of(lambda: conferences.CreateConference(request, metadata=metadata))
    assert (error.code(), error_reason(error)) == (code, reason)
    admin = (("authorization", f"Bearer {FORGE.token('root', 'admin')}"),)
    assert conferences.CreateConference(request, metadata=admin).owner_subject == "root"
