"""Expires offers past their deadline that no timer message has handled (lost, or the service was down)."""

from __future__ import annotations

import logging

from confbook_common.timestamps import utc_now
from confbook_common.worker import Worker
from services.waitlist.adapters.promotions import Promotions
from services.waitlist.service_layer import handlers
from services.waitlist.service_layer.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 1.0


class OverdueOfferSweeper(Worker):
    def __init__(self, unit_of_work: UnitOfWorkFactory, promotions: Promotions) -> None:
        super().__init__(name="overdue-offer-sweeper")
        self._uow = unit_of_work
        self._promotions = promotions

    def loop(self) -> None:
        while not self.stopping.is_set():
            swept = handlers.expire_overdue_offers(self._uow(), self._promotions, utc_now())
            if swept:
                log.info("expired %d offer(s) past their deadline", swept)
            self.stopping.wait(SWEEP_EVERY_SECONDS)
