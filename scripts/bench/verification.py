"""What checking an access token costs: the real TokenVerifier, in this process, against the stack's issuer and
its real key, a token never seen and one seen before; and over HTTP, the floor with and without the token check."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence

from confbook_common.auth import TokenRules, TokenVerifier
from scripts.bench.options import Options
from scripts.bench.report import Report, percent, progress, ratio
from scripts.bench.scenarios import Reads
from scripts.bench.tokens import Signer
from scripts.bench.wrk import Result
from scripts.sandbox import Stack

ITERATIONS = 3000
QUICK_ITERATIONS = 1000


def bench_verification(stack: Stack, signer: Signer, reads: Reads, options: Options, report: Report) -> None:
    iterations = QUICK_ITERATIONS if options.quick else ITERATIONS
    progress(f"checking {iterations:,} tokens in process, each never seen and then seen")
    verifier = TokenVerifier(TokenRules(issuer=stack.issuer_url, audience=stack.audience))
    signed = signer.tokens([f"verify{n}" for n in range(iterations)])
    verifier.verify(signer.token("verify-first"))  # fetches the issuer's keys, as a process does once
    never_seen = _timed(verifier.verify, signed)
    seen = _timed(verifier.verify, signed)
    report.add(
        "## Checking a token",
        "",
        f"In this process: the gateway's and the services' `TokenVerifier` (PyJWT), with the stack's issuer and "
        f"the key it published (RS256, 2048 bits), on {iterations:,} tokens of distinct subjects as its /token signs "
        "them. First each one once, never seen before: the signature and every claim checked and the caller kept "
        "under the token's SHA-256; then each once more, found among those kept. Each call timed on its own "
        "(`perf_counter_ns`, which adds about 0.1 µs).",
        "",
        "| microseconds a call | n | median | mean | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
        _row("a token never seen: signature and claims checked", never_seen),
        _row("a token seen before: its hash looked up", seen),
        "",
        f"Over HTTP, {options.connections} connections (as (c)): every request of (a) and (b) shows a token new to "
        "the gateway and to the booking service, so each checks its signature; every request of (c) and (d) shows "
        "the same one again. "
        "The framework floor without a token, and with the product's token check (one token, seen before):",
        "",
        "| run | per second | p50 ms | p99 ms | of the floor |",
        "|---|---:|---:|---:|---:|",
        _http_row("framework floor, no token (the ceiling of (c))", reads.floor, reads.floor.per_second),
        _http_row("framework floor, the token checked", reads.floor_checking_tokens, reads.floor.per_second),
        _http_row("(c) GET /booking/{id}, the token checked twice", reads.product, reads.floor.per_second),
        "",
    )


def _timed(call: Callable[[str], object], tokens: Sequence[str]) -> list[float]:
    samples = []
    for token in tokens:
        started = time.perf_counter_ns()
        call(token)
        samples.append((time.perf_counter_ns() - started) / 1e9)
    return samples


def _row(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[math.ceil(0.99 * len(ordered)) - 1]  # nearest rank
    figures = [statistics.median(ordered), statistics.fmean(ordered), p99, ordered[-1]]
    return f"| {label} | {len(ordered):,} | " + " | ".join(f"{seconds * 1e6:,.1f}" for seconds in figures) + " |"


def _http_row(label: str, run: Result, floor_per_second: float) -> str:
    p50, p99 = (f"{run.latency[p] * 1000:.1f}" if p in run.latency else "" for p in (50, 99))
    share = percent(ratio(run.per_second, floor_per_second))
    return f"| {label} | {run.per_second:,.0f} | {p50} | {p99} | {share} |"
