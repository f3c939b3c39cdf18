"""What the clients saw: every answer counted by kind, what each acknowledged answer promises about the final
state, and every answer that breaks the contract by itself."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from scripts.soak.faults import FaultLog

# After a gateway restart, connections the clients still hold fail once more when next used.
GATEWAY_GRACE_SECONDS = 2.0
# Refusals of the caller that the soak never earns: every token it sends is valid and outlives the run, each
# request acts for its own user or is an organizer's, and the stack's bounds on writes are set out of its reach.
REFUSED_CALLER = {
    401: "a valid token refused",
    403: "a request refused to the one it is for",
    429: "a bound hit: the soak sets writes out of reach and never fails to authenticate",
}


@dataclass
class Booking:
    """A booking some client was told exists, and what it was told since about its state."""

    booking_id: int
    user_id: str
    conference: str
    status: str  # as last seen by its client
    position: int | None = None  # in line, as last seen
    must_be_canceled: bool = False  # a cancel was acknowledged, or it was seen CANCELED
    # It was last seen CONFIRMED and no cancel was tried since: nothing but a cancel ends a CONFIRMED booking.
    must_be_confirmed: bool = False


@dataclass(frozen=True)
class TransportFailure:
    """A request that got no HTTP answer at all (refused, reset); fine only while the gateway was down."""

    operation: str
    kind: str
    started: float
    ended: float


@dataclass
class Journal:
    faults: FaultLog
    answers: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    bookings: dict[int, Booking] = field(default_factory=dict)
    transport_failures: list[TransportFailure] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    issued: int = 0

    @property
    def succeeded(self) -> int:
        return sum(self.answers.values())

    def answer(self, operation: str, response: httpx.Response) -> Any | None:
        """The JSON body of a 2xx answer, or None after counting the error; a 5xx other than 503, a 401, 403 or
        429 (REFUSED_CALLER), or an error that is not the contract's JSON error body, is a violation."""
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = None
        if response.is_success:
            if body is None:
                self.violate(f"{operation}: {response.status_code} with a body that is not JSON")
                return None
            self.answers[f"{operation} {_outcome(body)}".strip()] += 1
            return body
        code = _error_code(body)
        if code is None:
            self.errors[f"{response.status_code} (not a JSON error body)"] += 1
            self.violate(f"{operation}: {response.status_code} without the JSON error body: {response.text[:200]!r}")
        else:
            self.errors[f"{response.status_code} {code}"] += 1
        if response.status_code >= 500 and response.status_code != 503:
            self.violate(f"{operation}: {response.status_code} {code}: {response.text[:200]!r}")
        elif response.status_code in REFUSED_CALLER:
            said = body["error"]["message"] if code is not None else response.text[:200]
            self.violate(f"{operation}: {response.status_code} {code}, {REFUSED_CALLER[response.status_code]}: {said}")
        return None

    def no_answer(self, operation: str, error: httpx.TransportError, started: float, ended: float) -> None:
        kind = type(error).__name__
        self.errors[f"no answer ({kind})"] += 1
        self.transport_failures.append(TransportFailure(operation, kind, started, ended))

    def hang(self, operation: str, timeout: float) -> None:
        self.errors["no answer within the call timeout"] += 1
        self.violate(f"{operation}: no answer within {timeout:.0f} s")

    def violate(self, what: str) -> None:
        self.violations.append(what)

    def judge_transport_failures(self) -> None:
        """Once the faults are over: a request left unanswered while the gateway ran breaks the contract."""
        outages = [(f.started, f.recovered) for f in self.faults.injected if f.program == "gateway"]
        for failure in self.transport_failures:
            if not any(
                failure.ended >= down and failure.started <= (up or failure.ended) + GATEWAY_GRACE_SECONDS
                for down, up in outages
            ):
                self.violate(f"{failure.operation}: no HTTP answer ({failure.kind}) while the gateway was up")


def _error_code(body: Any) -> str | None:
    """The code of the contract's error body {"error": {"code", "message"}}, or None if the body is not one."""
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return None
    error = body["error"]
    if set(error) != {"code", "message"} or not isinstance(error["code"], str) or not error["message"]:
        return None
    return error["code"]


def _outcome(body: Any) -> str:
    return str(body.get("status", "")) if isinstance(body, dict) else ""
