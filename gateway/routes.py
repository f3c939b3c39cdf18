"""The endpoints: each turns JSON into a gRPC request and the answer back into JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

import grpc
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from grpc_health.v1 import health_pb2

from confbook.booking.v1 import booking_pb2
from confbook.conference.v1 import conference_pb2
from confbook_common import validation
from confbook_common.booking_json import booking_json, event_json
from confbook_common.timestamps import to_timestamp
from gateway import errors, models
from gateway.auth import CallerClients
from gateway.clients import OnBehalfOf, ServiceClients
from gateway.errors import REPLAYED_HEADER
from gateway.retries import RetryOf, answer
from gateway.timestamps import format_utc

router = APIRouter()

PUBLIC_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorBody} for status in (400, 404, 409, 413, 500, 503)
}
# What a route that needs a token may answer besides: no token that counts, no right, too many requests.
ERRORS: dict[int | str, dict[str, Any]] = {
    **PUBLIC_ERRORS,
    **{status: {"model": models.ErrorBody} for status in (401, 403, 429)},
}
# Writes take an Idempotency-Key: 422 when it was used for another request.
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 422: {"model": models.ErrorBody}}

# Path and query parameters follow the same rules as body fields.
PageSize = Annotated[
    int, models.checked("page_size", validation.page_size), models.int_range(0, validation.PAGE_SIZE_MAX)
]
PageToken = Annotated[
    str, models.checked("page_token", validation.PAGE_TOKEN), models.documented(validation.PAGE_TOKEN)
]
RecommendationLimit = Annotated[
    int,
    models.checked("limit", validation.recommendation_limit),
    models.int_range(1, validation.RECOMMENDATIONS_MAX),
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


def _conference_out(conference: conference_pb2.Conference, seats: booking_pb2.SeatAvailability) -> models.ConferenceOut:
    # The booking service's ledger has the current capacity (docs/adr/0014).
    return models.ConferenceOut(
        **{**_summary(conference).model_dump(), "slots": seats.slots},
        available_slots=seats.available_slots,
        waitlist_length=seats.waitlist_length,
    )


async def _with_availability(
    clients: ServiceClients | OnBehalfOf, conference: conference_pb2.Conference
) -> models.ConferenceOut:
    seats = await clients.bookings.GetSeatAvailability(
        booking_pb2.GetSeatAvailabilityRequest(conference_id=conference.conference_id),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return _conference_out(conference, seats)


def _booking(booking: booking_pb2.Booking) -> models.BookingOut:
    return models.BookingOut(**booking_json(booking))


# --- conferences ---------------------------------------------------------------


@router.post("/conference", status_code=201, responses=WRITE_ERRORS, tags=["conferences"])
async def create_conference(
    body: models.NewConference, clients: CallerClients, retry: RetryOf, response: Response
) -> models.ConferenceOut:
    """Create a conference.

    Beyond what the schema states (400 `VALIDATION_ERROR` otherwise): `start` in the future, `end` after
    `start`, at most 12 hours after it (exactly 12 is fine); names and topics of letters (of any script),
    digits and spaces; topics distinct ignoring case. A name taken, ignoring case: 409 `CONFERENCE_EXISTS`.
    """
    call = clients.conferences.CreateConference(
        conference_pb2.CreateConferenceRequest(
            name=body.name,
            location=body.location,
            start=to_timestamp(body.start),
            end=to_timestamp(body.end),
            slots=body.slots,
            topics=body.topics,
        ),
        timeout=clients.timeout,
        metadata=clients.metadata(*retry.metadata()),
    )
    conference: conference_pb2.Conference = await answer(call, response)
    if REPLAYED_HEADER not in response.headers:
        # Has the booking service copy it now, so that no booking has to ask the conference service.
        await _with_availability(clients, conference)
    # As created: every seat open and nobody waiting (a replay answers the same).
    return models.ConferenceOut(
        **_summary(conference).model_dump(), available_slots=conference.slots, waitlist_length=0
    )


@router.get("/conference/{name}", responses=PUBLIC_ERRORS, tags=["conferences"])
async def get_conference(name: models.NameToFind, clients: Clients) -> models.ConferenceOut:
    conference = await clients.conferences.GetConference(
        conference_pb2.GetConferenceRequest(name=name), timeout=clients.timeout, metadata=clients.metadata()
    )
    return await _with_availability(clients, conference)


@router.patch("/conference/{name}", responses=WRITE_ERRORS, tags=["conferences"])
async def change_capacity(
    name: models.NameToFind, body: models.CapacityChange, clients: CallerClients, retry: RetryOf, response: Response
) -> models.ConferenceOut:
    """Raise or lower the capacity: new seats go to the line at once; never below the seats held."""
    call = clients.bookings.ChangeCapacity(
        booking_pb2.ChangeCapacityRequest(conference_name=name, slots=body.slots),
        timeout=clients.timeout,
        metadata=clients.metadata(*retry.metadata()),
    )
    seats: booking_pb2.SeatAvailability = await answer(call, response)
    conference = await clients.conferences.GetConference(
        conference_pb2.GetConferenceRequest(conference_id=seats.conference_id),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return _conference_out(conference, seats)


@router.get("/conferences", responses=PUBLIC_ERRORS, tags=["conferences"])
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
    conferences = [_summary(conference) for conference in page.conferences]
    if conferences:
        # The current capacity of those whose seat ledger exists (docs/adr/0014).
        ledgers = await clients.bookings.ListSeatAvailability(
            booking_pb2.ListSeatAvailabilityRequest(conference_ids=[each.conference_id for each in conferences]),
            timeout=clients.timeout,
            metadata=clients.metadata(),
        )
        slots = {seats.conference_id: seats.slots for seats in ledgers.seats}
        conferences = [
            each.model_copy(update={"slots": slots.get(each.conference_id, each.slots)}) for each in conferences
        ]
    return models.ConferenceList(conferences=conferences, next_page_token=page.next_page_token)


@router.get("/conference/{name}/bookings", responses=ERRORS, tags=["conferences"])
async def conference_bookings(
    name: models.NameToFind,
    clients: CallerClients,
    status: Annotated[models.Status | None, Query()] = None,
    page_size: Annotated[PageSize, Query()] = 50,
    page_token: Annotated[PageToken, Query()] = "",
) -> models.ConferenceBookings:
    """The organizer's view (the conference's owner or an admin, else 403): the confirmed bookings, the open
    offers, then the line in its order with positions; or only those of `status`. A page at a time."""
    reply = await clients.bookings.ListConferenceBookings(
        booking_pb2.ListConferenceBookingsRequest(
            conference_name=name,
            status=booking_pb2.BookingStatus.Value(f"BOOKING_STATUS_{status or 'UNSPECIFIED'}"),
            page_size=page_size,
            page_token=page_token,
        ),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return models.ConferenceBookings(
        conference_name=reply.conference_name,
        bookings=[_booking(booking) for booking in reply.bookings],
        next_page_token=reply.next_page_token,
    )


# --- users ---------------------------------------------------------------------


@router.post("/user", status_code=201, responses=WRITE_ERRORS, tags=["users"])
async def create_user(
    body: models.NewUser, clients: CallerClients, retry: RetryOf, response: Response
) -> models.UserOut:
    """Create a user.

    Beyond what the schema states (400 `VALIDATION_ERROR` otherwise): `user_id` of letters (of any script)
    and digits, topics of letters, digits and spaces, distinct ignoring case. An id taken: 409 `USER_EXISTS`.
    """
    call = clients.bookings.CreateUser(
        booking_pb2.CreateUserRequest(user_id=body.user_id, topics=body.topics),
        timeout=clients.timeout,
        metadata=clients.metadata(*retry.metadata()),
    )
    user: booking_pb2.User = await answer(call, response)
    return models.UserOut(user_id=user.user_id, topics=list(user.topics))


@router.get("/user/{user_id}", responses=ERRORS, tags=["users"])
async def get_user(user_id: models.UserIdToFind, clients: CallerClients) -> models.UserOut:
    user = await clients.bookings.GetUser(
        booking_pb2.GetUserRequest(user_id=user_id), timeout=clients.timeout, metadata=clients.metadata()
    )
    return models.UserOut(user_id=user.user_id, topics=list(user.topics))


@router.get("/user/{user_id}/bookings", responses=ERRORS, tags=["users"])
async def list_user_bookings(user_id: models.UserIdToFind, clients: CallerClients) -> models.UserBookings:
    reply = await clients.bookings.ListUserBookings(
        booking_pb2.ListUserBookingsRequest(user_id=user_id), timeout=clients.timeout, metadata=clients.metadata()
    )
    return models.UserBookings(user_id=user_id, bookings=[_booking(booking) for booking in reply.bookings])


@router.get("/user/{user_id}/export", responses=ERRORS, tags=["users"])
async def export_user(user_id: models.UserIdToFind, clients: CallerClients) -> models.UserExport:
    """Everything the product holds about the user, as one document: the user's own subject or an admin."""
    reply = await clients.bookings.ExportUser(
        booking_pb2.ExportUserRequest(user_id=user_id), timeout=clients.timeout, metadata=clients.metadata()
    )
    return models.UserExport(
        user=models.ExportedUser(
            user_id=reply.user.user_id, topics=list(reply.user.topics), created_at=format_utc(reply.user.created_at)
        ),
        subject=reply.subject or None,
        bookings=[
            models.ExportedBooking(
                **booking_json(each.booking),
                created_at=format_utc(each.booking.created_at),
                history=[models.BookingEventOut.model_validate(event_json(event)) for event in each.history],
            )
            for each in reply.bookings
        ],
        webhooks=[
            models.ExportedWebhook(**_webhook(webhook), created_at=format_utc(webhook.created_at))
            for webhook in reply.webhooks
        ],
        conferences_owned=list(reply.owned_conferences),
        exported_at=format_utc(reply.exported_at),
    )


