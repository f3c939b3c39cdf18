"""One log format for every process."""

from __future__ import annotations

import logging

from confbook_common.settings import ConfigError, Env


def configure_logging(process: str, env: Env | None = None) -> None:
    level_name = (env or Env()).text("LOG_LEVEL", "INFO").upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level_name!r}")
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s {process}[%(process)d] %(name)s: %(message)s")
    # pika logs each failed connection attempt as several ERRORs with a traceback; the
    # workers already log one line per failure and retry, so keep only pika's worst.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
