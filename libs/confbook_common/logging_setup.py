"""One log format for every process."""

from __future__ import annotations

import logging
import os


def configure_logging(process: str) -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s",
    )
    # pika logs every connection attempt at INFO; keep its warnings only.
    logging.getLogger("pika").setLevel(max(logging.WARNING, logging.getLevelName(level)))