@router.delete("/user/{user_id}", status_code=204, responses=ERRORS, tags=["users"])
async def erase_user(user_id: models.UserIdToFind, clients: CallerClients) -> Response:
    """Erase the user: the user's own subject or an admin. Its active bookings are canceled (their seats
    go to the lines at once), its bookings stay under a pseudonym, and what identifies the person goes.
    A second DELETE is a 404: nothing is left to find."""
    await clients.bookings.EraseUser(
        booking_pb2.EraseUserRequest(user_id=user_id), timeout=clients.timeout, metadata=clients.metadata()
    )
    return Response(status_code=204)


@router.get("/user/{user_id}/recommendations", responses=ERRORS, tags=["users"])
async def recommendations(
    user_id: models.UserIdToFind,
    clients: CallerClients,
    limit: Annotated[RecommendationLimit, Query()] = validation.RECOMMENDATIONS_DEFAULT,
) -> models.Recommendations:
    """Conferences matching the user's topics that the user can still book, best first."""
    reply = await clients.bookings.RecommendConferences(
        booking_pb2.RecommendConferencesRequest(user_id=user_id, limit=limit),
        timeout=clients.timeout,
        metadata=clients.metadata(),
    )
    return models.Recommendations(
        user_id=user_id,
        conferences=[
            models.RecommendedConference(
                **_conference_out(each.conference, each.seats).model_dump(), matching_topics=list(each.matching_topics)
            )
            for each in reply.recommendations
        ],
    )


