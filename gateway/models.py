"""Request and response bodies. Types are strict (no "10" for 10, though 10.0 is 10 as JSON Schema
has it); each field is checked by the same rule the service applies (confbook_common.validation),
and the schema states what it can of it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from confbook_common import validation
from confbook_common.errors import InvalidInput
from gateway import timestamps

T = TypeVar("T")

# The error type of a broken rule; its context holds the service's own message ("name: must not be blank").
RULE_ERROR = "invalid_input"


def _refused(error: InvalidInput) -> PydanticCustomError:
    return PydanticCustomError(RULE_ERROR, "{message}", {"message": error.message})


def checked(field: str, rule: Callable[[str, T], T]) -> AfterValidator:
    """A pydantic validator applying one shared rule to the field named `field`."""

    def check(value: T) -> T:
        try:
            return rule(field, value)
        except InvalidInput as error:
            raise _refused(error) from None

    return AfterValidator(check)


def documented(rule: validation.TextRule) -> WithJsonSchema:
    return WithJsonSchema(rule.json_schema())


def int_range(minimum: int, maximum: int) -> WithJsonSchema:
    return WithJsonSchema({"type": "integer", "minimum": minimum, "maximum": maximum})


def _topics(max_count: int) -> Callable[[str, list[str]], list[str]]:
    def rule(field: str, values: list[str]) -> list[str]:
        return validation.topics(field, values, max_count=max_count)

    return rule


def _topics_schema(max_count: int) -> WithJsonSchema:
    items = validation.TOPIC.json_schema()
    return WithJsonSchema({"type": "array", "items": items, "maxItems": max_count, "uniqueItems": True})


def _parse_time(value: object, info: Any) -> datetime:
    field = info.field_name or "time"
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp_type", "Input should be a string")
    try:
        return validation.moment(field, timestamps.parse(value))
    except ValueError as error:
        raise PydanticCustomError("timestamp", str(error)) from None
    except InvalidInput as error:
        raise _refused(error) from None


Timestamp = Annotated[
    datetime,
    PlainValidator(_parse_time),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": timestamps.MAX_LENGTH,
            "pattern": timestamps.PATTERN,
            "description": f'"2024-06-15 09:00:00" (UTC) or ISO 8601 with T and zone, {validation.TIME_RANGE}',
        }
    ),
]


def _integral(value: Any) -> Any:
    """2.0 is 2: JSON has one kind of number, and JSON Schema counts a whole one as an integer."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An integer in JSON: no "10", no true, no 2.5; 2.0 is fine.
JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]
BookingId = Annotated[JsonInt, checked("booking_id", validation.json_id), int_range(1, validation.JSON_INT_MAX)]
Status = Literal["CONFIRMED", "WAITLISTED", "CONFIRMATION_PENDING", "CANCELED"]

ConferenceName = Annotated[
    StrictStr, checked("name", validation.CONFERENCE_NAME), documented(validation.CONFERENCE_NAME)
]
Location = Annotated[StrictStr, checked("location", validation.LOCATION), documented(validation.LOCATION)]
Slots = Annotated[JsonInt, checked("slots", validation.slots), int_range(1, validation.SLOTS_MAX)]
ConferenceTopics = Annotated[
    list[StrictStr],
    checked("topics", _topics(validation.CONFERENCE_TOPICS_MAX)),
    _topics_schema(validation.CONFERENCE_TOPICS_MAX),
]
UserId = Annotated[StrictStr, checked("user_id", validation.USER_ID), documented(validation.USER_ID)]
UserTopics = Annotated[
    list[StrictStr], checked("topics", _topics(validation.USER_TOPICS_MAX)), _topics_schema(validation.USER_TOPICS_MAX)
]
NameToFind = Annotated[StrictStr, checked("name", validation.NAME_LOOKUP), documented(validation.NAME_LOOKUP)]
UserIdToFind = Annotated[
    StrictStr, checked("user_id", validation.USER_ID_LOOKUP), documented(validation.USER_ID_LOOKUP)
]


ConferenceToFind = Annotated[
    StrictStr, checked("conference", validation.NAME_LOOKUP), documented(validation.NAME_LOOKUP)
]
WebhookUrl = Annotated[
    StrictStr,
    checked("url", validation.webhook_url),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": validation.WEBHOOK_URL_MAX_LENGTH,
            "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s]+$",
            "description": "an absolute http or https URL with a host",
        }
    ),
]
EventTypes = Annotated[
    list[StrictStr],
    checked("events", validation.event_types),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "enum": list(validation.BOOKING_EVENT_TYPES)},
            "uniqueItems": True,
            "description": "the event types to receive; left out, null or empty: all of them",
        }
    ),
]
_UUID_SCHEMA = {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "minLength": validation.UUID_LENGTH,
    "maxLength": validation.UUID_LENGTH,
}
WebhookIdInPath = Annotated[StrictStr, checked("webhook_id", validation.uuid_text), WithJsonSchema(_UUID_SCHEMA)]
# Optional, and documented as the UUID alone: a header is absent or a string, never JSON's null.
LastEventId = Annotated[
    StrictStr | None,
    checked("Last-Event-ID", lambda field, value: None if value is None else validation.uuid_text(field, value)),
    WithJsonSchema(_UUID_SCHEMA),
]


