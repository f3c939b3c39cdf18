"""Reading and writing conferences."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, func, insert, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from confbook_common.db import violated_constraint
from confbook_common.idempotency import forget_caller
from services.conference.adapters.tables import conferences, idempotency_keys
from services.conference.domain.errors import ConferenceNameTaken
from services.conference.domain.model import Conference, NewConference, name_key, topic_key


def _to_conference(row: Row) -> Conference:
    return Conference(
        conference_id=row.conference_id,
        name=row.name,
        location=row.location,
        start=row.start_at,
        end=row.end_at,
        slots=row.slots,
        topics=tuple(row.topics),
        created_at=row.created_at,
        owner_subject=row.owner_subject,
    )


class ConferenceRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def forget_owner(self, subject: str) -> int:
        """No owner for the subject's conferences, and none of its idempotency keys; returns how many
        conferences it owned. Rare (an erasure): a scan of the conferences."""
        released = self._connection.execute(
            update(conferences).where(conferences.c.owner_subject == subject).values(owner_subject=None)
        ).rowcount
        forget_caller(self._connection, idempotency_keys, subject)
        return released or 0

    def add(self, new: NewConference, owner_subject: str) -> Conference:
        try:
            row = self._connection.execute(
                insert(conferences)
                .values(
                    name=new.name,
                    name_key=name_key(new.name),
                    location=new.location,
                    start_at=new.start,
                    end_at=new.end,
                    slots=new.slots,
                    topics=list(new.topics),
                    topic_keys=[topic_key(topic) for topic in new.topics],
                    owner_subject=owner_subject,
                )
                .returning(conferences)
            ).one()
        except IntegrityError as error:
            if violated_constraint(error) == "conference_name_unique":
                raise ConferenceNameTaken(new.name) from error
            raise
        return _to_conference(row)

    def get(self, conference_id: int) -> Conference | None:
        row = self._connection.execute(select(conferences).where(conferences.c.conference_id == conference_id)).first()
        return _to_conference(row) if row else None

    def get_by_name(self, name: str) -> Conference | None:
        row = self._connection.execute(select(conferences).where(conferences.c.name_key == name_key(name))).first()
        return _to_conference(row) if row else None

    def list_page(self, limit: int, after: tuple[datetime, int] | None) -> list[Conference]:
        """Conferences by start time (then id), from just after `after`."""
        query = select(conferences).order_by(conferences.c.start_at, conferences.c.conference_id).limit(limit)
        if after is not None:
            query = query.where(
                tuple_(conferences.c.start_at, conferences.c.conference_id) > tuple_(*map(literal, after))
            )
        return [_to_conference(row) for row in self._connection.execute(query)]

    def sharing_topics(self, topics: Sequence[str], now: datetime, limit: int) -> list[Conference]:
        """Conferences not started at `now` with at least one of `topics` (ignoring case), by start."""
        keys = [topic_key(topic) for topic in topics]
        rows = self._connection.execute(
            select(conferences)
            .where(conferences.c.topic_keys.overlap(keys), conferences.c.start_at > now)
            .order_by(conferences.c.start_at, conferences.c.conference_id)
            .limit(limit)
        )
        return [_to_conference(row) for row in rows]

    def lock_unannounced_started(self, now: datetime, limit: int) -> Sequence[Conference]:
        """Started conferences whose start is not announced yet, locked; replicas skip each other's."""
        rows = self._connection.execute(
            select(conferences)
            .where(conferences.c.start_announced_at.is_(None), conferences.c.start_at <= now)
            .order_by(conferences.c.start_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        return [_to_conference(row) for row in rows]

    def mark_start_announced(self, conference_ids: Sequence[int], now: datetime) -> None:
        self._connection.execute(
            update(conferences).where(conferences.c.conference_id.in_(conference_ids)).values(start_announced_at=now)
        )

    def next_unannounced_start(self) -> datetime | None:
        return self._connection.execute(
            select(func.min(conferences.c.start_at)).where(conferences.c.start_announced_at.is_(None))
        ).scalar()
