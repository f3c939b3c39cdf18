"""schemathesis over the published /openapi.json, every check and every phase: no 5xx, every answer as
the schema states it (status, content type, headers, body; a 405 carries Allow), schema-breaking input
refused and schema-valid input accepted (but where schemathesis.toml says why a rule is beyond a schema)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import LONG_FUZZ
from tests.e2e.conftest import admin_token

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = ["--checks", "all"]
PHASES = ["--phases", "examples,coverage,fuzzing,stateful"]
QUICK = ["--max-examples", "15"]
LONG = ["--max-examples", "500"]


def test_the_api_answers_as_its_openapi_document_says(stack, tmp_path):
    # An admin's token, so that every operation is reached; the `ignored_auth` check also sends none.
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{stack.base_url}/openapi.json",
        *CHECKS,
        *PHASES,
        *(LONG if LONG_FUZZ else QUICK),
        "--workers",
        "1",
        "--no-color",
        "--header",
        f"Authorization: Bearer {admin_token(stack)}",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=3000, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-2000:]
