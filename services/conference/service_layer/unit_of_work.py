"""A transaction over the conference schema."""

from collections.abc import Callable

from sqlalchemy import Connection

from confbook_common.db import SqlUnitOfWork
from confbook_common.messaging.outbox import Outbox
from services.conference.adapters import tables
from services.conference.adapters.repository import ConferenceRepository


class ConferenceUnitOfWork(SqlUnitOfWork):
    conferences: ConferenceRepository
    outbox: Outbox

    def _open_repositories(self, connection: Connection) -> None:
        self.conferences = ConferenceRepository(connection)
        self.outbox = Outbox(connection, tables.outbox)


UnitOfWorkFactory = Callable[[], ConferenceUnitOfWork]
