"""Progress on stderr while it runs; the summary at the end, on stdout and optionally as JSON."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"soak: {time.monotonic() - _STARTED:6.1f} s  {message}", file=sys.stderr, flush=True)


@dataclass
class Summary:
    parameters: str
    operations: int = 0  # HTTP requests issued by the clients
    succeeded: int = 0  # of which answered 2xx
    seconds: float = 0.0  # of the workload, setup excluded
    answers: dict[str, int] = field(default_factory=dict)  # 2xx answers by operation and resulting status
    errors: dict[str, int] = field(default_factory=dict)  # by HTTP status and error code, or why there was none
    faults: list[dict[str, Any]] = field(default_factory=list)  # name, seconds until /readyz answered 200 again
    world: dict[str, int] = field(default_factory=dict)  # counts from the final state
    quiet_after_seconds: float | None = None
    restarts: int = 0  # processes supervisord started again after they died unasked
    violations: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.violations else 0

    def text(self) -> str:
        rate = self.operations / self.seconds if self.seconds else 0.0
        lines = [
            "# confbook soak",
            "",
            f"parameters: {self.parameters}",
            f"operations: {self.operations} in {self.seconds:.1f} s ({rate:.0f}/s), {self.succeeded} answered 2xx",
            "",
            f"faults injected: {len(self.faults)}; processes restarted by supervisord: {self.restarts}",
            *(f"  {fault['name']:<36} back in {_seconds(fault['seconds'])}" for fault in self.faults),
            "",
            "answers:",
            *_table(self.answers),
            "",
            "errors by kind:",
            *(_table(self.errors) or ["  none"]),
            "",
            "final state:",
            *_table(self.world),
            f"  quiet {_seconds(self.quiet_after_seconds)} after the last operation",
            "",
            f"violations: {len(self.violations) or 'none'}",
            *(f"  - {violation}" for violation in self.violations[:200]),
        ]
        if len(self.violations) > 200:
            lines.append(f"  ... and {len(self.violations) - 200} more")
        return "\n".join(lines) + "\n"

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")


def _table(counts: dict[str, int]) -> list[str]:
    return [f"  {kind:<44} {count:>7}" for kind, count in sorted(counts.items())]


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"
