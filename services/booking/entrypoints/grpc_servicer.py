"""The public gRPC API: decode the request, call a handler, encode the answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

import grpc

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from confbook.conference.v1 import conference_pb2
from confbook_common import validation
from confbook_common.auth.caller import Caller
from confbook_common.errors import DependencyUnavailable, InvalidInput
from confbook_common.idempotency import IdempotentCalls
from confbook_common.rpc.metadata import AUTHORIZATION, metadata_value
from confbook_common.timestamps import to_timestamp, utc_now
from confbook_common.validation import conference_name_key
from services.booking.adapters import tables
from services.booking.adapters.change_notices import ChangeNotices
from services.booking.adapters.conference_directory import ConferenceDirectory
from services.booking.adapters.metrics import BOOKINGS_TOGETHER
from services.booking.adapters.repository import BookAttempt
from services.booking.domain import listing
from services.booking.domain import webhooks as webhook_rules
from services.booking.domain.events import BookingEvent
from services.booking.domain.model import (
    BookingView,
    SeatAvailability,
    Status,
    User,
    conference_name_to_find,
    new_user_id,
    new_user_topics,
    user_id_to_find,
)
from services.booking.domain.recommendations import Recommendation, recommendation_limit
from services.booking.domain.webhooks import Webhook
from services.booking.entrypoints.batches import Batches, BatchFailed, NoTurnInTime
from services.booking.service_layer import handlers
from services.booking.service_layer import webhooks as webhook_handlers
from services.booking.service_layer.unit_of_work import UnitOfWorkFactory


def status_message(status: Status) -> booking_pb2.BookingStatus.ValueType:
    return booking_pb2.BookingStatus.Value(f"BOOKING_STATUS_{status.value}")


def status_asked(value: booking_pb2.BookingStatus.ValueType) -> Status | None:
    """A status a request names; None for UNSPECIFIED. Any other number is invalid."""
    if value == booking_pb2.BOOKING_STATUS_UNSPECIFIED:
        return None
    if value not in booking_pb2.BookingStatus.values():
        raise InvalidInput("status", "is not a booking status")
    return Status(booking_pb2.BookingStatus.Name(value).removeprefix("BOOKING_STATUS_"))


def to_booking_message(view: BookingView) -> booking_pb2.Booking:
    booking = view.booking
    message = booking_pb2.Booking(
        booking_id=booking.booking_id,
        status=status_message(booking.status),
        conference_id=booking.conference.conference_id,
        conference_name=booking.conference.name,
        user_id=booking.user_id,
        can_confirm=booking.can_confirm(utc_now()),
        created_at=to_timestamp(booking.created_at),
        updated_at=to_timestamp(booking.updated_at),
    )
    if booking.offer_deadline is not None:
        message.confirmation_deadline.CopyFrom(to_timestamp(booking.offer_deadline))
    if view.waitlist_position is not None:
        message.waitlist_position = view.waitlist_position
    return message


def to_event_message(event: BookingEvent) -> booking_pb2.BookingEvent:
    return booking_pb2.BookingEvent(
        event_id=event.event_id,
        type=event.type.value,
        occurred_at=to_timestamp(event.occurred_at),
        booking=to_booking_message(event.view),
        reason=event.reason.value,
        actor_role=event.actor_role.value,
    )


def to_webhook_message(webhook: Webhook, *, with_secret: bool = False) -> booking_pb2.Webhook:
    return booking_pb2.Webhook(
        webhook_id=webhook.webhook_id,
        url=webhook.url,
        events=[event_type.value for event_type in webhook.events],
        conference=webhook.conference or "",
        secret=webhook.secret if with_secret else "",
        created_at=to_timestamp(webhook.created_at),
    )


def to_user_message(user: User) -> booking_pb2.User:
    return booking_pb2.User(user_id=user.user_id, topics=list(user.topics), created_at=to_timestamp(user.created_at))


def to_availability_message(availability: SeatAvailability) -> booking_pb2.SeatAvailability:
    return booking_pb2.SeatAvailability(
        conference_id=availability.conference_id,
        slots=availability.slots,
        seats_held=availability.held,
        available_slots=availability.open_to_newcomers,
        waitlist_length=availability.waiting,
    )


def to_recommendation_message(recommendation: Recommendation) -> booking_pb2.Recommendation:
    listing = recommendation.listing
    conference = listing.conference
    return booking_pb2.Recommendation(
        conference=conference_pb2.Conference(
            conference_id=conference.conference_id,
            name=conference.name,
            location=listing.location,
            start=to_timestamp(conference.start),
            end=to_timestamp(conference.end),
            slots=conference.slots,
            topics=list(listing.topics),
            created_at=to_timestamp(listing.created_at),
        ),
        seats=to_availability_message(recommendation.seats),
        matching_topics=list(recommendation.matching_topics),
    )


def book_response(view: BookingView) -> booking_pb2.BookResponse:
    return booking_pb2.BookResponse(booking=to_booking_message(view), message=outcome_message(view))


def outcome_message(view: BookingView) -> str:
    if view.booking.status is Status.CONFIRMED:
        return "Booking confirmed successfully"
    return f"The conference is full: you are number {view.waitlist_position} on the waitlist"


# The most bookings of one conference this process makes in one statement; the rest wait for the
# next. Why, measured: docs/adr/0019.
BOOKINGS_TOGETHER_AT_MOST = 32
log = logging.getLogger(__name__)
_SERVICE = booking_pb2.DESCRIPTOR.services_by_name["BookingService"].full_name


class CallerSource(Protocol):
    """Who calls: confbook_common.auth.bearer.Callers, from the call's verified bearer token."""

    def of(self, context: grpc.ServicerContext) -> Caller: ...


