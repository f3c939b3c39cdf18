"""Every service answers grpcurl (reflection), the standard health check, and validates its own input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc, promotion_pb2, promotion_pb2_grpc
from confbook.conference.v1 import conference_pb2, conference_pb2_grpc
from confbook_common.rpc.caller_auth import with_token
from confbook_common.rpc.errors import error_reason
from tests.e2e.conftest import ADMIN, subject_of

SERVICES = {
    "conference": ["confbook.conference.v1.ConferenceService"],
    "booking": ["confbook.booking.v1.BookingService", "confbook.booking.v1.PromotionService"],
    "waitlist": ["confbook.waitlist.v1.WaitlistService"],
}


def grpcurl_binary() -> str:
    return shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")


def grpcurl(*args: str) -> str:
    return subprocess.run([grpcurl_binary(), "-plaintext", *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("service", SERVICES)
def test_grpcurl_lists_the_service_and_the_health_check(stack, service):
    listed = grpcurl(stack.grpc_target(service), "list").split()
    assert set(SERVICES[service]) | {"grpc.health.v1.Health"} <= set(listed)


@pytest.mark.parametrize("service", SERVICES)
def test_the_health_check_answers_serving(stack, service):
    answer = json.loads(grpcurl(stack.grpc_target(service), "grpc.health.v1.Health/Check"))
    assert answer == {"status": "SERVING"}


def test_grpcurl_describes_the_methods(stack):
    described = grpcurl(stack.grpc_target("booking"), "describe", "confbook.booking.v1.BookingService")
    for method in ("CreateUser", "Book", "GetBooking", "ConfirmBooking", "CancelBooking", "ListUserBookings"):
        assert f"rpc {method}" in described


def test_grpcurl_can_book_with_the_users_token(stack, api):
    conference = api.create_conference()
    user = api.create_user()
    request = json.dumps({"conference_name": conference["name"], "user_id": user})
    target, method = stack.grpc_target("booking"), "confbook.booking.v1.BookingService/Book"
    authorization = f"authorization: Bearer {api.token(subject_of(user))}"
    answer = json.loads(grpcurl("-H", authorization, "-d", request, target, method))
    assert answer["booking"]["status"] == "BOOKING_STATUS_CONFIRMED"
    without = subprocess.run(
        [grpcurl_binary(), "-plaintext", "-d", request, target, method], capture_output=True, text=True
    )
    assert without.returncode != 0 and "Unauthenticated" in without.stderr


def call_failure(call):
    with pytest.raises(grpc.RpcError) as failure:
        call()
    return failure.value.code(), error_reason(failure.value)


def test_grpc_callers_get_the_same_validation_as_http_callers(stack, api):
    admin = (("authorization", f"Bearer {api.token(ADMIN, 'admin')}"),)
    with grpc.insecure_channel(stack.grpc_target("conference")) as channel:
        conferences = conference_pb2_grpc.ConferenceServiceStub(channel)
        refused = call_failure(
            lambda: conferences.CreateConference(
                conference_pb2.CreateConferenceRequest(name="No!", slots=1), metadata=admin
            )
        )
        assert refused == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR")
    with grpc.insecure_channel(stack.grpc_target("booking")) as channel:
        bookings = booking_pb2_grpc.BookingServiceStub(channel)
        assert call_failure(
            lambda: bookings.CreateUser(booking_pb2.CreateUserRequest(user_id="a b"), metadata=admin)
        ) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        )
        assert call_failure(lambda: bookings.GetBooking(booking_pb2.GetBookingRequest(booking_id=-1), metadata=admin))[
            0
        ] == (grpc.StatusCode.INVALID_ARGUMENT)
    with with_token(grpc.insecure_channel(stack.grpc_target("booking")), stack.promotion_token) as channel:
        promotions = promotion_pb2_grpc.PromotionServiceStub(channel)
        assert call_failure(lambda: promotions.ExpireOffer(promotion_pb2.ExpireOfferRequest(booking_id=0)))[0] == (
            grpc.StatusCode.INVALID_ARGUMENT
        )


@pytest.mark.parametrize("token", [None, "not-the-token-but-long-enough"])
def test_the_promotion_api_answers_only_the_waitlist_service(stack, api, token):
    conference = api.create_conference(slots=1)
    api.book(conference, api.create_user())
    waiting = api.book(conference, api.create_user())["booking_id"]
    channel = grpc.insecure_channel(stack.grpc_target("booking"))
    with with_token(channel, token) if token else channel as caller:
        promotions = promotion_pb2_grpc.PromotionServiceStub(caller)
        for call in (
            lambda: promotions.OfferFreeSeats(
                promotion_pb2.OfferFreeSeatsRequest(conference_id=conference["conference_id"])
            ),
            lambda: promotions.ExpireOffer(promotion_pb2.ExpireOfferRequest(booking_id=waiting)),
            lambda: promotions.CloseWaitlist(
                promotion_pb2.CloseWaitlistRequest(conference_id=conference["conference_id"])
            ),
        ):
            assert call_failure(call) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    assert api.status(waiting) == "WAITLISTED"
