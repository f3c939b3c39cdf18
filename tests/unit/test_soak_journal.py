"""How the soak judges each answer by itself: the contract's JSON errors with 4xx or 503 pass, anything else is a
violation, and so is a request left unanswered while the gateway was up."""

from __future__ import annotations

import httpx
import pytest

from scripts.soak.faults import FaultLog, Injected
from scripts.soak.journal import Journal

ERROR = {"error": {"code": "ALREADY_BOOKED", "message": "already booked"}}


def journal() -> Journal:
    return Journal(FaultLog())


@pytest.mark.parametrize(("status", "body"), [(409, ERROR), (404, ERROR), (503, ERROR)])
def test_a_json_error_with_a_4xx_or_503_is_counted_by_kind(status, body):
    seen = journal()
    assert seen.answer("book", httpx.Response(status, json=body)) is None
    assert seen.errors == {f"{status} ALREADY_BOOKED": 1}
    assert seen.violations == []


def test_a_500_is_a_violation_even_with_the_error_body():
    seen = journal()
    seen.answer("book", httpx.Response(500, json={"error": {"code": "INTERNAL_ERROR", "message": "internal"}}))
    assert len(seen.violations) == 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(409, text="<html>conflict</html>"),
        httpx.Response(409, json={"detail": "conflict"}),
        httpx.Response(409, json={"error": {"code": "CONFLICT", "message": ""}}),
        httpx.Response(201, text="created"),
    ],
)
def test_an_answer_without_the_contracts_body_is_a_violation(response):
    seen = journal()
    seen.answer("book", response)
    assert len(seen.violations) == 1


def test_a_2xx_answer_is_counted_with_its_status():
    seen = journal()
    assert seen.answer("book", httpx.Response(201, json={"status": "WAITLISTED"})) == {"status": "WAITLISTED"}
    assert seen.answers == {"book WAITLISTED": 1}


def test_no_answer_is_fine_only_while_the_gateway_is_down():
    seen = journal()
    seen.faults.injected.append(Injected("SIGKILL gateway", "gateway", started=100.0, recovered=103.0))
    seen.faults.injected.append(Injected("SIGKILL booking", "booking", started=200.0, recovered=203.0))
    refused = httpx.ConnectError("refused")
    seen.no_answer("book", refused, started=99.5, ended=100.1)  # in flight when it was killed
    seen.no_answer("book", refused, started=104.0, ended=104.0)  # a stale connection, just after
    seen.no_answer("book", refused, started=201.0, ended=201.0)  # the gateway was up
    seen.judge_transport_failures()
    assert seen.violations == ["book: no HTTP answer (ConnectError) while the gateway was up"]


def test_a_hang_is_a_violation():
    seen = journal()
    seen.hang("cancel", 15.0)
    assert seen.violations == ["cancel: no answer within 15 s"]
