"""A transaction over the booking schema."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self

from sqlalchemy import Connection

from confbook_common.db import SqlUnitOfWork
from confbook_common.messaging.outbox import Outbox
from services.booking.adapters import tables
from services.booking.adapters.event_history import EventHistory
from services.booking.adapters.metrics import TransitionLog
from services.booking.adapters.personal_data import PersonalData
from services.booking.adapters.repository import BookingRepository, SeatLedger, UserRepository
from services.booking.adapters.webhook_store import WebhookStore


class BookingUnitOfWork(SqlUnitOfWork):
    users: UserRepository
    seats: SeatLedger
    bookings: BookingRepository
    outbox: Outbox
    events: EventHistory
    webhooks: WebhookStore
    personal_data: PersonalData
    transitions: TransitionLog

    def _open_repositories(self, connection: Connection) -> None:
        self.transitions = TransitionLog()
        self.users = UserRepository(connection)
        self.seats = SeatLedger(connection)
        self.bookings = BookingRepository(connection, self.seats, self.transitions)
        self.outbox = Outbox(connection, tables.outbox)
        self.events = EventHistory(connection)
        self.webhooks = WebhookStore(connection)
        self.personal_data = PersonalData(connection)

    def commit(self) -> None:
        super().commit()
        self.transitions.committed()

    @contextmanager
    def autocommit(self) -> Iterator[Self]:
        # Each statement commits as it runs: whatever was written is counted, even if the block then fails.
        with super().autocommit() as uow:
            try:
                yield uow
            finally:
                self.transitions.committed()


UnitOfWorkFactory = Callable[[], BookingUnitOfWork]
