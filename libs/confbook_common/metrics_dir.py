"""Where a program's worker processes keep their Prometheus samples; set before prometheus_client is imported.

prometheus-client picks its storage when it is first imported: with PROMETHEUS_MULTIPROC_DIR set, every
process writes its samples to files there and a scrape of any one worker adds up all of them
(docs/adr/0016). Whoever starts a program's workers (supervisord's config, the test stacks) names one
fresh directory per program; a program started directly makes its own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare(program: str) -> Path:
    """The directory for this process's samples: the one its starter named, else a new one for its workers."""
    named = os.environ.get(VARIABLE, "").strip()
    if named:
        path = Path(named)
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix=f"confbook-{program}-metrics-"))
    os.environ[VARIABLE] = str(path)  # the workers this process starts inherit it
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def reset(path: Path) -> None:
    """Empty a program's directory before its workers start: samples of an earlier run must not add up."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
