"""Reading and writing the offers the waitlist service watches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Row, case, func, select, update
from sqlalchemy.dialects.postgresql import insert

from services.waitlist.adapters.tables import offers
from services.waitlist.domain.model import Offer, OfferState


def _to_offer(row: Row) -> Offer:
    return Offer(
        booking_id=row.booking_id, conference_id=row.conference_id, deadline=row.deadline, state=OfferState(row.state)
    )


class OfferRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def open(self, booking_id: int, conference_id: int, deadline: datetime) -> None:
        """Watch an offer; a late duplicate of an older offer never overwrites a newer one."""
        statement = insert(offers).values(
            booking_id=booking_id, conference_id=conference_id, deadline=deadline, state=OfferState.OPEN.value
        )
        self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=[offers.c.booking_id],
                set_={"deadline": deadline, "state": OfferState.OPEN.value, "updated_at": func.statement_timestamp()},
                where=offers.c.deadline < statement.excluded.deadline,
            )
        )

    def is_open(self, booking_id: int, deadline: datetime) -> bool:
        """Whether the offer with this deadline is still watched (not ended, not replaced by a newer offer)."""
        return (
            self._connection.execute(
                select(offers.c.booking_id).where(
                    offers.c.booking_id == booking_id,
                    offers.c.state == OfferState.OPEN.value,
                    offers.c.deadline == deadline,
                )
            ).first()
            is not None
        )

    def close(self, booking_id: int, deadline: datetime) -> None:
        """Stop watching the offer that had this deadline (not a newer one)."""
        self._connection.execute(
            update(offers)
            .where(offers.c.booking_id == booking_id, offers.c.deadline <= deadline)
            .values(state=OfferState.CLOSED.value, updated_at=func.statement_timestamp())
        )

    def close_conference(self, conference_id: int) -> None:
        self._connection.execute(
            update(offers)
            .where(offers.c.conference_id == conference_id, offers.c.state == OfferState.OPEN.value)
            .values(state=OfferState.CLOSED.value, updated_at=func.statement_timestamp())
        )

    def lock_overdue(self, now: datetime, limit: int) -> list[Offer]:
        """Open offers past their deadline, locked; other replicas skip them."""
        rows = self._connection.execute(
            select(offers)
            .where(offers.c.state == OfferState.OPEN.value, offers.c.deadline <= now)
            .order_by(offers.c.deadline)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_to_offer(row) for row in rows]

    def of_conference(self, conference_id: int, *, include_closed: bool) -> list[Offer]:
        query = select(offers).where(offers.c.conference_id == conference_id)
        if not include_closed:
            query = query.where(offers.c.state == OfferState.OPEN.value)
        open_first = case((offers.c.state == OfferState.OPEN.value, 0), else_=1)
        query = query.order_by(open_first, offers.c.deadline.desc())
        return [_to_offer(row) for row in self._connection.execute(query)]
