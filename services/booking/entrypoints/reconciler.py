"""As the service starts, re-announces what the waitlist service must act on, found in the database."""

from __future__ import annotations

import logging

from confbook_common.timestamps import utc_now
from confbook_common.worker import Worker
from services.booking.service_layer import handlers
from services.booking.service_layer.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)


class StartupReconciler(Worker):
    """Once per process start, retried until it has run (the database may be away at first); then rests.

    The database is the authority on seats, lines, offers and starts; the broker only carries news
    of them, and news can be lost (a broker's data, or a restore that purges it: docs/adr/0025).
    """

    def __init__(self, unit_of_work: UnitOfWorkFactory) -> None:
        super().__init__(name="startup-reconciler")
        self._uow = unit_of_work

    def loop(self) -> None:
        done = handlers.reconcile(self._uow, utc_now())
        if done.seats_owed or done.offers or done.lines_closed:
            log.info(
                "reconciled from the database: free seats owed to %d line(s), %d pending offer(s) announced "
                "again, %d started conference(s) whose line was closed",
                done.seats_owed,
                done.offers,
                done.lines_closed,
            )
        self.stopping.wait()
