"""`make up OBSERVE=1`: a private Prometheus (Debian's package) scraping every program's metrics endpoint.

It runs under the stack's supervisord like the other programs, on loopback, with its config and data
in the stack's state dir; `make down` stops it with the rest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from confbook_common.metrics import DEFAULT_METRICS_PORTS, metrics_address
from confbook_common.settings import Env

PROMETHEUS = "/usr/bin/prometheus"
DEFAULT_PORT = 9090
SCRAPE_SECONDS = 5


def wanted(env: Env) -> bool:
    return env.text("OBSERVE", "0") == "1"


def prometheus_port(env: Env) -> int:
    return env.port("PROMETHEUS_PORT", DEFAULT_PORT)


def scrape_config(env: Env) -> str:
    """One job per program, each scraping its one endpoint (which adds up all its workers and replicas)."""
    lines = [
        "global:",
        f"  scrape_interval: {SCRAPE_SECONDS}s",
        f"  evaluation_interval: {SCRAPE_SECONDS}s",
        "scrape_configs:",
    ]
    for program in DEFAULT_METRICS_PORTS:
        host, port = metrics_address(program, env)
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        lines += [f"  - job_name: {program}", "    static_configs:", f"      - targets: ['{host}:{port}']"]
    return "\n".join(lines) + "\n"


def prometheus_command(env: Env, state_dir: Path) -> list[str]:
    """Write the config under `state_dir` and return the command that runs Prometheus on it."""
    if not Path(PROMETHEUS).exists() and shutil.which("prometheus") is None:
        raise FileNotFoundError("prometheus is not installed; `make system-deps OBSERVE=1` installs it")
    home = state_dir / "prometheus"
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(scrape_config(env))
    return [
        shutil.which("prometheus") or PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port(env)}",
        "--storage.tsdb.retention.time=2d",
    ]
