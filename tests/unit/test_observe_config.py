"""The private Prometheus of `make up OBSERVE=1` scrapes every program where its metrics are served."""

from __future__ import annotations

from pathlib import Path

import pytest

from confbook_common import metrics_dir
from confbook_common.settings import Env
from scripts import observe
from scripts.supervision import Program, Supervisor

pytestmark = pytest.mark.unit


def test_prometheus_scrapes_each_program_at_its_metrics_port() -> None:
    env = Env({"BOOKING_METRICS_PORT": "19182", "METRICS_HOST": "0.0.0.0"})
    config = observe.scrape_config(env)
    for job, port in [("gateway", 9180), ("conference", 9181), ("booking", 19182), ("waitlist", 9183)]:
        assert f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']" in config


def test_observe_is_off_unless_asked() -> None:
    assert not observe.wanted(Env({}))
    assert observe.wanted(Env({"OBSERVE": "1"}))


def test_a_programs_workers_share_one_directory_of_samples(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, tmp_path / "logs")
    samples = tmp_path / "metrics" / "booking"
    config = supervisor._config([Program("booking", "services.booking", 2, samples)])
    assert f'{metrics_dir.VARIABLE}="{samples}"' in config
