"""How the waitlist service reacts to events and overdue offers, with in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from confbook.events.v1 import events_pb2
from confbook_common.timestamps import to_timestamp
from services.waitlist.domain.model import ExpiryOutcome, Offer, OfferState
from services.waitlist.service_layer import handlers
from tests.fakes import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
DEADLINE = NOW - timedelta(seconds=1)


class FakeOffers:
    def __init__(self) -> None:
        self.by_booking: dict[int, Offer] = {}

    def open(self, booking_id: int, conference_id: int, deadline: datetime) -> None:
        self.by_booking[booking_id] = Offer(booking_id, conference_id, deadline, OfferState.OPEN)

    def is_open(self, booking_id: int, deadline: datetime) -> bool:
        offer = self.by_booking.get(booking_id)
        return offer is not None and offer.state is OfferState.OPEN and offer.deadline == deadline

    def close(self, booking_id: int, deadline: datetime) -> None:
        offer = self.by_booking[booking_id]
        if offer.deadline <= deadline:
            self.by_booking[booking_id] = Offer(
                offer.booking_id, offer.conference_id, offer.deadline, OfferState.CLOSED
            )

    def close_conference(self, conference_id: int) -> None:
        for offer in list(self.by_booking.values()):
            if offer.conference_id == conference_id:
                self.close(offer.booking_id, offer.deadline)

    def lock_overdue(self, now: datetime, limit: int) -> list[Offer]:
        due = [o for o in self.by_booking.values() if o.state is OfferState.OPEN and o.deadline <= now]
        return due[:limit]


class FakeOutbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Any, dict[str, Any]]] = []

    def add(self, message: Any, **routing: Any) -> str:
        self.messages.append((message, routing))
        return "id"


class FakeWaitlistUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        self.offers = FakeOffers()
        self.outbox = FakeOutbox()


class FakePromotions:
    """The booking service's promotion API: records calls, answers what it is told to."""

    def __init__(self, outcome: ExpiryOutcome = ExpiryOutcome.RETURNED_TO_LINE) -> None:
        self.outcome = outcome
        self.calls: list[tuple[str, int]] = []

    def offer_free_seats(self, conference_id: int) -> int:
        self.calls.append(("offer_free_seats", conference_id))
        return 1

    def expire_offer(self, booking_id: int) -> ExpiryOutcome:
        self.calls.append(("expire_offer", booking_id))
        return self.outcome

    def close_waitlist(self, conference_id: int) -> int:
        self.calls.append(("close_waitlist", conference_id))
        return 3


@pytest.fixture
def uow() -> FakeWaitlistUnitOfWork:
    return FakeWaitlistUnitOfWork()


def expired_timer(booking_id: int = 7) -> events_pb2.OfferExpired:
    return events_pb2.OfferExpired(booking_id=booking_id, conference_id=1, deadline=to_timestamp(DEADLINE))


def test_a_freed_seat_asks_the_booking_service_to_offer_free_seats(uow):
    promotions = FakePromotions()
    handlers.on_seat_released(events_pb2.SeatReleased(conference_id=4, booking_id=9), uow, promotions=promotions)
    assert promotions.calls == [("offer_free_seats", 4)]


def test_an_offer_is_watched_and_its_timer_started(uow):
    made = events_pb2.OfferMade(booking_id=7, conference_id=1, deadline=to_timestamp(DEADLINE))
    handlers.on_offer_made(made, uow, timer_queue="timers.3s")
    assert uow.offers.is_open(7, DEADLINE)
    [(timer, routing)] = uow.outbox.messages
    assert isinstance(timer, events_pb2.OfferExpired) and timer.booking_id == 7
    assert routing == {"exchange": "", "to": "timers.3s"}


