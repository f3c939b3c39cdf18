"""The ways in to the stack under test: the gateway over HTTP, the booking service over gRPC, and its table."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import grpc
import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc
from scripts.bench import tokens
from scripts.bench.tokens import Signer
from services.booking.adapters.tables import bookings

POLL_SECONDS = 0.02
# Only a broken stack takes this long; the figures themselves are never judged against a time.
GIVE_UP_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 30.0

CONFIRMED = "CONFIRMED"
WAITLISTED = "WAITLISTED"
PENDING = "CONFIRMATION_PENDING"
CANCELED = "CANCELED"

Item = TypeVar("Item")
Result = TypeVar("Result")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


class RequestFailed(BenchError):
    """A request got an answer other than the one expected."""


@dataclass(frozen=True)
class Placement:
    """What a booking request got: a status (or an error) and, in line, a position."""

    booking_id: int
    status: str
    position: int | None


class Gateway:
    """The HTTP API, with shortcuts that create uniquely named conferences and users.

    Each request carries the token of whoever would make it: an organizer creates the conferences (and owns
    them), each user is created by and books as its own subject, a booking is canceled by its user's subject,
    and the bench's own reads for its checks are an admin's. Reading a conference is public.
    """

    def __init__(self, http: httpx.AsyncClient, signer: Signer) -> None:
        self._http = http
        self._signer = signer
        self._organizer = bearer(signer.token(tokens.ORGANIZER, "organizer"))
        self._admin = bearer(signer.token(tokens.ADMIN, "admin"))
        self._users: dict[str, dict[str, str]] = {}
        self._holders: dict[int, str] = {}  # booking id -> its user, for the bookings made here

    def as_user(self, user_id: str) -> dict[str, str]:
        """The headers of the user's own requests: every bench user belongs to the subject named like it."""
        if user_id not in self._users:
            self._users[user_id] = bearer(self._signer.token(user_id))
        return self._users[user_id]

    def as_holder(self, booking_id: int) -> dict[str, str]:
        """The headers of the booking's own user if it was booked here, else an admin's."""
        user_id = self._holders.get(booking_id)
        return self.as_user(user_id) if user_id else self._admin

    def as_admin(self) -> dict[str, str]:
        return self._admin

    async def create_conference(self, slots: int, start: datetime | None = None) -> str:
        return str((await self.new_conference(slots, start))["name"])

    async def new_conference(
        self, slots: int, start: datetime | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """The conference as POST /conference answers it, with its conference_id."""
        start = start or whole_second(datetime.now(UTC)) + timedelta(days=30)
        body = {
            "name": name or f"Bench {uuid.uuid4().hex[:12]}",
            "location": "Berlin",
            "start": wire_time(start),
            "end": wire_time(start + timedelta(hours=2)),
            "slots": slots,
            "topics": ["Benchmarks"],
        }
        return _expect(await self._http.post("/conference", json=body, headers=self._organizer), 201)

    async def create_user(self) -> str:
        user_id = new_user_id()
        body = {"user_id": user_id, "topics": ["Benchmarks"]}
        _expect(await self._http.post("/user", json=body, headers=self.as_user(user_id)), 201)
        return user_id

    async def book(self, conference: str, user_id: str) -> Placement:
        request = {"name": conference, "user_id": user_id}
        body = _expect(await self._http.post("/book", json=request, headers=self.as_user(user_id)), 201)
        self._holders[body["booking_id"]] = user_id
        return Placement(body["booking_id"], body["status"], body["waitlist_position"])

    async def booking(self, booking_id: int) -> dict[str, Any]:
        """The booking as an admin reads it: the bench's checks read bookings of many users."""
        return _expect(await self._http.get(f"/booking/{booking_id}", headers=self._admin), 200)

    async def cancel(self, booking_id: int, *, already_canceled_is_fine: bool = False) -> None:
        response = await self._http.post("/cancel", json={"booking_id": booking_id}, headers=self.as_holder(booking_id))
        if not (already_canceled_is_fine and response.status_code == 409):
            _expect(response, 200)

    async def conference(self, name: str) -> dict[str, Any]:
        return _expect(await self._http.get(f"/conference/{name}"), 200)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        request = response.request
        raise RequestFailed(f"{request.method} {request.url.path}: HTTP {response.status_code} {response.text[:200]}")
    return dict(response.json())


def whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def wire_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def new_user_id() -> str:
    return f"bench{uuid.uuid4().hex[:16]}"


async def grpc_book(
    stub: booking_pb2_grpc.BookingServiceAsyncStub, conference: str, user_id: str, token: str
) -> Placement:
    request = booking_pb2.BookRequest(conference_name=conference, user_id=user_id)
    metadata = (("authorization", f"Bearer {token}"),)
    try:
        reply = await stub.Book(request, timeout=REQUEST_TIMEOUT_SECONDS, metadata=metadata)
    except grpc.aio.AioRpcError as error:
        raise RequestFailed(f"Book: gRPC {error.code().name} {error.details()}") from error
    booking = reply.booking
    status = booking_pb2.BookingStatus.Name(booking.status).removeprefix("BOOKING_STATUS_")
    position = booking.waitlist_position if booking.HasField("waitlist_position") else None
    return Placement(booking.booking_id, status, position)


@dataclass(frozen=True)
class Row:
    status: str
    updated_at: datetime
    offer_deadline: datetime | None


@dataclass(frozen=True)
class Booked:
    """One booking as the table has it, without the columns a change of schema might take away."""

    booking_id: int
    status: str
    conference_id: int
    user_id: str


class BookingTable:
    """The booking service's table, read directly: there, each change carries its transaction's timestamp.

    Only booking_id, status, conference_id, user_id, updated_at and offer_deadline are read: the rest of the
    schema is the service's own business and may change.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(self, booking_ids: Iterable[int]) -> dict[int, Row]:
        query = select(bookings.c.booking_id, bookings.c.status, bookings.c.updated_at, bookings.c.offer_deadline)
        with self._engine.connect() as db:
            rows = db.execute(query.where(bookings.c.booking_id.in_(list(booking_ids))))
            return {row.booking_id: Row(row.status, row.updated_at, row.offer_deadline) for row in rows}

    def of_conferences(self, conference_ids: Iterable[int]) -> list[Booked]:
        columns = (bookings.c.booking_id, bookings.c.status, bookings.c.conference_id, bookings.c.user_id)
        query = select(*columns).where(bookings.c.conference_id.in_(list(conference_ids)))
        with self._engine.connect() as db:
            rows = db.execute(query.order_by(bookings.c.booking_id))
            return [Booked(row.booking_id, row.status, row.conference_id, row.user_id) for row in rows]

    def count_of_conferences(self, conference_ids: Iterable[int]) -> int:
        query = select(func.count()).where(bookings.c.conference_id.in_(list(conference_ids)))
        with self._engine.connect() as db:
            return int(db.execute(query).scalar_one())

    async def settled_count(self, conference_ids: Sequence[int], quiet_seconds: float = 0.5) -> int:
        """The conferences' booking count once it stops growing: wrk stops with requests still in flight."""
        give_up = time.monotonic() + GIVE_UP_SECONDS
        count = self.count_of_conferences(conference_ids)
        while time.monotonic() < give_up:
            await asyncio.sleep(quiet_seconds)
            previous, count = count, self.count_of_conferences(conference_ids)
            if count == previous:
                return count
        raise BenchError(f"bookings kept arriving for {GIVE_UP_SECONDS:.0f} s after wrk stopped")

    async def wait_for(self, booking_ids: Sequence[int], done: Callable[[dict[int, Row]], bool]) -> dict[int, Row]:
        """Poll until `done(rows)`; the timestamps in the rows, not the polling, are what gets measured."""
        give_up = time.monotonic() + GIVE_UP_SECONDS
        while not done(rows := self.read(booking_ids)):
            if time.monotonic() > give_up:
                states = ", ".join(f"{booking_id} {row.status}" for booking_id, row in sorted(rows.items()))
                raise BenchError(f"gave up after {GIVE_UP_SECONDS:.0f} s waiting on bookings {states}")
            await asyncio.sleep(POLL_SECONDS)
        return rows

    async def wait_for_status(self, booking_ids: Sequence[int], status: str) -> dict[int, Row]:
        return await self.wait_for(booking_ids, lambda rows: all(row.status == status for row in rows.values()))


@dataclass(frozen=True)
class Connections:
    """The three ways in: the gateway over HTTP, the booking service over gRPC, and its table; and the tokens."""

    gateway: Gateway
    booking: booking_pb2_grpc.BookingServiceAsyncStub
    table: BookingTable
    signer: Signer


def seconds_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds()


@dataclass(frozen=True)
class Burst(Generic[Result]):
    """Results of one concurrent run, with each call's latency and the wall time of the whole run."""

    results: list[Result]
    latencies: list[float]
    seconds: float


async def concurrently(work: Callable[[Item], Awaitable[Result]], items: Iterable[Item], clients: int) -> Burst[Result]:
    """`clients` workers share the items, each with one call in flight at a time."""
    remaining = iter(items)
    results: list[Result] = []
    latencies: list[float] = []

    async def client() -> None:
        for item in remaining:  # one iterator for all: asyncio hands each item to exactly one worker
            started = time.perf_counter()
            results.append(await work(item))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return Burst(results, latencies, time.perf_counter() - started)


async def placement_or_error(booking: Awaitable[Placement]) -> Placement:
    """A failed request counts as an outcome (shown in the checks) rather than ending the run."""
    try:
        return await booking
    except (RequestFailed, httpx.HTTPError) as error:
        return Placement(0, f"error: {type(error).__name__}: {error}", None)


async def book_in_order(gateway: Gateway, conference: str, count: int) -> list[int]:
    """`count` new users book one after another, so the booking ids come in line order."""
    users = [await gateway.create_user() for _ in range(count)]
    return [(await gateway.book(conference, user)).booking_id for user in users]


async def retire(gateway: Gateway, booking_ids: Sequence[int]) -> None:
    """Cancel a finished trial's bookings, tail of the line first, so that no offer keeps expiring
    and being made again in the background of the measurements that follow."""
    for booking_id in reversed(booking_ids):
        await gateway.cancel(booking_id, already_canceled_is_fine=True)
