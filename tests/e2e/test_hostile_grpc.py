"""Every gRPC method of every service against generated hostile requests (callers that bypass the
gateway): a status that is the caller's fault, never INTERNAL; a short message; nothing created."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import message as protobuf_message
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st

from confbook.booking.v1 import booking_pb2, promotion_pb2
from confbook.conference.v1 import conference_pb2, conference_pb2_grpc
from confbook.waitlist.v1 import waitlist_pb2
from confbook_common import validation
from confbook_common.rpc.caller_auth import with_token
from tests import hostile
from tests.e2e.conftest import admin_token

# By the channel each is called on: the PromotionService's caller shows the promotion secret, every other
# caller an admin's access token, so that the hostile values reach the validation.
SERVICES = {
    "conference": [conference_pb2.DESCRIPTOR.services_by_name["ConferenceService"]],
    "booking": [booking_pb2.DESCRIPTOR.services_by_name["BookingService"]],
    "promotion": [promotion_pb2.DESCRIPTOR.services_by_name["PromotionService"]],
    "waitlist": [waitlist_pb2.DESCRIPTOR.services_by_name["WaitlistService"]],
}
TARGETS = {"conference": "conference", "booking": "booking", "promotion": "booking", "waitlist": "waitlist"}
METHODS = [(name, method) for name, services in SERVICES.items() for service in services for method in service.methods]
# The caller's fault, or an answer: anything else (INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED...) is a defect.
ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
}
MESSAGE_MAX_LENGTH = 1200
T = FieldDescriptor

_INTEGERS = {
    T.TYPE_INT64: hostile.unknown_ids | st.sampled_from([validation.INT64_MIN, validation.INT64_MAX]),
    T.TYPE_INT32: st.integers(validation.INT32_MIN, 0) | st.sampled_from([validation.INT32_MAX, 1_000_001]),
}


def _timestamps() -> st.SearchStrategy[dict[str, int]]:
    seconds = st.integers(validation.INT64_MIN, validation.INT64_MAX) | st.sampled_from([2**62, -(2**62), 253402300800])
    return st.fixed_dictionaries({"seconds": seconds, "nanos": st.integers(validation.INT32_MIN, validation.INT32_MAX)})


def _field_values(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp":
        single: st.SearchStrategy[Any] = _timestamps()
    elif field.type == T.TYPE_STRING:
        single = hostile.bad_wire_text
    elif field.type in _INTEGERS:
        single = _INTEGERS[field.type]
    elif field.type == T.TYPE_BOOL:
        single = st.booleans()
    elif field.type == T.TYPE_ENUM:
        # proto3 enums are open: a number no value names arrives as it is.
        single = st.integers(validation.INT32_MIN, validation.INT32_MAX) | st.sampled_from(
            [value.number for value in field.enum_type.values]
        )
    else:
        raise AssertionError(f"no hostile values for {field.full_name}: add them here")
    if field.label == T.LABEL_REPEATED:
        return st.lists(single, min_size=1, max_size=3)
    return single


def hostile_requests(descriptor: Descriptor) -> st.SearchStrategy[protobuf_message.Message]:
    """A request with every field set to a hostile value (of a oneof, one member)."""
    message_class = GetMessageClass(descriptor)
    plain = {field.name: _field_values(field) for field in descriptor.fields if field.containing_oneof is None}
    oneofs = [
        st.sampled_from(list(oneof.fields)).flatmap(lambda f: st.tuples(st.just(f.name), _field_values(f)))
        for oneof in descriptor.oneofs
    ]

    def build(values: dict[str, Any], chosen: list[tuple[str, Any]]) -> protobuf_message.Message:
        request = message_class()
        for name, value in [*values.items(), *chosen]:
            field = descriptor.fields_by_name[name]
            if field.message_type is not None:
                getattr(request, name).CopyFrom(GetMessageClass(field.message_type)(**value))
            elif field.label == T.LABEL_REPEATED:
                getattr(request, name).extend(value)
            else:
                setattr(request, name, value)
        return request

    return st.builds(build, st.fixed_dictionaries(plain), st.tuples(*oneofs).map(list))


def raw_call(channel: grpc.Channel, method: MethodDescriptor) -> Callable[..., bytes]:
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.server_streaming:
        stream = channel.unary_stream(
            path, request_serializer=lambda data: data, response_deserializer=lambda data: data
        )

        def first_answer(payload: bytes, timeout: float) -> bytes:
            """A stream that starts is an answer: its first message, then the call is canceled."""
            call = stream(payload, timeout=timeout)
            try:
                return next(iter(call))
            except StopIteration:
                return b""
            finally:
                call.cancel()

        return first_answer
    return channel.unary_unary(path, request_serializer=lambda data: data, response_deserializer=lambda data: data)


def status_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.fixture(scope="module")
def channels(stack):
    opened = {
        name: with_token(
            grpc.insecure_channel(stack.grpc_target(TARGETS[name])),
            stack.promotion_token if name == "promotion" else admin_token(stack),
        )
        for name in SERVICES
    }
    yield opened
    for channel in opened.values():
        channel.close()


def conference_count(channel: grpc.Channel) -> int:
    stub = conference_pb2_grpc.ConferenceServiceStub(channel)
    count, token = 0, ""
    while True:
        page = stub.ListConferences(conference_pb2.ListConferencesRequest(page_size=100, page_token=token))
        count += len(page.conferences)
        if not (token := page.next_page_token):
            return count


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[method.full_name for _, method in METHODS])
def test_hostile_requests_are_the_callers_fault_and_create_nothing(channels, service, method):
    before = conference_count(channels["conference"])

    @given(request=hostile_requests(method.input_type))
    def check(request: protobuf_message.Message) -> None:
        code, details = status_of(lambda: raw_call(channels[service], method)(request.SerializeToString(), timeout=10))
        assert code in ACCEPTABLE, (code, details[:300])
        assert len(details) <= MESSAGE_MAX_LENGTH
        if method.name.startswith("Create"):
            assert code is not grpc.StatusCode.OK, request

    check()
    assert conference_count(channels["conference"]) == before


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[method.full_name for _, method in METHODS])
def test_bytes_that_are_no_request_are_refused_not_failed(channels, service, method):
    # Random bytes may well parse into a valid request (b"\n\x01a" is CreateUserRequest(user_id="a")),
    # so only the kind of status is checked here.
    @given(payload=st.binary(max_size=64) | st.sampled_from([b"\x0a\x02\xff\xfe", b"\x12\x01\xc3", b"\xff" * 12]))
    def check(payload: bytes) -> None:
        code, details = status_of(lambda: raw_call(channels[service], method)(payload, timeout=10))
        assert code in ACCEPTABLE, (code, details[:300])

    check()


WRITES = [
    (service, method)
    for service, method in METHODS
    if method.full_name
    in {
        "confbook.conference.v1.ConferenceService.CreateConference",
        "confbook.booking.v1.BookingService.CreateUser",
        "confbook.booking.v1.BookingService.Book",
        "confbook.booking.v1.BookingService.ConfirmBooking",
        "confbook.booking.v1.BookingService.CancelBooking",
        "confbook.booking.v1.BookingService.ChangeCapacity",
    }
]


@pytest.mark.parametrize(("service", "method"), WRITES, ids=[method.full_name for _, method in WRITES])
def test_a_hostile_idempotency_key_is_invalid_argument(channels, service, method):
    # Metadata values on the wire are printable ASCII: what can arrive is empty, long, or spaced.
    keys = hostile.bad_idempotency_keys.filter(lambda key: all(" " <= char <= "~" for char in key))

    @given(request=hostile_requests(method.input_type), key=keys)
    def check(request: protobuf_message.Message, key: str) -> None:
        call = raw_call(channels[service], method)
        code, details = status_of(
            lambda: call(request.SerializeToString(), metadata=[("idempotency-key", key)], timeout=10)
        )
        assert code is grpc.StatusCode.INVALID_ARGUMENT, (code, details[:300])

    check()


@pytest.mark.parametrize("service", ["conference", "booking", "waitlist"])
def test_every_service_still_answers_afterwards(stack, service):
    with grpc.insecure_channel(stack.grpc_target(service)) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


# Reflection reports a status as its number.
NOT_FOUND_CODE = 5
# Names no service has: up to a mebibyte (gRPC's default bound on a message is four).
hostile_names = hostile.bad_wire_text | st.sampled_from(["x" * 2**20, "confbook." * 10_000])


@pytest.mark.parametrize("service", ["conference", "booking", "waitlist"])
def test_health_and_reflection_do_not_echo_a_hostile_name(stack, service):
    """The standard services too answer within the bound on what a message repeats of its input."""
    with grpc.insecure_channel(stack.grpc_target(service)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

        @given(name=hostile_names)
        def check(name: str) -> None:
            code, details = status_of(lambda: health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10))
            assert code is grpc.StatusCode.NOT_FOUND, (code, details[:300])
            assert len(details) <= MESSAGE_MAX_LENGTH, details[:300]
            watch = health.Watch(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            watch.cancel()
            asked = reflection_pb2.ServerReflectionRequest(file_containing_symbol=name)
            answer = next(reflection.ServerReflectionInfo(iter([asked]), timeout=10))
            assert answer.error_response.error_code == NOT_FOUND_CODE
            assert len(answer.error_response.error_message) <= MESSAGE_MAX_LENGTH

        check()
