"""The clients: each books for random users at random conferences, cancels and confirms its own bookings, reads
them back and now and then creates a conference that starts soon, recording every answer in the journal.

Every request carries the token of whoever would make it: each user's own subject created it and books, confirms,
cancels and reads its bookings; an organizer creates the conferences. Reading a conference is public."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.http_server import CLIENT_KEEP_ALIVE_SECONDS
from scripts import dev_issuer
from scripts.soak.faults import Gates
from scripts.soak.journal import Booking, Journal
from scripts.soak.options import Options
from scripts.soak.report import progress
from scripts.soak.stack import SoakStack

ACTIVE = ("CONFIRMED", "WAITLISTED", "CONFIRMATION_PENDING")
# A person whose request failed waits a moment before the next; without it a stopped gateway is hammered.
PAUSE_AFTER_FAILURE_SECONDS = 0.5
# Conferences created during the run start this many seconds later: soon enough to start before the end.
STARTS_SOON_SECONDS = (10.0, 30.0)
# And last a minute or two: few of them overlap, so that users can book several.
LASTS_SECONDS = (30.0, 120.0)
# The issuer's longest: every token is made before the run and must outlive it.
TOKEN_SECONDS = dev_issuer.MAX_TTL_SECONDS
ORGANIZER = "soak-organizer"


class SoakError(Exception):
    """The workload cannot be set up; the message says why."""


@dataclass(frozen=True)
class Conference:
    name: str
    start: datetime
    slots: int


@dataclass
class World:
    """What every client shares: the users and conferences to pick from, the journal, the operation count."""

    options: Options
    journal: Journal
    gates: Gates
    users: list[str] = field(default_factory=list)
    conferences: list[Conference] = field(default_factory=list)
    created: int = 0  # conferences created during the run, for their names
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)  # each user's own subject's headers
    organizer: dict[str, str] = field(default_factory=dict)  # who creates the conferences, and owns them

    def as_user(self, user_id: str) -> dict[str, str]:
        return self.credentials[user_id]

    async def ticket(self) -> bool:
        """Take the next operation's number; False once all are taken. Waits while a fault is due first."""
        number = self.gates.issued
        if number >= self.options.operations:
            return False
        self.gates.issued += 1
        while not self.gates.allows(number):
            await asyncio.sleep(0.05)
        return True


