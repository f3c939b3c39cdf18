"""How the waitlist service reacts to each event, and to offers the timers missed.

Event handlers run inside the consumer's unit of work (which records the message
as handled); their calls to the booking service are idempotent, so a redelivery
after a crash repeats them harmlessly.
"""

from __future__ import annotations

import logging
from datetime import datetime

from confbook.events.v1 import events_pb2
from confbook_common.timestamps import from_timestamp, utc_now
from services.waitlist.adapters import metrics
from services.waitlist.adapters.promotions import Promotions
from services.waitlist.domain.model import ExpiryOutcome, Offer
from services.waitlist.service_layer.unit_of_work import WaitlistUnitOfWork

log = logging.getLogger(__name__)


def on_seat_released(event: events_pb2.SeatReleased, uow: WaitlistUnitOfWork, *, promotions: Promotions) -> None:
    offered = promotions.offer_free_seats(event.conference_id)
    if not offered:
        return  # offered already (a redelivery), or nobody waits
    if not event.HasField("released_at"):  # published before the field existed
        log.info("conference %d: %d seat(s) offered", event.conference_id, offered)
        return
    delay = max((utc_now() - from_timestamp(event.released_at)).total_seconds(), 0.0)
    metrics.PROMOTION_DELAY.observe(delay)
    log.info("conference %d: %d seat(s) offered, %.3f s after the release", event.conference_id, offered, delay)


def on_offer_made(event: events_pb2.OfferMade, uow: WaitlistUnitOfWork, *, timer_queue: str) -> None:
    """Watch the offer and start its timer, which comes back as OfferExpired after the window."""
    uow.offers.open(event.booking_id, event.conference_id, from_timestamp(event.deadline))
    timer = events_pb2.OfferExpired(
        booking_id=event.booking_id, conference_id=event.conference_id, deadline=event.deadline
    )
    uow.outbox.add(timer, exchange="", to=timer_queue)


def on_offer_ended(event: events_pb2.OfferEnded, uow: WaitlistUnitOfWork) -> None:
    """Confirmed, canceled or expired: its deadline no longer needs watching."""
    uow.offers.close(event.booking_id, from_timestamp(event.deadline))


def on_offer_expired(event: events_pb2.OfferExpired, uow: WaitlistUnitOfWork, *, promotions: Promotions) -> None:
    deadline = from_timestamp(event.deadline)
    if not uow.offers.is_open(event.booking_id, deadline):
        return  # ended meanwhile (OfferEnded), or replaced by a newer offer with its own timer
    outcome = promotions.expire_offer(event.booking_id)
    log.info("offer to booking %d due at %s: %s", event.booking_id, deadline.isoformat(), outcome.value)
    _observe_expiry(outcome, deadline, via="timer")
    if outcome.ends_offer:
        uow.offers.close(event.booking_id, deadline)


def on_conference_started(
    event: events_pb2.ConferenceStarted, uow: WaitlistUnitOfWork, *, promotions: Promotions
) -> None:
    promotions.close_waitlist(event.conference_id)
    uow.offers.close_conference(event.conference_id)


def expire_overdue_offers(uow: WaitlistUnitOfWork, promotions: Promotions, now: datetime, batch: int = 50) -> int:
    """The authority on expiry: whatever a lost timer or a stopped service missed, the database still knows."""
    with uow:
        overdue = uow.offers.lock_overdue(now, batch)
        for offer in overdue:
            outcome = promotions.expire_offer(offer.booking_id)
            _observe_expiry(outcome, offer.deadline, via="sweeper")
            if outcome.ends_offer:
                uow.offers.close(offer.booking_id, offer.deadline)
        uow.commit()
    return len(overdue)


def _observe_expiry(outcome: ExpiryOutcome, deadline: datetime, *, via: str) -> None:
    """How late an offer that this call expired was; `via` says whether its timer or the sweeper did it."""
    if outcome in (ExpiryOutcome.RETURNED_TO_LINE, ExpiryOutcome.CANCELED):
        metrics.EXPIRY_LATENESS.labels(via).observe(max((utc_now() - deadline).total_seconds(), 0.0))


def list_offers(uow: WaitlistUnitOfWork, conference_id: int, *, include_closed: bool) -> list[Offer]:
    with uow:
        return uow.offers.of_conference(conference_id, include_closed=include_closed)
