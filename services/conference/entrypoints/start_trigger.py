"""Announces each conference's start (ConferenceStarted) at its start time, from the database."""

from __future__ import annotations

import logging

from confbook_common.timestamps import utc_now
from confbook_common.worker import Worker
from services.conference.service_layer import handlers
from services.conference.service_layer.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

# The longest sleep: also how soon a conference created to start in under a
# second is noticed.
MAX_SLEEP_SECONDS = 0.5


class StartTrigger(Worker):
    """The database holds every start time; this loop sleeps until the next one.

    Restarts lose nothing: an unannounced start in the past is announced at once.
    """

    def __init__(self, unit_of_work: UnitOfWorkFactory) -> None:
        super().__init__(name="start-trigger")
        self._uow = unit_of_work

    def loop(self) -> None:
        while not self.stopping.is_set():
            announced = handlers.announce_started(self._uow(), utc_now())
            if announced:
                log.info("announced the start of %d conference(s)", announced)
                continue
            upcoming = handlers.next_start(self._uow())
            sleep = MAX_SLEEP_SECONDS
            if upcoming is not None:
                sleep = min(sleep, max((upcoming - utc_now()).total_seconds(), 0.0))
            self.stopping.wait(sleep)
