"""Opening RabbitMQ connections. pika is not thread-safe: each thread opens its own."""

from __future__ import annotations

import pika
from pika.adapters.blocking_connection import BlockingConnection


def connect(url: str, *, name: str) -> BlockingConnection:
    parameters = pika.URLParameters(url)
    parameters.client_properties = {"connection_name": name}
    parameters.heartbeat = 30
    parameters.blocked_connection_timeout = 30
    parameters.socket_timeout = 5
    parameters.connection_attempts = 1  # Worker retries with its own backoff.
    return BlockingConnection(parameters)
