"""Fixtures for tests against the real database and broker, without running services."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from confbook_common.db import create_engine
from scripts.sandbox import Infrastructure
from services.booking.domain.errors import ConferenceNotFound
from services.booking.domain.model import Conference
from services.booking.domain.recommendations import Listing
from services.booking.service_layer import handlers
from services.booking.service_layer.unit_of_work import BookingUnitOfWork
from tests.integration.callers import ORGANIZER, attendee

# Conference ids far above what the conference service hands out in the same database.
_conference_ids = itertools.count(10**12 + uuid.uuid4().int % 10**9)


class FakeDirectory:
    """Stands in for the conference service: the booking service only reads conferences from it."""

    def __init__(self) -> None:
        self._conferences: dict[int, Conference] = {}
        self._topics: dict[int, tuple[str, ...]] = {}
        self.forgotten_owners: list[str] = []

    def add(
        self,
        *,
        start: datetime,
        hours: float = 2,
        slots: int = 1,
        topics: tuple[str, ...] = ("Python",),
        owner: str | None = ORGANIZER.subject,
    ) -> Conference:
        conference = Conference(
            conference_id=next(_conference_ids),
            name=f"Conference {uuid.uuid4().hex[:10]}",
            start=start,
            end=start + timedelta(hours=hours),
            slots=slots,
            owner_subject=owner,
        )
        self._conferences[conference.conference_id] = conference
        self._topics[conference.conference_id] = topics
        return conference

    def sharing_topics(self, topics: Sequence[str]) -> list[Listing]:
        # Not started is judged by the caller's clock in these tests: every conference is listed.
        wanted = {topic.casefold() for topic in topics}
        return [
            Listing(conference=conference, location="Berlin", topics=self._topics[id_], created_at=conference.start)
            for id_, conference in sorted(self._conferences.items(), key=lambda item: item[1].start)
            if wanted & {topic.casefold() for topic in self._topics[id_]}
        ]

    def forget_owner(self, subject: str, authorization: str) -> int:
        self.forgotten_owners.append(subject)
        return 0

    def by_name(self, name: str) -> Conference:
        for conference in self._conferences.values():
            if conference.name.casefold() == name.casefold():
                return conference
        raise ConferenceNotFound(name)

    def by_id(self, conference_id: int) -> Conference:
        try:
            return self._conferences[conference_id]
        except KeyError:
            raise ConferenceNotFound(conference_id) from None


def engine_for(infrastructure: Infrastructure, service: str) -> Iterator[Engine]:
    engine = create_engine(infrastructure.service_database_url(service), application_name=f"test-{service}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def booking_engine(infrastructure: Infrastructure) -> Iterator[Engine]:
    yield from engine_for(infrastructure, "booking")


@pytest.fixture
def uow(booking_engine: Engine) -> Callable[[], BookingUnitOfWork]:
    return lambda: BookingUnitOfWork(booking_engine)


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
def new_user(uow: Callable[[], BookingUnitOfWork]) -> Callable[[], str]:
    """A new user, belonging to the subject of its own id: attendee(user_id) is its caller."""

    def create() -> str:
        user_id = f"u{uuid.uuid4().hex[:12]}"
        handlers.create_user(uow(), user_id, ["AI"], attendee(user_id))
        return user_id

    return create


@pytest.fixture
def tomorrow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
