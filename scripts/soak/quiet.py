"""Waiting until the system has nothing left to do: every outbox drained, no event waiting in a queue, no offer
deadline or conference start overdue. Offers keep expiring and moving on while lines are long, so "quiet" is
a moment, not a state that lasts: the checks allow the promotion delay for that."""

from __future__ import annotations

import time

import pika
from sqlalchemy import text

from scripts.soak.database import Databases
from scripts.soak.report import progress
from scripts.soak.stack import SERVICES, SoakStack
from services.waitlist.adapters import topology as waitlist_topology

# The sweepers run every second; a deadline or start overdue by more is work not yet done.
OVERDUE_SECONDS = 2

_OVERDUE = {
    "booking": f"""SELECT count(*) FROM booking.bookings
        WHERE status = 'CONFIRMATION_PENDING' AND offer_deadline < now() - interval '{OVERDUE_SECONDS} s'""",
    "waitlist": f"""SELECT count(*) FROM waitlist.offers
        WHERE state = 'OPEN' AND deadline < now() - interval '{OVERDUE_SECONDS} s'""",
    "conference": f"""SELECT count(*) FROM conference.conferences
        WHERE start_announced_at IS NULL AND start_at < now() - interval '{OVERDUE_SECONDS} s'""",
}


def event_queues(window_seconds: int) -> list[str]:
    """The queues consumers read; the offer timer queue holds deadlines still to come, and is left out."""
    timers = waitlist_topology.offer_timer_queue(window_seconds)
    return [queue for queue in waitlist_topology.queue_names(window_seconds) if queue != timers]


def queued_messages(amqp_url: str, queues: list[str]) -> dict[str, int]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        return {queue: channel.queue_declare(queue, passive=True).method.message_count for queue in queues}
    finally:
        connection.close()


def unfinished_work(stack: SoakStack, databases: Databases) -> list[str]:
    """What is still to be done, empty once quiet."""
    work = []
    for service in SERVICES:
        with databases.snapshot(service) as db:
            unsent = db.execute(text(f"SELECT count(*) FROM {service}.outbox WHERE published_at IS NULL")).scalar()
            overdue = db.execute(text(_OVERDUE[service])).scalar()
        if unsent:
            work.append(f"{unsent} events in the {service} outbox")
        if overdue:
            work.append(f"{overdue} overdue {'starts' if service == 'conference' else 'offer deadlines'} ({service})")
    for queue, count in queued_messages(stack.amqp_url, event_queues(stack.window_seconds)).items():
        if count:
            work.append(f"{count} messages in {queue}")
    return work


def wait_until_quiet(stack: SoakStack, databases: Databases, timeout: float) -> float | None:
    """Seconds until two looks a second apart found nothing to do, or None after `timeout`."""
    started = time.monotonic()
    quiet_before = False
    last: list[str] = []
    while time.monotonic() - started < timeout:
        try:
            work = unfinished_work(stack, databases)
        except Exception as error:  # noqa: BLE001 - a server still coming back from the last fault
            work = [f"cannot look yet: {error!r}"]
        if not work and quiet_before:
            return time.monotonic() - started
        quiet_before = not work
        if work != last and work:
            progress(f"waiting for quiet: {'; '.join(work)}")
        last = work
        time.sleep(1.0)
    return None
