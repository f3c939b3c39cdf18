"""The soak's options."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
# Servers and a state dir of its own, apart from those of `make test`, `make bench` and `make up`.
DEFAULT_STATE_DIR = REPO_ROOT / ".run" / "soak"
DEFAULT_DATABASE_URL = "postgresql://confbook:confbook@127.0.0.1:15436/confbook_soak"
DEFAULT_AMQP_URL = "amqp://confbook:confbook@127.0.0.1:15676/%2F"


@dataclass(frozen=True)
class Options:
    operations: int = 10_000
    clients: int = 32
    seed: int = 1
    users: int = 150
    conferences: int = 16
    fault_rounds: int = 2
    window_seconds: int = 5
    broker_outage_seconds: float = 10.0
    database_pause_seconds: float = 4.0
    call_timeout_seconds: float = 15.0
    quiet_timeout_seconds: float = 120.0
    state_dir: Path = DEFAULT_STATE_DIR
    database_url: str = DEFAULT_DATABASE_URL
    amqp_url: str = DEFAULT_AMQP_URL
    summary_json: Path | None = None

    def describe(self) -> str:
        return (
            f"--operations {self.operations} --clients {self.clients} --seed {self.seed} --users {self.users} "
            f"--conferences {self.conferences} --fault-rounds {self.fault_rounds} --window {self.window_seconds}"
        )


def parse_options(argv: Sequence[str] | None = None) -> Options:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m scripts.soak",
        description="Drive a two-replica stack with random bookings, cancels and confirmations from many clients "
        "while services are killed, the broker stopped and the database paused; then check the invariants.",
    )
    number = parser.add_argument
    number("--operations", type=_positive(int), default=defaults.operations, help="HTTP requests in all [%(default)s]")
    number("--clients", type=_positive(int), default=defaults.clients, help="concurrent clients [%(default)s]")
    number("--seed", type=int, default=defaults.seed, help="seed of every random choice [%(default)s]")
    number("--users", type=_positive(int), default=defaults.users, help="users, shared by all clients [%(default)s]")
    number(
        "--conferences", type=_positive(int), default=defaults.conferences,
        help="conferences created before the run; more are created during it [%(default)s]",
    )  # fmt: skip
    number(
        "--fault-rounds", type=int, default=defaults.fault_rounds,
        help="times the whole fault schedule runs, spread over the operations; 0 for none [%(default)s]",
    )  # fmt: skip
    number(
        "--window", dest="window_seconds", type=_positive(int), default=defaults.window_seconds,
        help="confirmation window in seconds, short so that offers expire during the run [%(default)s]",
    )  # fmt: skip
    number(
        "--broker-outage", dest="broker_outage_seconds", type=_positive(float),
        default=defaults.broker_outage_seconds, help="seconds RabbitMQ stays stopped, beyond the window [%(default)s]",
    )  # fmt: skip
    number(
        "--database-pause", dest="database_pause_seconds", type=_positive(float),
        default=defaults.database_pause_seconds, help="seconds PostgreSQL stays SIGSTOPped [%(default)s]",
    )  # fmt: skip
    number(
        "--call-timeout", dest="call_timeout_seconds", type=_positive(float),
        default=defaults.call_timeout_seconds, help="a request unanswered after this long is a hang [%(default)s]",
    )  # fmt: skip
    number(
        "--quiet-timeout", dest="quiet_timeout_seconds", type=_positive(float),
        default=defaults.quiet_timeout_seconds, help="longest wait for the system to settle [%(default)s]",
    )  # fmt: skip
    number("--state-dir", type=Path, default=Path(os.environ.get("SOAK_STATE_DIR") or DEFAULT_STATE_DIR))
    number("--database-url", default=os.environ.get("SOAK_DATABASE_URL") or DEFAULT_DATABASE_URL)
    number("--amqp-url", default=os.environ.get("SOAK_AMQP_URL") or DEFAULT_AMQP_URL)
    number("--summary-json", type=Path, help="also write the summary as JSON to this file")
    args = parser.parse_args(argv)
    options = Options(**{**vars(args), "state_dir": args.state_dir.resolve()})
    if options.broker_outage_seconds <= options.window_seconds:
        parser.error("--broker-outage must exceed --window, so that offers fall due while the broker is away")
    if options.fault_rounds < 0:
        parser.error("--fault-rounds must not be negative")
    return options


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not positive")
        return value

    return parse
