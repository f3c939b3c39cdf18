"""Files that hold a secret (a password, a key, a token): readable by their owner only, from the first byte."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PRIVATE_MODE = 0o600


def write_private(path: Path, text: str, *, owner: str | None = None) -> None:
    """`text` into `path`, mode 0600 (and owned by the OS user `owner`, when running as root).

    Written whole under another name, then renamed: a reader never sees half a file, and the file is
    never readable by others, not even between its creation and a chmod.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: mode 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        if owner is not None and os.geteuid() == 0:
            shutil.chown(draft, owner, owner)
        os.replace(draft, path)
    except BaseException:
        Path(draft).unlink(missing_ok=True)
        raise