def test_a_timer_expires_a_watched_offer_and_stops_watching_it(uow):
    uow.offers.open(7, 1, DEADLINE)
    promotions = FakePromotions(ExpiryOutcome.RETURNED_TO_LINE)
    handlers.on_offer_expired(expired_timer(), uow, promotions=promotions)
    assert promotions.calls == [("expire_offer", 7)]
    assert not uow.offers.is_open(7, DEADLINE)


def test_a_timer_that_finds_the_offer_not_yet_due_keeps_watching_it(uow):
    uow.offers.open(7, 1, DEADLINE)
    handlers.on_offer_expired(expired_timer(), uow, promotions=FakePromotions(ExpiryOutcome.NOT_DUE))
    assert uow.offers.is_open(7, DEADLINE)


def test_a_timer_for_an_offer_that_already_ended_bothers_nobody(uow):
    uow.offers.open(7, 1, DEADLINE)
    handlers.on_offer_ended(
        events_pb2.OfferEnded(
            booking_id=7, deadline=to_timestamp(DEADLINE), outcome=events_pb2.OfferEnded.OUTCOME_CONFIRMED
        ),
        uow,
    )
    promotions = FakePromotions()
    handlers.on_offer_expired(expired_timer(), uow, promotions=promotions)
    assert promotions.calls == []


def test_the_sweeper_expires_overdue_offers_and_leaves_the_rest(uow):
    uow.offers.open(7, 1, DEADLINE)
    uow.offers.open(8, 1, NOW + timedelta(minutes=5))
    promotions = FakePromotions()
    assert handlers.expire_overdue_offers(uow, promotions, NOW) == 1
    assert promotions.calls == [("expire_offer", 7)]
    assert uow.committed and uow.offers.is_open(8, NOW + timedelta(minutes=5))


def test_at_the_start_the_line_is_closed_and_its_offers_no_longer_watched(uow):
    uow.offers.open(7, 1, DEADLINE)
    promotions = FakePromotions()
    handlers.on_conference_started(events_pb2.ConferenceStarted(conference_id=1), uow, promotions=promotions)
    assert promotions.calls == [("close_waitlist", 1)]
    assert not uow.offers.is_open(7, DEADLINE)


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_offered_seat_is_timed_from_its_release(uow):
    before = _count("confbook_promotion_delay_seconds_count")
    released = events_pb2.SeatReleased(conference_id=4, booking_id=9, released_at=to_timestamp(datetime.now(UTC)))
    handlers.on_seat_released(released, uow, promotions=FakePromotions())
    assert _count("confbook_promotion_delay_seconds_count") == before + 1
    assert _count("confbook_promotion_delay_seconds_bucket", le="1.0") >= 1


def test_a_release_that_offered_nothing_is_not_timed(uow):
    class NobodyWaits(FakePromotions):
        def offer_free_seats(self, conference_id: int) -> int:
            return 0

    before = _count("confbook_promotion_delay_seconds_count")
    released = events_pb2.SeatReleased(conference_id=4, booking_id=9, released_at=to_timestamp(datetime.now(UTC)))
    handlers.on_seat_released(released, uow, promotions=NobodyWaits())
    assert _count("confbook_promotion_delay_seconds_count") == before


def test_an_expiry_is_timed_from_the_deadline_by_whoever_did_it(uow):
    timer_before = _count("confbook_offer_expiry_lateness_seconds_count", via="timer")
    sweeper_before = _count("confbook_offer_expiry_lateness_seconds_count", via="sweeper")
    uow.offers.open(7, 1, DEADLINE)
    handlers.on_offer_expired(expired_timer(), uow, promotions=FakePromotions(ExpiryOutcome.RETURNED_TO_LINE))
    uow.offers.open(8, 1, DEADLINE)
    handlers.expire_overdue_offers(uow, FakePromotions(ExpiryOutcome.NOT_DUE), NOW)
    assert _count("confbook_offer_expiry_lateness_seconds_count", via="timer") == timer_before + 1
    assert _count("confbook_offer_expiry_lateness_seconds_count", via="sweeper") == sweeper_before
