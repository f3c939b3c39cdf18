"""Request and response bodies. Types are strict (no "10" for 10); the services enforce the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictInt, StrictStr, WithJsonSchema
from pydantic_core import PydanticCustomError

from gateway import timestamps

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp_type", "Input should be a string")
    try:
        return timestamps.parse(value)
    except ValueError as error:
        raise PydanticCustomError("timestamp", str(error)) from None


Timestamp = Annotated[
    datetime,
    PlainValidator(_parse_time),
    WithJsonSchema({"type": "string", "description": '"2024-06-15 09:00:00" (UTC) or ISO 8601 with T and zone'}),
]
# Bounds of the wire format only; what is allowed is for the services to say.
Int32 = Annotated[StrictInt, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
BookingId = Annotated[StrictInt, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Status = Literal["CONFIRMED", "WAITLISTED", "CONFIRMATION_PENDING", "CANCELED"]


class Request(BaseModel):
    model_config = ConfigDict(strict=True)


class NewConference(Request):
    name: StrictStr = Field(examples=["Tech Conference 2024"])
    location: StrictStr = Field(examples=["San Francisco"])
    start: Timestamp = Field(examples=["2030-06-15 09:00:00"])
    end: Timestamp = Field(examples=["2030-06-15 17:00:00"])
    slots: Int32 = Field(examples=[100])
    topics: list[StrictStr] = Field(examples=[["AI", "Machine Learning"]])


class NewUser(Request):
    user_id: StrictStr = Field(examples=["john123"])
    topics: list[StrictStr] = Field(examples=[["AI", "Data Science"]])


class BookRequest(Request):
    name: StrictStr = Field(description="The conference's name (case is ignored)", examples=["Tech Conference 2024"])
    user_id: StrictStr = Field(examples=["john123"])


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


class ErrorDetail(BaseModel):
    code: str = Field(examples=["CONFERENCE_STARTED"])
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
