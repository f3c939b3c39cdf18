"""Requests as raw bytes, below what an HTTP client library lets one send: every answer, even one the
HTTP parser gives before the app sees the request, is the documented JSON error with its status."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scripts.sandbox import Stack
from tests.e2e.conftest import admin_token

BODY_LIMIT = 64 * 1024
MESSAGE_MAX_LENGTH = 1200


def exchange(stack: Stack, request: bytes, *pieces: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` (then each of `pieces` on its own, until the gateway answers) on a new connection;
    the status, headers (lower-cased names) and body of the answer."""
    host, port = stack.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        sock.settimeout(0.2)
        for piece in pieces:
            sock.sendall(piece)
            try:
                received = sock.recv(65536)
                break
            except TimeoutError:
                continue
        sock.settimeout(10)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    head, _, rest = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    # The first answer only: what a broken request left over may have been answered as a second request.
    return int(status_line.split(" ")[1]), headers, rest[: int(headers.get("content-length", len(rest)))]


def assert_json_error(
    answer: tuple[int, dict[str, str], bytes], status: int, code: str | None = None
) -> dict[str, Any]:
    got, headers, body = answer
    assert got == status, answer
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"}, error
    assert code is None or error["code"] == code, error
    assert len(error["message"]) <= MESSAGE_MAX_LENGTH
    assert headers["x-request-id"]
    return dict(error)


def chunked(body: bytes, piece: int = 4096) -> bytes:
    pieces = [body[start : start + piece] for start in range(0, len(body), piece)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in pieces) + b"0\r\n\r\n"


def post(path: str, headers: bytes, body: bytes) -> bytes:
    return b"POST " + path.encode() + b" HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n" + headers + b"\r\n" + body


def test_a_chunked_body_over_the_limit_is_a_413_as_with_a_content_length(stack):
    body = json.dumps({"name": "x" * (BODY_LIMIT + 6000)}).encode()
    by_length = post("/conference", b"Content-Length: %d\r\n" % len(body), body)
    by_chunks = post("/conference", b"Transfer-Encoding: chunked\r\n", chunked(body))
    assert_json_error(exchange(stack, by_length), 413, "BODY_TOO_LARGE")
    assert_json_error(exchange(stack, by_chunks), 413, "BODY_TOO_LARGE")
    # Far past the limit, in small pieces: read and dropped up to a bound, still a 413.
    huge = post("/user", b"Transfer-Encoding: chunked\r\n", chunked(b" " * (2 * 1024 * 1024), piece=512))
    assert_json_error(exchange(stack, huge), 413, "BODY_TOO_LARGE")


def test_a_chunked_body_within_the_limit_is_read_as_any_other(stack):
    body = json.dumps({"user_id": "chunkedwire", "topics": ["Python"]}).encode()
    token = f"Authorization: Bearer {admin_token(stack)}\r\n".encode()
    status, _, answer = exchange(stack, post("/user", token + b"Transfer-Encoding: chunked\r\n", chunked(body, 7)))
    assert (status, json.loads(answer)["user_id"]) in {(201, "chunkedwire")}, answer


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        # A method HTTP does not know: 501, as RFC 9110 has it.
        (b"FOO /conference HTTP/1.1\r\nHost: gateway\r\n\r\n", 501, "METHOD_NOT_IMPLEMENTED"),
        (b"BREW /conferences HTTP/1.1\r\nHost: gateway\r\n\r\n", 501, "METHOD_NOT_IMPLEMENTED"),
        # A method HTTP knows that no route has: 405 (Allow checked below).
        (b"PROPFIND /conferences HTTP/1.1\r\nHost: gateway\r\n\r\n", 405, "METHOD_NOT_ALLOWED"),
        # Malformed: a NUL in a header, both framings at once, a header without a colon,
        # a chunk size that is no number, a line folded the obsolete way, a version that is not HTTP/1.x.
        (b"GET /booking/1/events HTTP/1.1\r\nHost: gateway\r\nLast-Event-ID: a\x00b\r\n\r\n", 400, "MALFORMED_REQUEST"),
        (
            b"POST /user HTTP/1.1\r\nHost: gateway\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "MALFORMED_REQUEST",
        ),
        (b"GET /conferences HTTP/1.1\r\nHost gateway\r\n\r\n", 400, "MALFORMED_REQUEST"),
        (b"POST /user HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400, None),
        (b"GET /conferences HTTP/1.1\r\nHost: gateway\r\nX-A: 1\r\n folded\r\n\r\n", 400, "MALFORMED_REQUEST"),
        (b"GET /conferences HTTP/9.9\r\nHost: gateway\r\n\r\n", 400, "MALFORMED_REQUEST"),
        (b"GET /conf\x01rences HTTP/1.1\r\nHost: gateway\r\n\r\n", 400, "MALFORMED_REQUEST"),
    ],
)
def test_what_the_http_parser_refuses_is_the_documented_json_error(stack, request_bytes, status, code):
    answer = assert_json_error(exchange(stack, request_bytes), status, code)
    if status == 405:
        assert exchange(stack, request_bytes)[1]["allow"]
    assert answer["message"]


def test_oversized_headers_are_a_json_431(stack):
    # In pieces, as a client that keeps sending would: the parser holds an unfinished header in memory.
    request = b"GET /conferences HTTP/1.1\r\nHost: gateway\r\nX-Big: "
    assert_json_error(exchange(stack, request, *[b"a" * 4096] * 8), 431, "HEADERS_TOO_LARGE")


# Bytes that break a request somewhere: the answer is a 4xx (or 501) with the JSON body, never a 5xx or text.
_breakers = st.sampled_from([b"\x00", b"\r", b"\n", b" ", b"\x7f", b":", b"\xff", b"\r\n\r\n", b"\t", b"\x1b"])


@given(position=st.integers(0, 60), breaker=_breakers)
def test_a_request_broken_anywhere_is_answered_in_json(stack, position, breaker):
    request = b"GET /conference/NoSuchWire HTTP/1.1\r\nHost: gateway\r\nLast-Event-ID: abc\r\nConnection: close\r\n\r\n"
    position = min(position, len(request) - 4)
    status, headers, body = exchange(stack, request[:position] + breaker + request[position:])
    assert status < 500 or status == 501, (status, body[:200])
    assert headers["content-type"].startswith("application/json"), (status, headers, body[:200])
    if status >= 400:
        assert set(json.loads(body)) == {"error"}
