"""OpenTelemetry traces across the gateway, the services, SQL, the outbox and RabbitMQ; off unless asked.

Tracing is on only when OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard OTEL_* variables then tune
the exporter and the batching). Spans are batched and exported over OTLP/HTTP by a thread of their
own, never on the request path. While it is off every helper here is one check of a global and
returns at once, so the hot paths pay nothing (docs/adr/0016).

The context travels as W3C `traceparent`: in gRPC metadata, with each outbox row (so that the relay
publishes the event in the trace of the change that wrote it), and in the AMQP headers of each message.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from confbook_common import logging_setup
from confbook_common.settings import Env

log = logging.getLogger(__name__)

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"

# gRPC codes that mean the server failed, as OpenTelemetry's conventions for server spans have it;
# the others (INVALID_ARGUMENT, NOT_FOUND...) are the caller's and leave the span unset.
_SERVER_ERRORS = frozenset({"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"})

_tracer: Tracer | None = None  # None while tracing is off


def enabled() -> bool:
    return _tracer is not None


def configure_tracing(service: str, env: Env | None = None) -> bool:
    """Export this process's spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; True if so."""
    global _tracer
    env = env or Env()
    if not env.text(ENDPOINT_VARIABLE, ""):
        return False
    # Imported only here: a process that does not trace never loads the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {"service.name": service, "service.instance.id": f"{socket.gethostname()}-{os.getpid()}"}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # sends what is still batched
    _tracer = provider.get_tracer("confbook")
    logging_setup.trace_ids[0] = _current_ids
    log.info("tracing: spans go to %s", env.text(ENDPOINT_VARIABLE, ""))
    return True


def _current_ids() -> tuple[str, str] | None:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def instrument_engine(engine: Any) -> None:
    """SQL statements as spans, children of whatever span runs them."""
    if _tracer is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=False)


# --- carrying the context ---------------------------------------------------------------------------------------


def carrier() -> dict[str, str]:
    """The current context as W3C headers (`traceparent`, and `tracestate` if any); empty when off."""
    if _tracer is None:
        return {}
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def carrier_text() -> str | None:
    """The current context to store beside an outbox row; None outside a trace or when off."""
    headers = carrier()
    return json.dumps(headers) if headers else None


def _extract(headers: Mapping[str, Any] | None) -> otel_context.Context:
    text = {key: value.decode() if isinstance(value, bytes) else str(value) for key, value in (headers or {}).items()}
    return propagate.extract(text)


def _from_stored(stored: str | None) -> otel_context.Context | None:
    if not stored:
        return None
    try:
        return _extract(json.loads(stored))
    except ValueError:
        return None


# --- spans ------------------------------------------------------------------------------------------------------


ServerSpan = tuple[Span, object]


def server_span(method: str, metadata: Iterable[tuple[str, Any]] | None) -> ServerSpan | None:
    """A SERVER span for a gRPC call, continuing the caller's trace and current until ended; None when off."""
    if _tracer is None:
        return None
    service, _, name = method.lstrip("/").partition("/")
    parent = _extract({key: value for key, value in metadata or () if key in ("traceparent", "tracestate")})
    span = _tracer.start_span(
        method.lstrip("/"),
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )
    return span, otel_context.attach(trace.set_span_in_context(span, parent))


def end_server_span(handle: ServerSpan, code: str, *, ok: bool) -> None:
    current, token = handle
    current.set_attribute("rpc.grpc.status_code", code)
    if not ok and code in _SERVER_ERRORS:
        current.set_status(Status(StatusCode.ERROR, code))
    otel_context.detach(token)  # type: ignore[arg-type]
    current.end()


@contextmanager
def http_server_span(method: str, route: str, headers: Mapping[str, Any]) -> Iterator[Span | None]:
    """A SERVER span for an HTTP request, continuing a trace the client sent in `traceparent`."""
    if _tracer is None:
        yield None
        return
    parent = _extract({key: value for key, value in headers.items() if key in ("traceparent", "tracestate")})
    with _tracer.start_as_current_span(
        f"{method} {route}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route},
    ) as current:
        yield current


@contextmanager
def publish_span(stored_context: str | None, destination: str) -> Iterator[dict[str, str]]:
    """A PRODUCER span in the trace stored with an outbox row; yields the headers to publish it with."""
    if _tracer is None:
        yield {}
        return
    with _tracer.start_as_current_span(
        f"publish {destination}",
        context=_from_stored(stored_context),
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "rabbitmq", "messaging.destination.name": destination},
    ):
        yield carrier()


@contextmanager
def consume_span(queue: str, headers: Mapping[str, Any] | None) -> Iterator[Span | None]:
    """A CONSUMER span for handling one message, in the trace its headers carry."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(
        f"process {queue}",
        context=_extract(headers),
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "rabbitmq", "messaging.destination.name": queue},
    ) as current:
        yield current


# --- gRPC clients -----------------------------------------------------------------------------------------------


def traced_channel(channel: grpc.Channel) -> grpc.Channel:
    """A sync channel whose calls are CLIENT spans that pass the trace on; the channel itself when off."""
    if _tracer is None:
        return channel
    return grpc.intercept_channel(channel, _TraceContextInterceptor(_tracer))


class _TraceContextInterceptor(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        method = str(details.method).lstrip("/")
        with self._tracer.start_as_current_span(
            method, kind=SpanKind.CLIENT, attributes={"rpc.system": "grpc", "rpc.method": method}
        ) as current:
            metadata = [*(details.metadata or ()), *carrier().items()]
            outcome = continuation(details._replace(metadata=metadata), request)
            code = outcome.code()
            current.set_attribute("rpc.grpc.status_code", code.name if code is not None else "OK")
            return outcome
