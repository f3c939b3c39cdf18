"""Wires the waitlist service together and runs it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from google.protobuf.message import Message

from confbook.events.v1 import events_pb2
from confbook.waitlist.v1 import waitlist_pb2, waitlist_pb2_grpc
from confbook_common.auth import TokenVerifier
from confbook_common.auth.bearer import Callers
from confbook_common.auth.warmup import SigningKeysWarmup
from confbook_common.db import create_engine
from confbook_common.messaging.consumer import EventConsumer, Subscription
from confbook_common.messaging.relay import OutboxRelay
from confbook_common.messaging.topology import EVENT_OWNERS
from confbook_common.metrics import OutboxCollector
from confbook_common.retention import RetentionCollector, RetentionWorker
from confbook_common.rpc.caller_auth import with_token
from confbook_common.rpc.client import insecure_channel
from confbook_common.rpc.server import ServiceRuntime, database_reachable, run_service
from confbook_common.tracing import traced_channel
from services.waitlist.adapters import retention, tables, topology
from services.waitlist.adapters.promotions import GrpcPromotions
from services.waitlist.config import SERVICE, WaitlistConfig
from services.waitlist.entrypoints.grpc_servicer import WaitlistServicer
from services.waitlist.entrypoints.sweeper import OverdueOfferSweeper
from services.waitlist.service_layer import handlers
from services.waitlist.service_layer.unit_of_work import WaitlistUnitOfWork


def build(config: WaitlistConfig) -> ServiceRuntime:
    engine = create_engine(config.database_url, application_name=SERVICE)

    def unit_of_work() -> WaitlistUnitOfWork:
        return WaitlistUnitOfWork(engine)

    booking = traced_channel(insecure_channel(config.booking_target))
    promotions = GrpcPromotions(with_token(booking, config.promotion_token))
    window = config.confirmation_window_seconds
    declare_topology = partial(topology.declare, window_seconds=window)

    def subscription(queue: str, message_type: type[Message], handler: Callable[[Any, Any], None]) -> Subscription:
        return Subscription(queue, message_type, handler, publisher=config.broker_users[EVENT_OWNERS[message_type]])

    subscriptions = [
        subscription(
            topology.SEAT_RELEASED_QUEUE,
            events_pb2.SeatReleased,
            partial(handlers.on_seat_released, promotions=promotions),
        ),
        subscription(
            topology.OFFER_MADE_QUEUE,
            events_pb2.OfferMade,
            partial(handlers.on_offer_made, timer_queue=topology.offer_timer_queue(window)),
        ),
        subscription(topology.OFFER_ENDED_QUEUE, events_pb2.OfferEnded, handlers.on_offer_ended),
        subscription(
            topology.OFFER_EXPIRED_QUEUE,
            events_pb2.OfferExpired,
            partial(handlers.on_offer_expired, promotions=promotions),
        ),
        subscription(
            topology.CONFERENCE_STARTED_QUEUE,
            events_pb2.ConferenceStarted,
            partial(handlers.on_conference_started, promotions=promotions),
        ),
    ]

    runtime = ServiceRuntime(SERVICE, config.listen_address)
    verifier = TokenVerifier(config.token_rules)
    runtime.add_worker(SigningKeysWarmup(verifier.keys))
    servicer = WaitlistServicer(unit_of_work, Callers(verifier))
    runtime.add_service(
        waitlist_pb2.DESCRIPTOR.services_by_name["WaitlistService"].full_name,
        lambda server: waitlist_pb2_grpc.add_WaitlistServiceServicer_to_server(servicer, server),
    )
    runtime.add_check("postgresql", database_reachable(engine))
    runtime.add_collector(OutboxCollector(engine, tables.outbox))
    lifetimes = retention.rules(config.lifetimes, config.closed_offers_lifetime)
    runtime.add_collector(RetentionCollector(engine, lifetimes))
    runtime.add_worker(RetentionWorker(engine, lifetimes, config.retention))
    runtime.add_worker(
        EventConsumer(
            name="waitlist-events",
            amqp_url=config.amqp_url,
            unit_of_work=unit_of_work,
            subscriptions=subscriptions,
            declare_topology=declare_topology,
        )
    )
    runtime.add_worker(
        OutboxRelay(engine=engine, table=tables.outbox, amqp_url=config.amqp_url, declare_topology=declare_topology)
    )
    runtime.add_worker(OverdueOfferSweeper(unit_of_work, promotions))
    return runtime


def main() -> None:
    run_service(SERVICE, WaitlistConfig.from_env, build)
