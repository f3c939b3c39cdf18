"""Wires the booking service together and runs it."""

from __future__ import annotations

from confbook.booking.v1 import booking_pb2, booking_pb2_grpc, promotion_pb2, promotion_pb2_grpc
from confbook_common.auth import TokenVerifier
from confbook_common.auth.bearer import Callers
from confbook_common.auth.warmup import SigningKeysWarmup
from confbook_common.db import create_engine
from confbook_common.messaging.relay import OutboxRelay
from confbook_common.metrics import OutboxCollector
from confbook_common.retention import RetentionCollector, RetentionWorker
from confbook_common.rpc.bounds import StreamBounds
from confbook_common.rpc.client import insecure_channel
from confbook_common.rpc.server import ServiceRuntime, database_reachable, run_service
from confbook_common.tracing import traced_channel
from services.booking.adapters import retention, tables
from services.booking.adapters.change_notices import ChangeNotices
from services.booking.adapters.conference_directory import GrpcConferenceDirectory
from services.booking.adapters.metrics import WaitlistCollector
from services.booking.config import SERVICE, BookingConfig
from services.booking.entrypoints.grpc_servicer import BookingServicer
from services.booking.entrypoints.promotion_servicer import PromotionServicer
from services.booking.entrypoints.reconciler import StartupReconciler
from services.booking.entrypoints.webhook_sender import WebhookSender
from services.booking.service_layer.unit_of_work import BookingUnitOfWork


def build(config: BookingConfig) -> ServiceRuntime:
    engine = create_engine(config.database_url, application_name=SERVICE, pool_size=16)

    def unit_of_work() -> BookingUnitOfWork:
        return BookingUnitOfWork(engine)

    verifier = TokenVerifier(config.token_rules)
    directory = GrpcConferenceDirectory(traced_channel(insecure_channel(config.conference_target)))
    bookings = BookingServicer(
        unit_of_work,
        directory,
        Callers(verifier),
        notices=ChangeNotices(engine),
        # A watch ends itself (OK, resumable) before the limiter would end it as DEADLINE_EXCEEDED.
        watch_seconds=min(config.watch_seconds, max(StreamBounds.from_env().max_seconds - 1, 1)),
        refuse_internal_addresses=config.refuse_internal_webhook_addresses,
    )
    promotions = PromotionServicer(unit_of_work, config.confirmation_window, config.promotion_token)

    runtime = ServiceRuntime(SERVICE, config.listen_address)
    runtime.add_worker(SigningKeysWarmup(verifier.keys))
    runtime.add_service(
        booking_pb2.DESCRIPTOR.services_by_name["BookingService"].full_name,
        lambda server: booking_pb2_grpc.add_BookingServiceServicer_to_server(bookings, server),
    )
    runtime.add_service(
        promotion_pb2.DESCRIPTOR.services_by_name["PromotionService"].full_name,
        lambda server: promotion_pb2_grpc.add_PromotionServiceServicer_to_server(promotions, server),
    )
    runtime.add_check("postgresql", database_reachable(engine))
    runtime.add_collector(OutboxCollector(engine, tables.outbox))
    lifetimes = retention.rules(config.lifetimes, config.common_lifetimes)
    runtime.add_collector(RetentionCollector(engine, lifetimes))
    runtime.add_worker(RetentionWorker(engine, lifetimes, config.retention))
    runtime.add_collector(WaitlistCollector(engine))
    runtime.add_worker(OutboxRelay(engine=engine, table=tables.outbox, amqp_url=config.amqp_url))
    runtime.add_worker(StartupReconciler(unit_of_work))
    runtime.add_worker(
        WebhookSender(
            unit_of_work,
            policy=config.webhook_retry,
            timeout_seconds=config.webhook_timeout_seconds,
            refuse_internal_addresses=config.refuse_internal_webhook_addresses,
        )
    )
    return runtime


def main() -> None:
    run_service(SERVICE, BookingConfig.from_env, build)
