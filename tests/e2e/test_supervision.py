"""Under `make up`, supervisord restarts whatever dies, and `down` leaves nothing behind."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts import infra, sandbox
from scripts.launching import readiness_problem
from scripts.sandbox import Infrastructure
from scripts.stack import LocalStack
from tests.conftest import E2E_WINDOW_SECONDS
from tests.e2e.conftest import Api
from tests.waiting import eventually


@pytest.fixture
def supervised(infrastructure: Infrastructure, tmp_path: Path) -> Iterator[LocalStack]:
    """A supervised stack of its own (two replicas of each service) on the test database and broker."""
    environment = sandbox.environment(infrastructure, sandbox.free_ports(), E2E_WINDOW_SECONDS)
    stack = LocalStack(tmp_path / "stack", {**environment, "WORKERS": "1", "REPLICAS": "2"})
    stack.up()
    try:
        yield stack
    finally:
        stack.stop_own()


def test_killed_workers_of_a_service_and_of_the_gateway_come_back_by_themselves(supervised):
    before = {process.name: process.pid for process in supervised.supervisor.processes()}
    assert len(before) == 8  # two replicas of three services, one gateway, the dev issuer: one worker each

    killed = supervised.kill("booking") + supervised.kill("gateway")
    assert len(killed) == 3

    def all_back() -> bool:
        processes = supervised.supervisor.processes()
        return all(p.state == "RUNNING" and p.pid not in killed for p in processes)

    eventually(all_back, timeout=20)
    eventually(lambda: readiness_problem(supervised.gateway_url) is None, timeout=20)
    restarts = {p.name: p.restarts for p in supervised.supervisor.processes()}
    assert restarts == {name: 1 if name.startswith(("booking", "gateway")) else 0 for name in before}
    with httpx.Client(base_url=supervised.gateway_url, timeout=10) as client:
        api = Api(client, supervised)
        assert api.book(api.create_conference(slots=1), api.create_user())["status"] == "CONFIRMED"
    assert any("restarted 1 time" in line for line in supervised.status())


def test_down_stops_every_process_it_started_and_leaves_the_servers_it_reused(supervised):
    pids = [process.pid for process in supervised.supervisor.processes()]
    supervisord_pid = int(supervised.supervisor.pid_file.read_text())

    supervised.stop_own()

    assert not any(infra.process_alive(pid) for pid in [*pids, supervisord_pid])
    assert infra.port_open("127.0.0.1", supervised.env.port("GATEWAY_PORT", 0)) is False
    # The test database and broker were already running: not this stack's to stop.
    assert supervised.status()[-2:] and all("answers" in line for line in supervised.status()[-2:])


def test_a_worker_never_outlives_the_supervisor(supervised):
    pids = [process.pid for process in supervised.supervisor.processes()]
    supervisord_pid = int(supervised.supervisor.pid_file.read_text())

    os.kill(supervisord_pid, signal.SIGKILL)  # it gets no chance to stop anything

    eventually(lambda: not any(infra.process_alive(pid) for pid in pids), timeout=15)