# --- bookings ------------------------------------------------------------------


@router.post("/book", status_code=201, responses=WRITE_ERRORS, tags=["bookings"])
async def book(body: models.BookRequest, clients: CallerClients, retry: RetryOf, response: Response) -> models.BookOut:
    call = clients.bookings.Book(
        booking_pb2.BookRequest(conference_name=body.name, user_id=body.user_id),
        timeout=clients.timeout,
        metadata=clients.metadata(*retry.metadata()),
    )
    reply: booking_pb2.BookResponse = await answer(call, response)
    booking = _booking(reply.booking)
    return models.BookOut(
        booking_id=booking.booking_id,
        status=booking.status,
        message=reply.message,
        waitlist_position=booking.waitlist_position,
    )


@router.get("/booking/{booking_id}", responses=ERRORS, tags=["bookings"])
async def get_booking(booking_id: BookingIdInPath, clients: CallerClients) -> models.BookingOut:
    booking = await clients.bookings.GetBooking(
        booking_pb2.GetBookingRequest(booking_id=booking_id), timeout=clients.timeout, metadata=clients.metadata()
    )
    return _booking(booking)


@router.post("/confirm", responses=WRITE_ERRORS, tags=["bookings"])
async def confirm(
    body: models.BookingRef, clients: CallerClients, retry: RetryOf, response: Response
) -> models.BookingChange:
    call = clients.bookings.ConfirmBooking(
        booking_pb2.ConfirmBookingRequest(booking_id=body.booking_id),
        timeout=clients.timeout,
        metadata=clients.metadata(*retry.metadata()),
    )
    booking: booking_pb2.Booking = await answer(call, response)
    return models.BookingChange(**_booking(booking).model_dump(), message="Booking confirmed")


@router.post("/cancel", responses=WRITE_ERRORS, tags=["bookings"])
async def cancel(
    body: models.BookingRef, clients: CallerClients, retry: RetryOf, response: Response
) -> models.BookingChange:
    call = clients.bookings.CancelBooking(
        booking_pb2.CancelBookingRequest(booking_id=body.booking_id),
        timeout=clients.timeout,
        metadata=clients.metadata(*retry.metadata()),
    )
    booking: booking_pb2.Booking = await answer(call, response)
    return models.BookingChange(**_booking(booking).model_dump(), message="Booking canceled")


# A comment line this often keeps an idle stream's connection (and any proxy on the way) open.
SSE_KEEPALIVE_SECONDS = 15.0
# What a browser's EventSource waits before reconnecting (with Last-Event-ID) once a stream ends.
SSE_RETRY_MILLISECONDS = 1000
# What read() returns once a stream has ended (missing from grpc's type stubs).
_END_OF_STREAM: object = grpc.aio.EOF  # type: ignore[attr-defined]


