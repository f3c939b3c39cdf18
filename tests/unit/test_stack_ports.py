"""The ports a throw-away stack is given are distinct: two gRPC servers on one port would share it
(SO_REUSEPORT) and answer each other's calls."""

from __future__ import annotations

import socket

from scripts import infra, sandbox


def test_many_ports_chosen_at_once_are_all_distinct() -> None:
    # Chosen one probe after another, 200 ports hold a repeat more often than not.
    ports = infra.free_ports(200)

    assert len(set(ports)) == 200


def test_every_program_and_metrics_endpoint_gets_a_port_of_its_own() -> None:
    ports = sandbox.free_ports()

    # Each program and its metrics, and the dev issuer.
    assert len(set(ports.values())) == len(ports) == 2 * len(sandbox.MODULES) + 1


def test_the_chosen_ports_can_be_listened_on() -> None:
    for port in infra.free_ports(8):
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
            server.listen()