class BookingServicer(booking_pb2_grpc.BookingServiceServicer):
    """The write methods run once per `idempotency-key` of their caller when it sends one
    (confbook_common.idempotency).

    Every method needs the caller's access token but the seat availabilities, which are public
    (the gateway shows them with each conference, to anyone); who may do what is the handlers'
    to decide (services/booking/domain/access.py).
    """

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        directory: ConferenceDirectory,
        callers: CallerSource,
        *,
        notices: ChangeNotices | None = None,
        watch_seconds: float = 300.0,
        recheck_seconds: float = 30.0,
        refuse_internal_addresses: bool = False,
    ) -> None:
        self._uow = unit_of_work
        self._directory = directory
        self._callers = callers
        self._once = IdempotentCalls(tables.idempotency_keys)
        self._bookings_together: Batches[str, tuple[str, Caller], BookAttempt] = Batches(
            self._book_together, most=BOOKINGS_TOGETHER_AT_MOST
        )
        self._notices = notices
        self._watch_seconds = watch_seconds
        # A watcher reads the history again this often even without a notice (one lost while
        # the listening connection was being replaced, say).
        self._recheck_seconds = recheck_seconds
        self._refuse_internal_addresses = refuse_internal_addresses

    def CreateUser(self, request: booking_pb2.CreateUserRequest, context: grpc.ServicerContext) -> booking_pb2.User:
        caller = self._callers.of(context)
        user_id = new_user_id(request.user_id)
        topics = new_user_topics(list(request.topics))
        uow = self._uow()
        return self._once.run(
            uow,
            context,
            f"/{_SERVICE}/CreateUser",
            request,
            lambda: to_user_message(handlers.create_user(uow, user_id, topics, caller)),
            booking_pb2.User,
            caller=caller.subject,
        )

    def GetUser(self, request: booking_pb2.GetUserRequest, context: grpc.ServicerContext) -> booking_pb2.User:
        caller = self._callers.of(context)
        return to_user_message(handlers.get_user(self._uow(), user_id_to_find(request.user_id), caller))

    def Book(self, request: booking_pb2.BookRequest, context: grpc.ServicerContext) -> booking_pb2.BookResponse:
        caller = self._callers.of(context)
        user_id = user_id_to_find(request.user_id)
        conference_name = conference_name_to_find(request.conference_name)
        uow = self._uow()

        def book_alone() -> booking_pb2.BookResponse:
            view = handlers.book(
                uow, self._directory, user_id=user_id, conference_name=conference_name, now=utc_now(), caller=caller
            )
            return book_response(view)

        if self._once.keyed(context):  # its key is written in the booking's own transaction
            return self._once.run(
                uow, context, f"/{_SERVICE}/Book", request, book_alone, booking_pb2.BookResponse, caller=caller.subject
            )
        try:
            attempt = self._bookings_together.submit(
                conference_name_key(conference_name), (user_id, caller), timeout=context.time_remaining()
            )
        except NoTurnInTime:
            raise DependencyUnavailable("too many bookings of this conference at once; try again") from None
        except BatchFailed:  # shared with others: nothing of it was booked, and the error may be another's
            return book_alone()
        view = handlers.finish_booking(
            uow,
            self._directory,
            attempt,
            user_id=user_id,
            conference_name=conference_name,
            now=utc_now(),
            caller=caller,
        )
        return book_response(view)

    def _book_together(self, conference_key: str, requests: list[tuple[str, Caller]]) -> list[BookAttempt]:
        """The bookings of one conference that came together, each `(user_id, its caller)`."""
        BOOKINGS_TOGETHER.observe(len(requests))
        try:
            return handlers.book_together(self._uow(), requests, conference_key=conference_key, now=utc_now())
        except Exception as error:
            if len(requests) > 1:
                log.warning(
                    "%d bookings of one conference failed together (%s); each is made alone", len(requests), error
                )
            raise

    def GetBooking(self, request: booking_pb2.GetBookingRequest, context: grpc.ServicerContext) -> booking_pb2.Booking:
        caller = self._callers.of(context)
        booking_id = validation.positive_id("booking_id", request.booking_id)
        return to_booking_message(handlers.get_booking(self._uow(), booking_id, caller))

    def ConfirmBooking(
        self, request: booking_pb2.ConfirmBookingRequest, context: grpc.ServicerContext
    ) -> booking_pb2.Booking:
        caller = self._callers.of(context)
        booking_id = validation.positive_id("booking_id", request.booking_id)
        uow = self._uow()
        return self._once.run(
            uow,
            context,
            f"/{_SERVICE}/ConfirmBooking",
            request,
            lambda: to_booking_message(handlers.confirm(uow, booking_id, utc_now(), caller)),
            booking_pb2.Booking,
            caller=caller.subject,
        )

    def CancelBooking(
        self, request: booking_pb2.CancelBookingRequest, context: grpc.ServicerContext
    ) -> booking_pb2.Booking:
        caller = self._callers.of(context)
        booking_id = validation.positive_id("booking_id", request.booking_id)
        uow = self._uow()
        return self._once.run(
            uow,
            context,
            f"/{_SERVICE}/CancelBooking",
            request,
            lambda: to_booking_message(handlers.cancel(uow, booking_id, utc_now(), caller)),
            booking_pb2.Booking,
            caller=caller.subject,
        )

    def ListUserBookings(
        self, request: booking_pb2.ListUserBookingsRequest, context: grpc.ServicerContext
    ) -> booking_pb2.ListUserBookingsResponse:
        caller = self._callers.of(context)
        views = handlers.list_user_bookings(self._uow(), user_id_to_find(request.user_id), caller)
        return booking_pb2.ListUserBookingsResponse(bookings=[to_booking_message(view) for view in views])

    def GetSeatAvailability(
        self, request: booking_pb2.GetSeatAvailabilityRequest, context: grpc.ServicerContext
    ) -> booking_pb2.SeatAvailability:
        """Public, as the conference is: no token needed."""
        conference_id = validation.positive_id("conference_id", request.conference_id)
        return to_availability_message(handlers.seat_availability(self._uow(), self._directory, conference_id))

    def ListSeatAvailability(
        self, request: booking_pb2.ListSeatAvailabilityRequest, context: grpc.ServicerContext
    ) -> booking_pb2.ListSeatAvailabilityResponse:
        """Public, as the conferences are: no token needed."""
        conference_ids = validation.ids(
            "conference_ids", list(request.conference_ids), max_count=validation.PAGE_SIZE_MAX
        )
        found = handlers.seats_of(self._uow(), conference_ids)
        return booking_pb2.ListSeatAvailabilityResponse(seats=[to_availability_message(each) for each in found])

    def ChangeCapacity(
        self, request: booking_pb2.ChangeCapacityRequest, context: grpc.ServicerContext
    ) -> booking_pb2.SeatAvailability:
        caller = self._callers.of(context)
        conference_name = conference_name_to_find(request.conference_name)
        slots = validation.slots("slots", request.slots)
        uow = self._uow()

        def change() -> booking_pb2.SeatAvailability:
            availability = handlers.change_capacity(
                uow, self._directory, conference_name=conference_name, slots=slots, now=utc_now(), caller=caller
            )
            return to_availability_message(availability)

        return self._once.run(
            uow,
            context,
            f"/{_SERVICE}/ChangeCapacity",
            request,
            change,
            booking_pb2.SeatAvailability,
            caller=caller.subject,
        )

    def ListConferenceBookings(
        self, request: booking_pb2.ListConferenceBookingsRequest, context: grpc.ServicerContext
    ) -> booking_pb2.ListConferenceBookingsResponse:
        caller = self._callers.of(context)
        conference_name = conference_name_to_find(request.conference_name)
        status = status_asked(request.status)
        page_size = listing.page_size(request.page_size)
        after = listing.position_after(request.page_token, listing.statuses_listed(status))
        page = handlers.list_conference_bookings(
            self._uow(),
            self._directory,
            conference_name=conference_name,
            status=status,
            after=after,
            page_size=page_size,
            caller=caller,
        )
        return booking_pb2.ListConferenceBookingsResponse(
            conference_name=page.conference.name,
            bookings=[to_booking_message(view) for view in page.views],
            next_page_token=page.next_page_token,
        )

    def RecommendConferences(
        self, request: booking_pb2.RecommendConferencesRequest, context: grpc.ServicerContext
    ) -> booking_pb2.RecommendConferencesResponse:
        caller = self._callers.of(context)
        found = handlers.recommend_conferences(
            self._uow(),
            self._directory,
            user_id=user_id_to_find(request.user_id),
            limit=recommendation_limit(request.limit),
            now=utc_now(),
            caller=caller,
        )
        return booking_pb2.RecommendConferencesResponse(
            recommendations=[to_recommendation_message(each) for each in found]
        )

    async def WatchBooking(
        self, request: booking_pb2.WatchBookingRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[booking_pb2.BookingUpdate]:
        """Runs on the event loop and holds no thread while it waits; reads go to the default executor."""
        # Who asks comes first, as in every other method; off the event loop, since verifying a token
        # may fetch the issuer's keys.
        caller = await asyncio.to_thread(self._callers.of, context)  # type: ignore[arg-type]  # reads only metadata
        booking_id = validation.positive_id("booking_id", request.booking_id)
        after = validation.uuid_text("after_event_id", request.after_event_id) if request.after_event_id else None
        assert self._notices is not None, "WatchBooking needs the change notices"
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self._watch_seconds

        def start_watching() -> handlers.WatchStart:
            return handlers.watch_from(self._uow(), booking_id, after, caller)

        # Listening starts before the first read, so no change can fall between the two.
        with self._notices.watching(booking_id) as changed:
            start = await asyncio.to_thread(start_watching)
            yield booking_pb2.BookingUpdate(
                booking=to_booking_message(start.view), latest_event_id=start.latest_event_id or ""
            )
            sequence = start.after_sequence
            while True:
                changed.clear()
                events = await asyncio.to_thread(handlers.changes_after, self._uow(), booking_id, sequence)
                for event in events:
                    yield booking_pb2.BookingUpdate(event=to_event_message(event))
                    sequence = event.sequence
                if events:
                    continue  # there may be more than one page
                remaining = ends_at - loop.time()
                if remaining <= 0:
                    return  # OK: the client watches again from its last event
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(remaining, self._recheck_seconds))

    def CreateWebhook(
        self, request: booking_pb2.CreateWebhookRequest, context: grpc.ServicerContext
    ) -> booking_pb2.Webhook:
        caller = self._callers.of(context)
        url = webhook_rules.webhook_url(request.url)
        event_types = webhook_rules.event_types(list(request.events))
        conference = conference_name_to_find(request.conference) if request.conference else None
        uow = self._uow()

        def create() -> booking_pb2.Webhook:
            webhook = webhook_handlers.create_webhook(
                uow,
                self._directory,
                url=url,
                event_types=event_types,
                conference_name=conference,
                refuse_internal_addresses=self._refuse_internal_addresses,
                caller=caller,
            )
            return to_webhook_message(webhook, with_secret=True)

        return self._once.run(
            uow, context, f"/{_SERVICE}/CreateWebhook", request, create, booking_pb2.Webhook, caller=caller.subject
        )

    def ListWebhooks(
        self, request: booking_pb2.ListWebhooksRequest, context: grpc.ServicerContext
    ) -> booking_pb2.ListWebhooksResponse:
        caller = self._callers.of(context)
        return booking_pb2.ListWebhooksResponse(
            webhooks=[to_webhook_message(webhook) for webhook in webhook_handlers.list_webhooks(self._uow(), caller)]
        )

    def DeleteWebhook(
        self, request: booking_pb2.DeleteWebhookRequest, context: grpc.ServicerContext
    ) -> booking_pb2.DeleteWebhookResponse:
        caller = self._callers.of(context)
        webhook_id = validation.uuid_text("webhook_id", request.webhook_id)
        webhook_handlers.delete_webhook(self._uow(), webhook_id, caller)
        return booking_pb2.DeleteWebhookResponse()

    def ExportUser(
        self, request: booking_pb2.ExportUserRequest, context: grpc.ServicerContext
    ) -> booking_pb2.UserExport:
        caller = self._callers.of(context)
        data = handlers.export_user(self._uow(), user_id_to_find(request.user_id), caller)
        return booking_pb2.UserExport(
            user=to_user_message(data.user),
            subject=data.user.subject or "",
            bookings=[
                booking_pb2.ExportedBooking(
                    booking=to_booking_message(view), history=[to_event_message(event) for event in history]
                )
                for view, history in data.bookings
            ],
            webhooks=[to_webhook_message(webhook) for webhook in data.webhooks],
            owned_conferences=data.conferences_owned,
            exported_at=to_timestamp(utc_now()),
        )

    def EraseUser(
        self, request: booking_pb2.EraseUserRequest, context: grpc.ServicerContext
    ) -> booking_pb2.EraseUserResponse:
        caller = self._callers.of(context)
        user_id = user_id_to_find(request.user_id)
        # The conference service checks the same token: the user's own subject, or an admin.
        authorization = metadata_value(context, AUTHORIZATION) or ""
        erasure = handlers.erase_user(
            self._uow(),
            user_id,
            utc_now(),
            caller,
            forget_owner=lambda subject: self._directory.forget_owner(subject, authorization),
        )
        return booking_pb2.EraseUserResponse(
            bookings_canceled=erasure.bookings_canceled, bookings_kept=erasure.bookings_kept
        )
