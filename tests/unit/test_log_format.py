"""Log lines: one JSON object each, with the request and trace ids; text for a terminal."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from confbook_common import logging_setup, request_id
from confbook_common.logging_setup import JsonFormatter, TextFormatter, log_format
from confbook_common.settings import ConfigError, Env

pytestmark = pytest.mark.unit


def _record(message: str, *args: object, exc_info: bool = False, **extra: object) -> logging.LogRecord:
    record = logging.getLogger("confbook.test").makeRecord(
        "confbook.test", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )
    if exc_info:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            record.exc_info = sys.exc_info()
    return record


def test_a_json_line_carries_the_message_level_process_and_request_id() -> None:
    token = request_id.current.set("req-42")
    try:
        line = JsonFormatter("booking").format(_record("seat %s of %d", "A", 3))
    finally:
        request_id.current.reset(token)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "seat A of 3"
    assert entry["level"] == "WARNING"
    assert entry["process"] == "booking"
    assert entry["request_id"] == "req-42"
    assert entry["time"].endswith("Z")


def test_a_json_line_carries_the_trace_ids_when_there_is_a_trace() -> None:
    logging_setup.trace_ids[0] = lambda: ("ab" * 16, "cd" * 8)
    try:
        entry = json.loads(JsonFormatter("gateway").format(_record("hello")))
    finally:
        logging_setup.trace_ids[0] = logging_setup._no_trace
    assert entry["trace_id"] == "ab" * 16
    assert entry["span_id"] == "cd" * 8


def test_outside_a_request_and_a_trace_there_are_no_ids() -> None:
    entry = json.loads(JsonFormatter("gateway").format(_record("hello")))
    assert "request_id" not in entry
    assert "trace_id" not in entry


def test_an_exception_stays_on_the_one_line_and_extras_are_kept() -> None:
    line = JsonFormatter("waitlist").format(_record("failed", exc_info=True, queue="q1", when=object()))
    assert len(line.splitlines()) == 1
    entry = json.loads(line)
    assert "RuntimeError: boom" in entry["exception"]
    assert entry["queue"] == "q1"
    assert entry["when"].startswith("<object")


def test_text_names_the_request_for_a_person() -> None:
    token = request_id.current.set("req-7")
    try:
        line = TextFormatter("booking").format(_record("hello"))
    finally:
        request_id.current.reset(token)
    assert "booking[" in line
    assert line.endswith("hello [request_id=req-7]")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_format_is_text_at_a_terminal_json_elsewhere_unless_log_format_says() -> None:
    assert log_format(Env({}), _Terminal()) == "text"
    assert log_format(Env({}), io.StringIO()) == "json"
    assert log_format(Env({"LOG_FORMAT": "json"}), _Terminal()) == "json"
    assert log_format(Env({"LOG_FORMAT": "TEXT"}), io.StringIO()) == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        log_format(Env({"LOG_FORMAT": "xml"}))