class Client:
    def __init__(self, index: int, world: World, http: httpx.AsyncClient) -> None:
        self.world = world
        self.journal = world.journal
        self.http = http
        self.random = random.Random(f"client {world.options.seed} {index}")
        self.own: list[Booking] = []

    async def run(self) -> None:
        while await self.world.ticket():
            roll = self.random.random()
            if roll < 0.45:
                await self.book()
            elif roll < 0.57:
                await self.cancel()
            elif roll < 0.85:
                await self.check_and_confirm()
            elif roll < 0.993:
                await self.read()
            else:
                await self.create_conference()

    # --- operations ---------------------------------------------------------------------------------------

    async def book(self) -> None:
        user = self.random.choice(self.world.users)
        conference = self.pick_conference()
        request = {"name": conference.name, "user_id": user}
        body = await self.call("book", "POST", "/book", request, credentials=self.world.as_user(user))
        if body is None:
            return
        status, position = body.get("status"), body.get("waitlist_position")
        if not ((status == "CONFIRMED" and position is None) or (status == "WAITLISTED" and (position or 0) >= 1)):
            self.journal.violate(f"book: an answer neither CONFIRMED nor WAITLISTED with a position: {body}")
        booking = Booking(
            body["booking_id"], user, conference.name, status, position, must_be_confirmed=status == "CONFIRMED"
        )
        if booking.booking_id in self.journal.bookings:
            self.journal.violate(f"book: booking id {booking.booking_id} given out twice")
        self.journal.bookings[booking.booking_id] = booking
        self.own.append(booking)

    async def cancel(self) -> None:
        booking = self.pick_own(ACTIVE)
        if booking is None:
            return await self.book()
        booking.must_be_confirmed = False  # from now on it may be canceled, whatever the answer says
        body = await self.call("cancel", "POST", "/cancel", {"booking_id": booking.booking_id}, booking)
        if body is not None:
            self.observe(booking, body, "cancel")
            if body.get("status") != "CANCELED":
                self.journal.violate(f"cancel of {booking.booking_id} answered 200 but {body.get('status')}")
            booking.must_be_canceled = True

    async def check_and_confirm(self) -> None:
        """Look whether a waiting booking has been offered its seat, and mostly accept the offer."""
        booking = self.pick_waiting()
        if booking is None:
            return await self.book()
        body = await self.get_booking(booking)
        if body is None or not body.get("can_confirm") or self.random.random() > 0.85:
            return
        if not await self.world.ticket():
            return
        body = await self.call("confirm", "POST", "/confirm", {"booking_id": booking.booking_id}, booking)
        if body is not None:
            self.observe(booking, body, "confirm")
            if body.get("status") != "CONFIRMED":
                self.journal.violate(f"confirm of {booking.booking_id} answered 200 but {body.get('status')}")

    async def read(self) -> None:
        booking = self.pick_own(None)
        if booking is not None and self.random.random() < 0.7:
            await self.get_booking(booking)
            return
        conference = self.random.choice(self.world.conferences)
        body = await self.call("get conference", "GET", f"/conference/{conference.name}")
        if body is not None and not 0 <= body.get("available_slots", -1) <= conference.slots:
            self.journal.violate(f"GET /conference/{conference.name}: available_slots out of range: {body}")

    async def create_conference(self) -> None:
        self.world.created += 1
        start = datetime.now(UTC) + timedelta(seconds=self.random.uniform(*STARTS_SOON_SECONDS))
        conference = Conference(f"Soon {self.world.created}", start, self.random.randint(1, 3))
        hours = self.random.uniform(*LASTS_SECONDS) / 3600
        body = await self.call(
            "create conference",
            "POST",
            "/conference",
            conference_body(conference, hours=hours),
            credentials=self.world.organizer,
        )
        if body is not None:
            self.world.conferences.append(conference)

    async def get_booking(self, booking: Booking) -> dict[str, Any] | None:
        body = await self.call("get booking", "GET", f"/booking/{booking.booking_id}", booking=booking)
        if body is not None:
            self.observe(booking, body, "get booking")
        return body

    # --- what an answer tells ------------------------------------------------------------------------------

    def observe(self, booking: Booking, body: dict[str, Any], operation: str) -> None:
        """Learn the booking's state from an answer, and check it against what was acknowledged before."""
        status = body.get("status")
        where = f"{operation} {booking.booking_id}"
        if (body.get("booking_id"), body.get("user_id")) != (booking.booking_id, booking.user_id):
            self.journal.violate(f"{where}: the answer is about another booking: {body}")
        if booking.must_be_canceled and status != "CANCELED":
            self.journal.violate(f"{where}: {status} after it was canceled")
        if booking.must_be_confirmed and status != "CONFIRMED":
            self.journal.violate(f"{where}: {status} after it was CONFIRMED, with no cancel since")
        pending = status == "CONFIRMATION_PENDING"
        if (body.get("confirmation_deadline") is not None) != pending or (body.get("can_confirm") and not pending):
            self.journal.violate(f"{where}: deadline or can_confirm do not fit {status}: {body}")
        if (body.get("waitlist_position") is not None) != (status == "WAITLISTED"):
            self.journal.violate(f"{where}: waitlist_position does not fit {status}: {body}")
        booking.status = str(status)
        booking.position = body.get("waitlist_position")
        booking.must_be_canceled |= status == "CANCELED"
        booking.must_be_confirmed |= status == "CONFIRMED"

    def refused(self, booking: Booking, code: str) -> None:
        """An error about one of our bookings."""
        if code == "BOOKING_ALREADY_CANCELED":
            booking.status = "CANCELED"
            booking.must_be_canceled = True
        elif code == "BOOKING_NOT_FOUND":
            self.journal.violate(f"booking {booking.booking_id}, acknowledged before, is unknown now")

    # --- choosing ---------------------------------------------------------------------------------------------

    def pick_conference(self) -> Conference:
        """Mostly one that has not started yet; sometimes any, so that late bookings are tried too."""
        soon = datetime.now(UTC) + timedelta(seconds=1)
        open_ones = [c for c in self.world.conferences if c.start > soon]
        return self.random.choice(open_ones if open_ones and self.random.random() < 0.92 else self.world.conferences)

    def pick_waiting(self) -> Booking | None:
        """Mostly the one nearest the head of its line: the next to be offered a seat, which lasts seconds."""
        waiting = [b for b in self.own if b.status in ("WAITLISTED", "CONFIRMATION_PENDING")]
        if not waiting or self.random.random() < 0.3:
            return self.random.choice(waiting) if waiting else None
        return min(waiting, key=lambda b: 0 if b.status == "CONFIRMATION_PENDING" else b.position or 1)

    def pick_own(self, statuses: tuple[str, ...] | None) -> Booking | None:
        candidates = [b for b in self.own if statuses is None or b.status in statuses]
        return self.random.choice(candidates) if candidates else None

    # --- the wire ---------------------------------------------------------------------------------------------

    async def call(
        self,
        operation: str,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        booking: Booking | None = None,
        credentials: dict[str, str] | None = None,
    ) -> Any | None:
        """The 2xx answer's body, or None after recording what went wrong. A request about a booking carries its
        user's token; any other, `credentials` (none: a public one)."""
        timeout = self.world.options.call_timeout_seconds
        headers = self.world.as_user(booking.user_id) if booking is not None else credentials
        started = time.monotonic()
        self.journal.issued += 1
        try:
            async with asyncio.timeout(timeout):
                response = await self.http.request(method, path, json=json, headers=headers)
        except TimeoutError:
            self.journal.hang(operation, timeout)
            await asyncio.sleep(PAUSE_AFTER_FAILURE_SECONDS)
            return None
        except httpx.TransportError as error:
            self.journal.no_answer(operation, error, started, time.monotonic())
            await asyncio.sleep(PAUSE_AFTER_FAILURE_SECONDS)
            return None
        body = self.journal.answer(operation, response)
        if body is None:
            code = error_code(response)
            if booking is not None and code:
                self.refused(booking, code)
            if response.status_code == 503:
                await asyncio.sleep(PAUSE_AFTER_FAILURE_SECONDS)
        return body


