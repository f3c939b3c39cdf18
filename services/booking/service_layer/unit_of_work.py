"""A transaction over the booking schema."""

from collections.abc import Callable

from sqlalchemy import Connection

from confbook_common.db import SqlUnitOfWork
from confbook_common.messaging.outbox import Outbox
from services.booking.adapters import tables
from services.booking.adapters.event_history import EventHistory
from services.booking.adapters.repository import BookingRepository, SeatLedger, UserRepository
from services.booking.adapters.webhook_store import WebhookStore


class BookingUnitOfWork(SqlUnitOfWork):
    users: UserRepository
    seats: SeatLedger
    bookings: BookingRepository
    outbox: Outbox
    events: EventHistory
    webhooks: WebhookStore

    def _open_repositories(self, connection: Connection) -> None:
        self.users = UserRepository(connection)
        self.seats = SeatLedger(connection)
        self.bookings = BookingRepository(connection, self.seats)
        self.outbox = Outbox(connection, tables.outbox)
        self.events = EventHistory(connection)
        self.webhooks = WebhookStore(connection)


UnitOfWorkFactory = Callable[[], BookingUnitOfWork]
