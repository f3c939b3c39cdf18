"""The benchmark end to end in its quick form: it runs on a private stack of its own, every request with a token,
every check passes, the report leads with the table of figures against their ceilings and says what a token check
costs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, STATE_DIR

# A state dir and ports of its own: neither this run's stack nor a `make bench` running meanwhile is touched.
BENCH_ENV = {
    "BENCH_STATE_DIR": str(STATE_DIR / "bench"),
    "BENCH_DATABASE_URL": "postgresql://confbook:confbook@127.0.0.1:15435/confbook_bench",
    "BENCH_AMQP_URL": "amqp://confbook:confbook@127.0.0.1:15675/%2F",
}
# About a minute on two busy CPUs; past this something is stuck.
TIMEOUT_SECONDS = 240
FIGURES = ["(a)", "(b)", "(b)", "(c)", "(d)", "(d)"]


def run_quick_bench() -> tuple[int, str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.bench", "--quick"],
        cwd=ROOT,
        env={**os.environ, **BENCH_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the bench then stops everything it started, as on Ctrl-C
        stdout, stderr = process.communicate(timeout=60)
        pytest.fail(f"the quick bench took over {TIMEOUT_SECONDS} s\n{stderr[-4000:]}")
    return process.returncode, stdout, stderr


def test_quick_bench_passes_its_checks_and_leads_with_the_ratio_table() -> None:
    code, report, progress = run_quick_bench()

    assert code == 0, f"{report[-4000:]}\n{progress[-4000:]}"
    assert "- FAIL:" not in report
    sections = report.split("\n## ")
    assert sections[1].startswith("Against the ceilings"), report[:2000]
    table = sections[1].splitlines()
    assert "| figure | product | ceiling | ratio | target | result |" in table
    rows = [line for line in table if line.startswith("| (")]
    assert [row.removeprefix("| ")[:3] for row in rows] == FIGURES
    assert all(row.endswith(("| PASS |", "| FAIL |", "| — |")) for row in rows), rows
    # What a token check costs, in process and over HTTP.
    tokens = next(section for section in sections if section.startswith("Checking a token"))
    assert "| a token never seen: signature and claims checked | 1,000 |" in tokens, tokens
    assert "| framework floor, the token checked |" in tokens, tokens