def error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def conference_body(conference: Conference, *, hours: float) -> dict[str, Any]:
    end = conference.start + timedelta(hours=hours)
    return {
        "name": conference.name,
        "location": "Berlin",
        "start": conference.start.strftime("%Y-%m-%d %H:%M:%S"),
        "end": end.strftime("%Y-%m-%d %H:%M:%S"),
        "slots": conference.slots,
        "topics": ["Python"],
    }


# --- setting up and running -----------------------------------------------------------------------------------


def subject_of(user_id: str) -> str:
    """The subject that creates the user, and whose token then acts for it."""
    return f"soak-{user_id}"


async def set_up(world: World, http: httpx.AsyncClient, stack: SoakStack) -> None:
    """The users, each created by a subject of its own, and conferences of one to three seats created by an
    organizer: some start within a minute, the others days later, each overlapping its neighbours in time."""
    options = world.options
    chooser = random.Random(f"setup {options.seed}")
    progress(f"creating {options.users} users (each with its own token) and {options.conferences} conferences")
    world.organizer = await _credentials(stack, ORGANIZER, "organizer")
    for index in range(options.users):
        user = f"user{index}"
        world.credentials[user] = await _credentials(stack, subject_of(user), "attendee")
        await _must(http, "/user", {"user_id": user, "topics": ["Python"]}, world.as_user(user))
        world.users.append(user)
    now = datetime.now(UTC).replace(microsecond=0)
    later = now + timedelta(days=2)
    for index in range(options.conferences):
        if index % 4 == 0:
            start, hours = now + timedelta(seconds=chooser.uniform(15, 60)), 1.0
        else:
            start, hours = later + timedelta(minutes=40 * index), chooser.choice([1.0, 1.5, 2.0])
        conference = Conference(f"Conf {index}", start, chooser.randint(1, 3))
        await _must(http, "/conference", conference_body(conference, hours=hours), world.organizer)
        world.conferences.append(conference)


async def _credentials(stack: SoakStack, subject: str, role: str) -> dict[str, str]:
    """The headers of the subject's requests, with a token from the stack's issuer that outlives the run."""
    try:
        token = await asyncio.to_thread(stack.token, subject, role, TOKEN_SECONDS)
    except (dev_issuer.IssuerError, httpx.HTTPError) as error:
        raise SoakError(f"setting up: no token for {subject} ({role}) from the issuer: {error}") from error
    return {"Authorization": f"Bearer {token}"}


async def _must(http: httpx.AsyncClient, path: str, body: dict[str, Any], credentials: dict[str, str]) -> None:
    response = await http.post(path, json=body, headers=credentials)
    if response.status_code != 201:
        raise SoakError(f"setting up: POST {path} {body} answered {response.status_code} {response.text[:300]}")


async def run_clients(world: World, base_url: str) -> None:
    # Each client is one person: one request at a time.
    limits = httpx.Limits(max_connections=1, keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS)
    timeout = httpx.Timeout(world.options.call_timeout_seconds)
    clients = [
        httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) for _ in range(world.options.clients)
    ]
    try:
        await asyncio.gather(*(Client(index, world, http).run() for index, http in enumerate(clients)))
    finally:
        for http in clients:
            await http.aclose()
