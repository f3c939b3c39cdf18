"""One log format for every process."""

from __future__ import annotations

import logging

from confbook_common.settings import ConfigError, Env


def configure_logging(process: str, env: Env | None = None) -> None:
    level_name = (env or Env()).text("LOG_LEVEL", "INFO").upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level_name!r}")
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s")
    # pika logs every connection attempt at INFO; keep its warnings only.
    logging.getLogger("pika").setLevel(max(logging.WARNING, level))
