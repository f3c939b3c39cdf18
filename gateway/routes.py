"""The endpoints: each turns JSON into a gRPC request and the answer back into JSON."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from grpc_health.v1 import health_pb2

from confbook.booking.v1 import booking_pb2
from confbook.conference.v1 import conference_pb2
from confbook_common import validation
from confbook_common.timestamps import to_timestamp
from gateway import models
from gateway.clients import ServiceClients
from gateway.timestamps import format_utc

router = APIRouter()

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorBody} for status in (400, 404, 409, 413, 500, 503)
}

# Path and query parameters follow the same rules as body fields.
PageSize = Annotated[
    int, models.checked("page_size", validation.page_size), models.int_range(0, validation.PAGE_SIZE_MAX)
]
PageToken = Annotated[
    str, models.checked("page_token", validation.PAGE_TOKEN), models.documented(validation.PAGE_TOKEN)
]
BookingIdInPath = Annotated[
    int, models.checked("booking_id", validation.json_id), models.int_range(1, validation.JSON_INT_MAX)
]


async def _clients(request: Request) -> ServiceClients:
    # async, so FastAPI calls it on the event loop rather than handing it to a thread per request
    clients: ServiceClients = request.app.state.clients
    return clients


Clients = Annotated[ServiceClients, Depends(_clients)]


def _summary(conference: conference_pb2.Conference) -> models.ConferenceSummary:
    return models.ConferenceSummary(
        conference_id=conference.conference_id,
        name=conference.name,
        location=conference.location,
        start=format_utc(conference.start),
        end=format_utc(conference.end),
        slots=conference.slots,
        topics=list(conference.topics),
    )


async def _with_availability(clients: Clients, conference: conference_pb2.Conference) -> models.ConferenceOut:
    seats = await clients.bookings.GetSeatAvailability(
        booking_pb2.GetSeatAvailabilityRequest(conference_id=conference.conference_id),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return models.ConferenceOut(
        **_summary(conference).model_dump(),
        available_slots=seats.available_slots,
        waitlist_length=seats.waitlist_length,
    )


def _status(status: booking_pb2.BookingStatus.ValueType) -> models.Status:
    return booking_pb2.BookingStatus.Name(status).removeprefix("BOOKING_STATUS_")  # type: ignore[return-value]


def _booking(booking: booking_pb2.Booking) -> models.BookingOut:
    return models.BookingOut(
        booking_id=booking.booking_id,
        status=_status(booking.status),
        conference_name=booking.conference_name,
        user_id=booking.user_id,
        can_confirm=booking.can_confirm,
        confirmation_deadline=(
            format_utc(booking.confirmation_deadline) if booking.HasField("confirmation_deadline") else None
        ),
        waitlist_position=booking.waitlist_position if booking.HasField("waitlist_position") else None,
    )


# --- conferences ---------------------------------------------------------------


@router.post("/conference", status_code=201, responses=ERRORS, tags=["conferences"])
async def create_conference(body: models.NewConference, clients: Clients) -> models.ConferenceOut:
    """Create a conference.

    Beyond what the schema states (400 `VALIDATION_ERROR` otherwise): `start` in the future, `end` after
    `start`, at most 12 hours after it (exactly 12 is fine); names and topics of letters (of any script),
    digits and spaces; topics distinct ignoring case. A name taken, ignoring case: 409 `CONFERENCE_EXISTS`.
    """
    conference = await clients.conferences.CreateConference(
        conference_pb2.CreateConferenceRequest(
            name=body.name,
            location=body.location,
            start=to_timestamp(body.start),
            end=to_timestamp(body.end),
            slots=body.slots,
            topics=body.topics,
        ),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return await _with_availability(clients, conference)


@router.get("/conference/{name}", responses=ERRORS, tags=["conferences"])
async def get_conference(name: models.NameToFind, clients: Clients) -> models.ConferenceOut:
    conference = await clients.conferences.GetConference(
        conference_pb2.GetConferenceRequest(name=name), timeout=clients.timeout, metadata=clients.metadata()
    )
    return await _with_availability(clients, conference)


@router.get("/conferences", responses=ERRORS, tags=["conferences"])
async def list_conferences(
    clients: Clients,
    page_size: Annotated[PageSize, Query()] = 50,
    page_token: Annotated[PageToken, Query()] = "",
) -> models.ConferenceList:
    page = await clients.conferences.ListConferences(
        conference_pb2.ListConferencesRequest(page_size=page_size, page_token=page_token),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return models.ConferenceList(
        conferences=[_summary(conference) for conference in page.conferences],
        next_page_token=page.next_page_token,
    )


# --- users ---------------------------------------------------------------------


@router.post("/user", status_code=201, responses=ERRORS, tags=["users"])
async def create_user(body: models.NewUser, clients: Clients) -> models.UserOut:
    """Create a user.

    Beyond what the schema states (400 `VALIDATION_ERROR` otherwise): `user_id` of letters (of any script)
    and digits, topics of letters, digits and spaces, distinct ignoring case. An id taken: 409 `USER_EXISTS`.
    """
    user = await clients.bookings.CreateUser(
        booking_pb2.CreateUserRequest(user_id=body.user_id, topics=body.topics),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return models.UserOut(user_id=user.user_id, topics=list(user.topics))


@router.get("/user/{user_id}", responses=ERRORS, tags=["users"])
async def get_user(user_id: models.UserIdToFind, clients: Clients) -> models.UserOut:
    user = await clients.bookings.GetUser(
        booking_pb2.GetUserRequest(user_id=user_id), timeout=clients.timeout, metadata=clients.metadata()
    )
    return models.UserOut(user_id=user.user_id, topics=list(user.topics))


@router.get("/user/{user_id}/bookings", responses=ERRORS, tags=["users"])
async def list_user_bookings(user_id: models.UserIdToFind, clients: Clients) -> models.UserBookings:
    reply = await clients.bookings.ListUserBookings(
        booking_pb2.ListUserBookingsRequest(user_id=user_id), timeout=clients.timeout, metadata=clients.metadata()
    )
    return models.UserBookings(user_id=user_id, bookings=[_booking(booking) for booking in reply.bookings])


# --- bookings ------------------------------------------------------------------


@router.post("/book", status_code=201, responses=ERRORS, tags=["bookings"])
async def book(body: models.BookRequest, clients: Clients) -> models.BookOut:
    reply = await clients.bookings.Book(
        booking_pb2.BookRequest(conference_name=body.name, user_id=body.user_id),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    booking = _booking(reply.booking)
    return models.BookOut(
        booking_id=booking.booking_id,
        status=booking.status,
        message=reply.message,
        waitlist_position=booking.waitlist_position,
    )


@router.get("/booking/{booking_id}", responses=ERRORS, tags=["bookings"])
async def get_booking(booking_id: BookingIdInPath, clients: Clients) -> models.BookingOut:
    booking = await clients.bookings.GetBooking(
        booking_pb2.GetBookingRequest(booking_id=booking_id), timeout=clients.timeout, metadata=clients.metadata()
    )
    return _booking(booking)


@router.post("/confirm", responses=ERRORS, tags=["bookings"])
async def confirm(body: models.BookingRef, clients: Clients) -> models.BookingChange:
    booking = await clients.bookings.ConfirmBooking(
        booking_pb2.ConfirmBookingRequest(booking_id=body.booking_id),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return models.BookingChange(**_booking(booking).model_dump(), message="Booking confirmed")


@router.post("/cancel", responses=ERRORS, tags=["bookings"])
async def cancel(body: models.BookingRef, clients: Clients) -> models.BookingChange:
    booking = await clients.bookings.CancelBooking(
        booking_pb2.CancelBookingRequest(booking_id=body.booking_id),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return models.BookingChange(**_booking(booking).model_dump(), message="Booking canceled")


# --- operations ----------------------------------------------------------------


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict[str, str]:
    """The gateway process is alive."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"])
async def readyz(clients: Clients) -> JSONResponse:
    """200 when every service answers SERVING (each checks its database and broker), else 503."""

    async def check(stub: object) -> str:
        try:
            # Readiness says at once that a service is unreachable rather than wait for it.
            reply = await stub.Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(), timeout=1.0, wait_for_ready=False
            )
        except grpc.aio.AioRpcError as error:
            return f"UNREACHABLE ({error.code().name})"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    names = list(clients.health)
    results = await asyncio.gather(*(check(clients.health[name]) for name in names))
    services = dict(zip(names, results, strict=True))
    ready = all(status == "SERVING" for status in services.values())
    return JSONResponse(
        status_code=200 if ready else 503,
        content={"status": "ready" if ready else "unavailable", "services": services},
    )
