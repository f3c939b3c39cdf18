"""An in-memory stand-in for the conference service's unit of work, for servicer tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from services.conference.domain.errors import ConferenceNameTaken
from services.conference.domain.model import Conference, NewConference, name_key
from tests.fakes import FakeUnitOfWork


class FakeConferenceRepository:
    def __init__(self) -> None:
        self._by_key: dict[str, Conference] = {}
        self._ids = itertools.count(1)

    def add(self, new: NewConference, owner_subject: str) -> Conference:
        if name_key(new.name) in self._by_key:
            raise ConferenceNameTaken(new.name)
        conference = Conference(
            **vars(new), conference_id=next(self._ids), created_at=datetime.now(UTC), owner_subject=owner_subject
        )
        self._by_key[name_key(new.name)] = conference
        return conference

    def get(self, conference_id: int) -> Conference | None:
        return next((c for c in self._by_key.values() if c.conference_id == conference_id), None)

    def get_by_name(self, name: str) -> Conference | None:
        return self._by_key.get(name_key(name))


class FakeConferenceUnitOfWork(FakeUnitOfWork):
    def __init__(self, conferences: FakeConferenceRepository) -> None:
        self.conferences = conferences
