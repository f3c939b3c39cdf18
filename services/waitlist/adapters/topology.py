"""The waitlist service's queues: one per event it handles, plus the offer timers."""

from __future__ import annotations

from pika.adapters.blocking_connection import BlockingChannel

from confbook.events.v1 import events_pb2
from confbook_common.messaging.topology import declare_delay_queue, declare_event_queue, delay_queue_name

SEAT_RELEASED_QUEUE = "waitlist.seat-released"
OFFER_MADE_QUEUE = "waitlist.offer-made"
OFFER_ENDED_QUEUE = "waitlist.offer-ended"
CONFERENCE_STARTED_QUEUE = "waitlist.conference-started"
# Fed only by the timer queue below, when an offer's confirmation window is over.
OFFER_EXPIRED_QUEUE = "waitlist.offer-expired"
_OFFER_TIMERS = "waitlist.offer-timers"


def offer_timer_queue(window_seconds: int) -> str:
    return delay_queue_name(_OFFER_TIMERS, window_seconds)


def queue_names(window_seconds: int) -> list[str]:
    return [
        SEAT_RELEASED_QUEUE,
        OFFER_MADE_QUEUE,
        OFFER_ENDED_QUEUE,
        CONFERENCE_STARTED_QUEUE,
        OFFER_EXPIRED_QUEUE,
        offer_timer_queue(window_seconds),
    ]


def declare(channel: BlockingChannel, window_seconds: int) -> None:
    declare_event_queue(channel, SEAT_RELEASED_QUEUE, [events_pb2.SeatReleased])
    declare_event_queue(channel, OFFER_MADE_QUEUE, [events_pb2.OfferMade])
    declare_event_queue(channel, OFFER_ENDED_QUEUE, [events_pb2.OfferEnded])
    declare_event_queue(channel, CONFERENCE_STARTED_QUEUE, [events_pb2.ConferenceStarted])
    declare_event_queue(channel, OFFER_EXPIRED_QUEUE, [])
    declare_delay_queue(
        channel, offer_timer_queue(window_seconds), delay_seconds=window_seconds, then_to_queue=OFFER_EXPIRED_QUEUE
    )
