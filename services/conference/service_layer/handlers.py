"""The conference service's use cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from confbook.events.v1 import events_pb2
from confbook_common import validation
from confbook_common.auth import Caller
from confbook_common.errors import Forbidden, RoleMissing
from confbook_common.timestamps import to_timestamp
from services.conference.domain.errors import ConferenceNotFound
from services.conference.domain.model import Conference, NewConference
from services.conference.service_layer.unit_of_work import ConferenceUnitOfWork

DEFAULT_PAGE_SIZE = 50
# Enough for any real interest profile; the booking service ranks what it gets.
MAX_CONFERENCES_BY_TOPICS = 1000


def create_conference(uow: ConferenceUnitOfWork, new: NewConference, caller: Caller) -> Conference:
    """Organizers and admins create conferences; the caller owns the new one."""
    if not caller.may_organize:
        raise RoleMissing("creating a conference needs the organizer or admin role")
    with uow:
        conference = uow.conferences.add(new, owner_subject=caller.subject)
        uow.commit()
    return conference


def forget_owner(uow: ConferenceUnitOfWork, subject: str, caller: Caller) -> int:
    """The subject's conferences lose their owner (admins manage them from then on), as erasing its
    person does; only that subject or an admin may. Returns how many it owned until now."""
    if not (caller.is_admin or caller.subject == subject):
        raise Forbidden("only the subject itself or an admin may forget it as an owner")
    with uow:
        released = uow.conferences.forget_owner(subject)
        uow.commit()
    return released


def get_conference(
    uow: ConferenceUnitOfWork, *, conference_id: int | None = None, name: str | None = None
) -> Conference:
    with uow:
        if conference_id is not None:
            conference = uow.conferences.get(conference_id)
        else:
            conference = uow.conferences.get_by_name(name or "")
    if conference is None:
        raise ConferenceNotFound(conference_id if conference_id is not None else name or "")
    return conference


@dataclass(frozen=True)
class Page:
    conferences: list[Conference]
    next_token: str


def _encode_token(conference: Conference) -> str:
    # A position in the list, plain: any well-formed token is one, so the schema can say exactly which are.
    return f"{_epoch_micros(conference.start)}_{conference.conference_id}"


def _epoch_micros(moment: datetime) -> int:
    return (moment - validation.EARLIEST) // timedelta(microseconds=1)


def _decode_token(token: str) -> tuple[datetime, int]:
    validation.PAGE_TOKEN("page_token", token)
    micros_text, id_text = token.split("_")
    # Past the last possible conference is past the end: clamped, it gives an empty page.
    micros = min(int(micros_text), _epoch_micros(validation.LATEST))
    start = validation.EARLIEST + timedelta(microseconds=micros)
    return start, min(int(id_text), validation.INT64_MAX)


def list_conferences(uow: ConferenceUnitOfWork, page_size: int, page_token: str) -> Page:
    limit = validation.page_size("page_size", page_size) or DEFAULT_PAGE_SIZE
    after = _decode_token(page_token) if page_token else None
    with uow:
        # One extra row tells whether another page follows.
        found = uow.conferences.list_page(limit + 1, after)
    page = found[:limit]
    next_token = _encode_token(page[-1]) if len(found) > limit else ""
    return Page(conferences=page, next_token=next_token)


def conferences_sharing_topics(uow: ConferenceUnitOfWork, topics: Sequence[str], now: datetime) -> list[Conference]:
    with uow:
        return uow.conferences.sharing_topics(topics, now, MAX_CONFERENCES_BY_TOPICS)


def announce_started(uow: ConferenceUnitOfWork, now: datetime, batch: int = 100) -> int:
    """Put ConferenceStarted in the outbox for every conference that has reached its start."""
    with uow:
        started = uow.conferences.lock_unannounced_started(now, batch)
        for conference in started:
            uow.outbox.add(
                events_pb2.ConferenceStarted(
                    conference_id=conference.conference_id,
                    name=conference.name,
                    start=to_timestamp(conference.start),
                )
            )
        uow.conferences.mark_start_announced([c.conference_id for c in started], now)
        uow.commit()
    return len(started)


def next_start(uow: ConferenceUnitOfWork) -> datetime | None:
    with uow:
        return uow.conferences.next_unannounced_start()
