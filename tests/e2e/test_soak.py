"""The soak in its short form: random bookings, cancels and confirmations from many clients, each request with
the token of whoever makes it, on a stack of two replicas per service while each service, the gateway and the
token issuer is killed, RabbitMQ stopped and PostgreSQL paused; afterwards no invariant is broken (and no valid
token was refused), the faults really happened and the work really got done."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scripts.soak.main import main
from scripts.soak.stack import PROGRAMS
from tests.conftest import STATE_DIR

OPERATIONS = 1500


def short_soak_options(summary: Path) -> list[str]:
    # Servers and a state dir of its own: the stack of the other end-to-end tests and a `make soak` are untouched.
    database_url = os.environ.get("SOAK_TEST_DATABASE_URL") or (
        "postgresql://confbook:confbook@127.0.0.1:15437/confbook_soak"
    )
    amqp_url = os.environ.get("SOAK_TEST_AMQP_URL") or "amqp://confbook:confbook@127.0.0.1:15677/%2F"
    return [
        f"--operations={OPERATIONS}",
        "--clients=24",
        "--users=100",
        "--conferences=12",
        "--fault-rounds=1",
        f"--state-dir={STATE_DIR / 'soak'}",
        f"--database-url={database_url}",
        f"--amqp-url={amqp_url}",
        f"--summary-json={summary}",
    ]


@pytest.mark.timeout(300)
def test_a_short_soak_under_every_kind_of_fault_breaks_no_invariant(tmp_path: Path, capsys) -> None:
    code = main(short_soak_options(tmp_path / "summary.json"))

    report = capsys.readouterr()
    assert code == 0, f"{report.out}\n{report.err[-4000:]}"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["violations"] == []
    # Every token it sent was valid and for its own data, and its bounds were out of reach.
    assert not [kind for kind in summary["errors"] if kind.startswith(("401", "403", "429"))], summary["errors"]
    hurt = [fault["program"] for fault in summary["faults"]]
    assert sorted(hurt) == sorted([*PROGRAMS, "broker", "database"]), summary["faults"]
    assert all(fault["seconds"] is not None for fault in summary["faults"])
    assert summary["operations"] == OPERATIONS
    # Most requests are answered 2xx, and every kind of change happened.
    assert summary["succeeded"] > OPERATIONS * 0.6, summary
    answers = summary["answers"]
    for outcome in ["book CONFIRMED", "book WAITLISTED", "cancel CANCELED", "confirm CONFIRMED"]:
        assert answers.get(outcome, 0) > 0, (outcome, answers)
    assert summary["world"]["bookings canceled at their conference's start"] > 0, summary["world"]
    # Every kill was healed by supervisord, not by the soak: one restart per killed process at least.
    assert summary["restarts"] >= len(PROGRAMS), summary
