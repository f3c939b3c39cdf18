"""Opening RabbitMQ connections. pika is not thread-safe: each thread opens its own."""

from __future__ import annotations

import random

import pika
from pika.adapters.blocking_connection import BlockingConnection

from confbook_common.settings import amqp_nodes


def connect(url: str, *, name: str) -> BlockingConnection:
    """A connection to one of the URL's nodes (a cluster's are tried in a random order, so that
    clients spread over them and a node that is down is skipped)."""
    nodes = amqp_nodes(url)
    random.shuffle(nodes)
    return BlockingConnection([_parameters(node, name) for node in nodes])


def _parameters(url: str, name: str) -> pika.URLParameters:
    parameters = pika.URLParameters(url)
    parameters.client_properties = {"connection_name": name}
    parameters.heartbeat = 30
    parameters.blocked_connection_timeout = 30
    parameters.socket_timeout = 5
    parameters.connection_attempts = 1  # Worker retries with its own backoff.
    return parameters
