"""The bench's options. --quick swaps in short defaults; an option given on the command line wins over both."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULTS = {
    "connections": 32,
    "duration": 10,
    "threads": 2,
    "line": 50_000,
    "users": 60_000,
    "conferences": 1000,
    "seats": 100,
    "sql_threads": 16,
    "promotion_trials": 30,
    "expiries": 10,
    "open_streams": 200,
}
QUICK = DEFAULTS | {
    "duration": 2,
    "line": 300,
    "users": 10_000,
    "conferences": 100,
    "seats": 10,
    "promotion_trials": 5,
    "expiries": 2,
    "open_streams": 50,
}
_HELP = {
    "connections": "wrk connections, each with one request in flight",
    "duration": "seconds of each wrk run and each raw-SQL ceiling",
    "threads": "wrk threads",
    "line": "length of the line in (d)",
    "users": "users inserted for each booking scenario, shared by its two runs",
    "conferences": "conferences that (a) and its raw-SQL ceiling spread the bookings over",
    "seats": "seats of the one conference of (b) and of its raw-SQL ceiling",
    "sql_threads": "threads (one connection each) of the raw-SQL ceilings",
    "promotion_trials": "cancel-to-offer trials of measurement 3",
    "expiries": "offers left to expire in measurement 5",
    "open_streams": "event streams held open during measurement 7",
}


@dataclass(frozen=True)
class Options:
    connections: int
    duration: int
    threads: int
    line: int
    users: int
    conferences: int
    seats: int
    sql_threads: int
    promotion_trials: int
    expiries: int
    open_streams: int
    quick: bool = False
    strict: bool = False

    def describe(self) -> str:
        """The options as they would be given, for the report."""
        numbers = " ".join(f"--{name.replace('_', '-')} {getattr(self, name)}" for name in DEFAULTS)
        flags = [flag for flag, on in (("--quick", self.quick), ("--strict", self.strict)) if on]
        return " ".join([*flags, numbers])


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description="Measure the product over HTTP with wrk beside ceilings measured in the same run, and the "
        "waitlist's delays, on a private stack; print a Markdown report.",
    )
    for name, default in DEFAULTS.items():
        quick = f"; --quick {QUICK[name]:,}" if QUICK[name] != default else ""
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=_positive, metavar="N", help=f"{_HELP[name]} [{default:,}{quick}]"
        )
    parser.add_argument("--quick", action="store_true", help="short runs and a short line, for a smoke test")
    parser.add_argument("--strict", action="store_true", help="a missed target fails the exit status too")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else DEFAULTS
    values = {name: getattr(args, name) or defaults[name] for name in DEFAULTS}
    options = Options(**values, quick=args.quick, strict=args.strict)
    if options.threads > options.connections:
        parser.error("--threads must not exceed --connections (wrk gives each thread its share of connections)")
    if options.users // 2 < options.threads:
        parser.error("--users must give each wrk thread of each run at least one user")
    return options


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value
