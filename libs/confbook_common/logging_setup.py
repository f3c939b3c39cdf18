"""One log format for every process: JSON lines for machines, or text for a person at a terminal."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from confbook_common import request_id
from confbook_common.settings import ConfigError, Env

LOG_FORMATS = ("json", "text")

# The current trace's ids as hex (trace id, span id), or None outside a trace; confbook_common.tracing
# installs the real lookup once tracing is on, so that logging needs no tracing import.
TraceIds = Callable[[], tuple[str, str] | None]
_no_trace: TraceIds = lambda: None  # noqa: E731
trace_ids: list[TraceIds] = [_no_trace]

# Attributes every LogRecord has; anything else was passed in `extra=` and goes into the JSON object.
# uvicorn's `color_message` repeats the message with terminal colours.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, process, logger, message, request and trace ids, exception."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        entry: dict[str, object] = {
            "time": moment.replace("+00:00", "Z"),
            "level": record.levelname,
            "process": self._process,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.current.get()
        if rid:
            entry["request_id"] = rid
        ids = trace_ids[0]()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # default=str: an `extra` value that JSON cannot hold is logged as its text, never lost.
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a terminal: the time, level, process and message, and the request id when there is one."""

    def __init__(self, process: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {process}[%(process)d] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = request_id.current.get()
        return f"{line} [request_id={rid}]" if rid else line


def log_format(env: Env, stream: object = None) -> str:
    """LOG_FORMAT if set; otherwise text when stderr is a terminal, else JSON."""
    chosen = env.text("LOG_FORMAT", "").lower()
    if not chosen:
        isatty = getattr(stream or sys.stderr, "isatty", None)
        return "text" if callable(isatty) and isatty() else "json"
    if chosen not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be json or text, got {chosen!r}")
    return chosen


def configure_logging(process: str, env: Env | None = None) -> None:
    env = env or Env()
    level_name = env.text("LOG_LEVEL", "INFO").upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level_name!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process) if log_format(env) == "json" else TextFormatter(process))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # pika logs each failed connection attempt as several ERRORs with a traceback; the
    # workers already log one line per failure and retry, so keep only pika's worst.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    # httpx logs every webhook delivery at INFO; the sender logs what goes wrong itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
