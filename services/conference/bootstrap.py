"""Wires the conference service together and runs it."""

from __future__ import annotations

from confbook.conference.v1 import conference_pb2, conference_pb2_grpc
from confbook_common.auth import TokenVerifier
from confbook_common.auth.bearer import Callers
from confbook_common.auth.warmup import SigningKeysWarmup
from confbook_common.db import create_engine
from confbook_common.messaging.relay import OutboxRelay
from confbook_common.metrics import OutboxCollector
from confbook_common.retention import RetentionCollector, RetentionWorker
from confbook_common.rpc.server import ServiceRuntime, database_reachable, run_service
from services.conference.adapters import retention, tables
from services.conference.config import SERVICE, ConferenceConfig
from services.conference.entrypoints.grpc_servicer import ConferenceServicer
from services.conference.entrypoints.start_trigger import StartTrigger
from services.conference.service_layer.unit_of_work import ConferenceUnitOfWork


def build(config: ConferenceConfig) -> ServiceRuntime:
    engine = create_engine(config.database_url, application_name=SERVICE)

    def unit_of_work() -> ConferenceUnitOfWork:
        return ConferenceUnitOfWork(engine)

    runtime = ServiceRuntime(SERVICE, config.listen_address)
    verifier = TokenVerifier(config.token_rules)
    runtime.add_worker(SigningKeysWarmup(verifier.keys))
    servicer = ConferenceServicer(unit_of_work, Callers(verifier))
    runtime.add_service(
        conference_pb2.DESCRIPTOR.services_by_name["ConferenceService"].full_name,
        lambda server: conference_pb2_grpc.add_ConferenceServiceServicer_to_server(servicer, server),
    )
    runtime.add_check("postgresql", database_reachable(engine))
    runtime.add_collector(OutboxCollector(engine, tables.outbox))
    lifetimes = retention.rules(config.lifetimes)
    runtime.add_collector(RetentionCollector(engine, lifetimes))
    runtime.add_worker(RetentionWorker(engine, lifetimes, config.retention))
    runtime.add_worker(OutboxRelay(engine=engine, table=tables.outbox, amqp_url=config.amqp_url))
    runtime.add_worker(StartTrigger(unit_of_work))
    return runtime


def main() -> None:
    run_service(SERVICE, ConferenceConfig.from_env, build)
