"""No file the stack writes lets anyone but its owner read a secret: passwords (in URLs and configuration),
private keys, bearer tokens and the generated secrets."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from tests.conftest import ROOT

RUN_DIR = ROOT / ".run"
# What a secret looks like in a file, whatever wrote it.
SECRET_PATTERNS = [
    re.compile(rb"[a-z][a-z0-9+.-]*://[^/\s:@\"']+:[^@\s\"'/]+@"),  # a URL with a password
    re.compile(rb"default_pass|password\s*[=:]\s*\S", re.IGNORECASE),
    re.compile(rb"\"d\"\s*:\s*\""),  # the private part of a JSON Web Key
    re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),  # a JWT: a bearer token
]
LARGEST_READ = 64 * 1024 * 1024


def readable_by_others(path: Path) -> bool:
    """Group or others may read the file, and reach it: no folder on its way is closed to them."""
    if os.lstat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH) == 0:
        return False
    folder = path.parent
    while folder != RUN_DIR.parent:
        if os.stat(folder).st_mode & (stat.S_IXGRP | stat.S_IXOTH) == 0:
            return False
        folder = folder.parent
    return True


def exposed_secrets(generated: list[bytes]) -> list[str]:
    found = []
    for folder, _, files in os.walk(RUN_DIR):
        for name in files:
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file() or not readable_by_others(path):
                continue
            if path.stat().st_size > LARGEST_READ:
                found.append(f"{path} (too large to check)")
                continue
            content = path.read_bytes()
            if any(pattern.search(content) for pattern in SECRET_PATTERNS) or any(s in content for s in generated):
                found.append(f"{path} ({stat.filemode(path.stat().st_mode)})")
    return found


def test_no_file_under_run_lets_others_read_a_secret(stack):
    # The stack is up: every file it writes has been written.
    generated = [stack.promotion_token.encode()] if stack.promotion_token else []
    assert exposed_secrets(generated) == []


def test_the_check_finds_a_secret_left_readable(stack, tmp_path):
    leak = RUN_DIR / "test" / "logs" / "leaked-for-the-check.conf"
    leak.write_text("AMQP_URL=amqp://confbook:hunter2@127.0.0.1:5672/\n")
    try:
        leak.chmod(0o644)
        assert any("leaked-for-the-check" in found for found in exposed_secrets([]))
        leak.chmod(0o600)
        assert not any("leaked-for-the-check" in found for found in exposed_secrets([]))
    finally:
        leak.unlink()
