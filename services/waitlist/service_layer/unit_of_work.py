"""A transaction over the waitlist schema."""

from collections.abc import Callable

from sqlalchemy import Connection

from confbook_common.db import SqlUnitOfWork
from confbook_common.messaging.inbox import Inbox
from confbook_common.messaging.outbox import Outbox
from services.waitlist.adapters import tables
from services.waitlist.adapters.repository import OfferRepository


class WaitlistUnitOfWork(SqlUnitOfWork):
    offers: OfferRepository
    outbox: Outbox
    inbox: Inbox

    def _open_repositories(self, connection: Connection) -> None:
        self.offers = OfferRepository(connection)
        self.outbox = Outbox(connection, tables.outbox)
        self.inbox = Inbox(connection, tables.processed_messages)


UnitOfWorkFactory = Callable[[], WaitlistUnitOfWork]