def _sse_frame(event: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return ("\n".join(lines) + "\n\n").encode()


async def _sse_stream(
    call: grpc.aio.UnaryStreamCall[booking_pb2.WatchBookingRequest, booking_pb2.BookingUpdate],
    first: booking_pb2.BookingUpdate,
    resumed: bool,
) -> AsyncIterator[bytes]:
    """The watch as Server-Sent Events; the call is canceled as soon as the client goes away.

    A new watch starts with the booking now, whose id is that of the last change it reflects;
    a resumed one (Last-Event-ID) goes straight on with the changes after the client's last.
    Either way each id sent is a point in the booking's history with nothing missed before it.
    """
    pending: asyncio.Future[Any] | None = None
    try:
        yield f"retry: {SSE_RETRY_MILLISECONDS}\n\n".encode()
        if not resumed:
            yield _sse_frame("booking", booking_json(first.booking), first.latest_event_id or None)
        while True:
            pending = asyncio.ensure_future(call.read())
            # Waiting on the read without canceling it: a canceled read would end the call.
            while not (await asyncio.wait({pending}, timeout=SSE_KEEPALIVE_SECONDS))[0]:
                yield b": keep-alive\n\n"
            update = pending.result()
            if update is _END_OF_STREAM:
                return  # the watch reached its lifetime; the client reconnects with Last-Event-ID
            body = event_json(update.event)
            yield _sse_frame(update.event.type, body, update.event.event_id)
    except grpc.aio.AioRpcError:
        return  # the service went away mid-stream: ending it makes the client reconnect and resume
    finally:
        call.cancel()
        if pending is not None and not pending.done():
            pending.cancel()


@router.get(
    "/booking/{booking_id}/events",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
    response_class=StreamingResponse,
    tags=["bookings"],
)
async def watch_booking(
    booking_id: BookingIdInPath,
    clients: CallerClients,
    last_event_id: Annotated[models.LastEventId, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """The booking now (event `booking`), then one event per change (`booking.offered`, ...), each with
    `id:` its event id. With `Last-Event-ID`, the changes after that event (no `booking` first).

    Beyond what the schema states: a `Last-Event-ID` that is no event of this booking is a 400
    `VALIDATION_ERROR` (a client resuming from another booking's stream would miss changes silently)."""
    call = clients.bookings.WatchBooking(
        booking_pb2.WatchBookingRequest(booking_id=booking_id, after_event_id=last_event_id or ""),
        metadata=clients.metadata(),
    )
    try:
        # The first message is the booking now, or the call fails (404 for an unknown booking) before any
        # byte of the stream is sent.
        first = await call.read()
    except BaseException:
        call.cancel()
        raise
    if first is _END_OF_STREAM:  # only if the service ended the call at once, as when shutting down
        call.cancel()
        raise errors.ApiError(503, "SERVICE_UNAVAILABLE", "the booking service is shutting down, try again")
    return StreamingResponse(
        _sse_stream(call, cast(booking_pb2.BookingUpdate, first), resumed=last_event_id is not None),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


# --- webhooks ------------------------------------------------------------------


def _webhook(webhook: booking_pb2.Webhook) -> dict[str, Any]:
    return {
        "webhook_id": webhook.webhook_id,
        "url": webhook.url,
        "events": list(webhook.events),
        "conference": webhook.conference or None,
    }


@router.post("/webhooks", status_code=201, responses=WRITE_ERRORS, tags=["webhooks"])
async def create_webhook(
    body: models.NewWebhook, clients: CallerClients, retry: RetryOf, response: Response
) -> models.WebhookCreated:
    """Deliveries are POSTs signed as Standard Webhooks says (webhook-id, webhook-timestamp, webhook-signature)."""
    call = clients.bookings.CreateWebhook(
        booking_pb2.CreateWebhookRequest(url=body.url, events=body.events or [], conference=body.conference or ""),
        timeout=clients.timeout,
        metadata=clients.metadata(*retry.metadata()),
    )
    webhook: booking_pb2.Webhook = await answer(call, response)
    return models.WebhookCreated(**_webhook(webhook), secret=webhook.secret)


@router.get("/webhooks", responses=ERRORS, tags=["webhooks"])
async def list_webhooks(clients: CallerClients) -> models.WebhookList:
    reply = await clients.bookings.ListWebhooks(
        booking_pb2.ListWebhooksRequest(), timeout=clients.timeout, metadata=clients.metadata()
    )
    return models.WebhookList(webhooks=[models.WebhookOut(**_webhook(webhook)) for webhook in reply.webhooks])


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=ERRORS, tags=["webhooks"])
async def delete_webhook(webhook_id: models.WebhookIdInPath, clients: CallerClients) -> Response:
    await clients.bookings.DeleteWebhook(
        booking_pb2.DeleteWebhookRequest(webhook_id=webhook_id), timeout=clients.timeout, metadata=clients.metadata()
    )
    return Response(status_code=204)


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
