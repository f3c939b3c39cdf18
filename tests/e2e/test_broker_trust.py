"""The broker trusts nobody by default: no guest, each service only its own rights, forged events dropped."""

from __future__ import annotations

import uuid

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from sqlalchemy import create_engine, select

from confbook.events.v1 import events_pb2
from confbook_common.messaging.topology import DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, routing_key
from confbook_common.settings import Env, amqp_nodes
from services.waitlist.adapters import tables, topology
from tests.waiting import eventually


def connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(amqp_nodes(url)[0]))


def as_guest(url: str) -> str:
    parameters = pika.URLParameters(amqp_nodes(url)[0])
    return f"amqp://guest:guest@{parameters.host}:{parameters.port}/%2F"


@pytest.fixture
def env(infrastructure) -> Env:
    return Env(infrastructure.env())


def depth(channel: BlockingChannel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def open_offer(infrastructure, booking_id: int):
    """The waitlist service's record of an open offer: what a forged OfferEnded would close."""
    engine = create_engine(infrastructure.service_database_url("waitlist"))
    try:
        with engine.connect() as db:
            query = select(tables.offers.c.conference_id, tables.offers.c.deadline)
            return db.execute(
                query.where(tables.offers.c.booking_id == booking_id, tables.offers.c.state == "OPEN")
            ).one()
    finally:
        engine.dispose()


def test_the_guest_account_is_refused(infrastructure):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect(as_guest(infrastructure.amqp_url))


def test_a_service_cannot_publish_as_another(env):
    connection = connect(env.service_amqp_url("conference"))
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # a publish then waits for the broker's answer, or its refusal
        # An event the conference service may publish, but claiming to come from the booking service.
        properties = pika.BasicProperties(
            user_id=env.broker_user("booking"), type="confbook.events.v1.ConferenceStarted"
        )
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_publish(EVENTS_EXCHANGE, routing_key(events_pb2.ConferenceStarted), b"", properties)
        assert refused.value.reply_code == 406  # PRECONDITION_FAILED: user_id is not the login
    finally:
        if connection.is_open:
            connection.close()


@pytest.mark.parametrize(
    "event, queue",
    [(events_pb2.SeatReleased, topology.SEAT_RELEASED_QUEUE), (events_pb2.OfferEnded, topology.OFFER_ENDED_QUEUE)],
)
def test_a_service_may_publish_only_its_own_events_and_only_to_the_events_exchange(env, event, queue):
    """The conference service's account neither publishes booking events nor reaches a queue directly."""
    for exchange, key in ((EVENTS_EXCHANGE, routing_key(event)), ("", queue)):
        connection = connect(env.service_amqp_url("conference"))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            properties = pika.BasicProperties(user_id=env.broker_user("conference"), type=event.DESCRIPTOR.full_name)
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
                channel.basic_publish(exchange, key, event().SerializeToString(), properties)
            assert refused.value.reply_code == 403  # ACCESS_REFUSED
        finally:
            if connection.is_open:
                connection.close()


def test_a_forged_offer_ended_does_not_stop_the_offer_from_expiring(api, stack, env, infrastructure):
    """The attack that froze a seat: an OfferEnded for an open offer, from an account that may reach the queue."""
    conference = api.create_conference(slots=1)
    holder = api.book(conference, api.create_user())["booking_id"]
    first = api.book(conference, api.create_user())["booking_id"]
    second = api.book(conference, api.create_user())["booking_id"]
    api.cancel(holder)
    eventually(lambda: api.status(first) == "CONFIRMATION_PENDING")

    offer = open_offer(infrastructure, first)
    admin = connect(infrastructure.amqp_url)
    channel = admin.channel()
    before = depth(channel, DEAD_LETTER_QUEUE)
    # The waitlist's own account may write to its queues (its timers), but OfferEnded is the booking service's.
    forger = connect(env.service_amqp_url("waitlist"))
    try:
        # Exactly what the booking service would send when the offer is confirmed.
        forged = events_pb2.OfferEnded(
            booking_id=first, conference_id=offer.conference_id, outcome=events_pb2.OfferEnded.OUTCOME_CONFIRMED
        )
        forged.deadline.FromDatetime(offer.deadline)
        properties = pika.BasicProperties(
            message_id=str(uuid.uuid4()), type=forged.DESCRIPTOR.full_name, user_id=env.broker_user("waitlist")
        )
        forger.channel().basic_publish("", topology.OFFER_ENDED_QUEUE, forged.SerializeToString(), properties)
    finally:
        forger.close()

    eventually(lambda: depth(channel, DEAD_LETTER_QUEUE) == before + 1)
    admin.close()
    assert open_offer(infrastructure, first) == offer, "the forged event was applied"
    # The offer is still watched: it expires and the seat moves on down the line.
    eventually(lambda: api.status(first) == "WAITLISTED", timeout=20)
    eventually(lambda: api.status(second) == "CONFIRMATION_PENDING")
