"""The Markdown report: a header, the table of figures against their ceilings, then one section per measurement."""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

PERCENTILES = (50, 75, 90, 99)


@dataclass(frozen=True)
class Rate:
    """One load run, however it was driven: its rate, latency percentiles (seconds) and failed requests."""

    label: str
    load: str
    per_second: float
    latency: dict[int, float]
    errors: int


@dataclass(frozen=True)
class Target:
    """A product figure against its ceiling; `passed` is None for a row shown for information only."""

    figure: str
    product: str
    ceiling: str
    ratio: str
    target: str
    passed: bool | None


@dataclass
class Report:
    header: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    failed_checks: int = 0

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def timing(self, label: str, samples: Sequence[float]) -> None:
        """A one-row table of the samples' distribution, in milliseconds."""
        ordered = sorted(samples)
        # Nearest rank: the smallest sample with at least 95% of them at or below it.
        p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]
        self.add(
            "",
            "| milliseconds | n | median | p95 | max |",
            "|---|---:|---:|---:|---:|",
            f"| {label} | {len(ordered)} | {ms(statistics.median(ordered))} | {ms(p95)} | {ms(ordered[-1])} |",
            "",
        )

    def rates(self, rows: Sequence[Rate]) -> None:
        """One row per load run: rate, latency percentiles in milliseconds, failed requests."""
        percentiles = " | ".join(f"p{p} ms" for p in PERCENTILES)
        self.add("", f"| run | load | per second | {percentiles} | errors |", "|---|---|---:|" + "---:|" * 5)
        for row in rows:
            latencies = " | ".join(ms(row.latency[p]) if p in row.latency else "" for p in PERCENTILES)
            self.add(f"| {row.label} | {row.load} | {row.per_second:,.0f} | {latencies} | {row.errors} |")
        self.add("")

    def check(self, passed: bool, claim: str) -> None:
        self.failed_checks += not passed
        self.add(f"- {'PASS' if passed else 'FAIL'}: {claim}")

    def target(self, target: Target) -> None:
        self.targets.append(target)

    @property
    def missed_targets(self) -> int:
        return sum(target.passed is False for target in self.targets)

    def text(self) -> str:
        return "\n".join([*self.header, *self._target_table(), *self.lines]) + "\n"

    def _target_table(self) -> list[str]:
        judged = [target for target in self.targets if target.passed is not None]
        met = sum(bool(target.passed) for target in judged)
        rows = [
            f"| {t.figure} | {t.product} | {t.ceiling} | {t.ratio} | {t.target} | "
            f"{'—' if t.passed is None else 'PASS' if t.passed else 'FAIL'} |"
            for t in self.targets
        ]
        return [
            "## Against the ceilings",
            "",
            "| figure | product | ceiling | ratio | target | result |",
            "|---|---:|---:|---:|---|---|",
            *rows,
            "",
            f"{met} of {len(judged)} targets met. A missed target fails the exit status only with `--strict`; "
            "the checks in the sections below always do.",
            "",
        ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def ratio(product: float, ceiling: float) -> float:
    return product / ceiling if ceiling > 0 else 0.0


def percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


_STARTED = time.monotonic()


def progress(message: str) -> None:
    """Progress goes to stderr, so that stdout holds the report alone; each line with the time since the start."""
    print(f"bench: {time.monotonic() - _STARTED:6.1f} s  {message}", file=sys.stderr, flush=True)