class Request(BaseModel):
    model_config = ConfigDict(strict=True)


class NewConference(Request):
    name: ConferenceName = Field(examples=["Tech Conference 2024"])
    location: Location = Field(examples=["San Francisco"])
    start: Timestamp = Field(examples=["2030-06-15 09:00:00"])
    end: Timestamp = Field(examples=["2030-06-15 17:00:00"])
    slots: Slots = Field(examples=[100])
    topics: ConferenceTopics = Field(examples=[["AI", "Machine Learning"]])


class CapacityChange(Request):
    slots: Slots = Field(examples=[150], description="The new capacity; at least the seats held")


class NewUser(Request):
    user_id: UserId = Field(examples=["john123"])
    topics: UserTopics = Field(examples=[["AI", "Data Science"]])


class BookRequest(Request):
    name: NameToFind = Field(examples=["Tech Conference 2024"])
    user_id: UserIdToFind = Field(examples=["john123"])


class BookingRef(Request):
    booking_id: BookingId = Field(examples=[123])


class ConferenceOut(BaseModel):
    conference_id: int
    name: str
    location: str
    start: str = Field(examples=["2030-06-15T09:00:00Z"])
    end: str = Field(examples=["2030-06-15T17:00:00Z"])
    slots: int
    topics: list[str]
    available_slots: int = Field(description="Seats a new booking would get at once (0 while anyone waits)")
    waitlist_length: int


class RecommendedConference(ConferenceOut):
    matching_topics: list[str] = Field(
        description="The conference's topics the user shares (ignoring case), in the conference's spelling"
    )


class Recommendations(BaseModel):
    user_id: str
    conferences: list[RecommendedConference]


class ConferenceSummary(BaseModel):
    conference_id: int
    name: str
    location: str
    start: str
    end: str
    slots: int
    topics: list[str]


class ConferenceList(BaseModel):
    conferences: list[ConferenceSummary]
    next_page_token: str = Field(description="Pass as page_token for the next page; empty on the last one")


class UserOut(BaseModel):
    user_id: str
    topics: list[str]


class BookOut(BaseModel):
    booking_id: int
    status: Status
    message: str
    waitlist_position: int | None


class BookingOut(BaseModel):
    booking_id: int
    status: Status
    conference_name: str
    user_id: str
    can_confirm: bool
    confirmation_deadline: str | None = Field(examples=["2030-06-14T10:00:00Z"])
    waitlist_position: int | None


class BookingChange(BookingOut):
    message: str


class UserBookings(BaseModel):
    user_id: str
    bookings: list[BookingOut]


class ConferenceBookings(BaseModel):
    conference_name: str
    bookings: list[BookingOut]
    next_page_token: str = Field(description="Empty on the last page")


class NewWebhook(Request):
    url: WebhookUrl = Field(examples=["https://example.com/hooks/confbook"])
    events: EventTypes | None = Field(default=None, examples=[["booking.offered"]])
    conference: ConferenceToFind | None = Field(
        default=None, description="only this conference's bookings; left out or null: every conference"
    )


class WebhookOut(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    conference: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="whsec_ and the base64 of the key that signs deliveries (Standard Webhooks); shown only now"
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class EventData(BaseModel):
    booking: BookingOut
    reason: str = Field(examples=["user_erased"])
    by: str = Field(description="Who caused the change: attendee, organizer, admin or system")


class BookingEventOut(BaseModel):
    """A change of a booking, as webhooks deliver and streams send it."""

    id: str
    type: str = Field(examples=["booking.canceled"])
    occurred_at: str = Field(examples=["2030-06-14T10:00:00Z"])
    data: EventData


class ExportedUser(UserOut):
    created_at: str


class ExportedBooking(BookingOut):
    created_at: str
    history: list[BookingEventOut] = Field(
        description="Its changes, oldest first, as far back as RETENTION_BOOKING_EVENTS keeps them"
    )


class ExportedWebhook(WebhookOut):
    created_at: str


class UserExport(BaseModel):
    """Everything the product holds about a user."""

    user: ExportedUser
    subject: str | None = Field(description="The subject of the access tokens the user belongs to")
    bookings: list[ExportedBooking]
    webhooks: list[ExportedWebhook] = Field(description="The subject's subscriptions, without their secrets")
    conferences_owned: list[str] = Field(description="The names of the conferences the subject created")
    exported_at: str


class ErrorDetail(BaseModel):
    code: str = Field(examples=["CONFERENCE_STARTED"])
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
