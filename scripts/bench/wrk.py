"""Driving the HTTP API with wrk: a Lua script per run that hands out the work and counts non-2xx answers,
and wrk's output read back into figures."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from scripts.bench.api import BenchError
from scripts.bench.report import PERCENTILES, Rate
from scripts.private_files import write_private

WRK = "/usr/bin/wrk"
# Far above any latency of a working stack; a request this slow counts as an error.
TIMEOUT_SECONDS = 10
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"
# Names go into the script as Lua string literals; these characters need no escaping there.
_PLAIN = re.compile(r"^[A-Za-z0-9 /]*$")
_PATH = re.compile(r"^[A-Za-z0-9 /._+-]*$")
_TOKEN = re.compile(r"^[A-Za-z0-9._-]+$")  # a JWT: three base64url parts


@dataclass(frozen=True)
class Load:
    connections: int
    seconds: int
    threads: int
    # After each answer a connection waits this long before its next request; 0 is full load.
    pause_seconds: float = 0.0

    def paced(self, rate: float) -> Load:
        """Half of `rate`: each connection waits connections / (rate / 2) seconds between requests. The time a
        request itself takes is not subtracted, so the rate reached is a little lower."""
        return replace(self, pause_seconds=self.connections / (rate / 2))

    def describe(self) -> str:
        load = f"{self.connections} connections, {self.seconds} s"
        return load if not self.pause_seconds else f"{load}, {self.pause_seconds * 1000:.0f} ms pauses"


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    per_second: float
    latency: dict[int, float]  # percentile -> seconds
    socket_errors: int
    non_2xx: int  # counted by the script
    exhausted: int  # requests sent after a thread ran out of users: each is also a non-2xx
    first_error: str

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    def rate(self, label: str, load: Load) -> Rate:
        return Rate(label, load.describe(), self.per_second, self.latency, self.errors)

    def error_summary(self) -> str:
        parts = [f"{self.non_2xx} non-2xx", f"{self.socket_errors} socket errors"]
        if self.exhausted:
            parts.append(f"{self.exhausted} without a user left: raise --users")
        if self.first_error:
            parts.append(f"first non-2xx: {self.first_error}")
        return ", ".join(parts)


# --- the scripts ----------------------------------------------------------------------------------------------

# Each thread has a Lua state of its own; setup() runs in the main state once per thread and gives it an index,
# init() then runs in the thread's state (before any clock starts) and calls the body's prepare() if it has one,
# and done() adds up what the threads counted.
_COUNTING = """\
local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  failed = 0
  exhausted = 0
  sample = ""
  used = 0
  if prepare then prepare() end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    failed = failed + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 200) end
  end
end

function done(summary, latency, requests)
  local failed_total, exhausted_total, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    failed_total = failed_total + thread:get("failed")
    exhausted_total = exhausted_total + thread:get("exhausted")
    if first == "" then first = thread:get("sample") end
  end
  io.write(string.format("bench non-2xx: %d\\n", failed_total))
  io.write(string.format("bench exhausted: %d\\n", exhausted_total))
  io.write("bench first non-2xx: " .. (string.gsub(first, "%s+", " ")) .. "\\n")
end
"""

_BOOK = """\
local prefix, first, per_thread = {prefix}, {first}, {per_thread}
local conferences = {{{conferences}}}
local token_file = {token_file}
local headers = {{["Content-Type"] = "application/json"}}
local tokens = {{}}

-- Line k of the token file is user prefix(first + k)'s token: this thread's share, read before the clock starts.
function prepare()
  local skip, line_number = index * per_thread, 0
  for line in io.lines(token_file) do
    if line_number >= skip + per_thread then break end
    if line_number >= skip then tokens[#tokens + 1] = line end
    line_number = line_number + 1
  end
end

-- Thread i books as users prefix(first + i * per_thread) onwards, so no two requests share a user; each request
-- carries its user's own token.
function request()
  local n = first + index * per_thread + used
  local user = prefix .. n
  local token = tokens[used + 1]
  if used >= per_thread then
    -- Out of users: a name nobody has, under the thread's first token, refused, so that the shortage shows as
    -- errors rather than as reuse (and not as failed authentications, which the gateway would count).
    exhausted = exhausted + 1
    user = prefix .. "x" .. index .. "x" .. used
    token = tokens[1]
  end
  used = used + 1
  local name = conferences[(n % #conferences) + 1]
  headers["Authorization"] = "Bearer " .. token
  return wrk.format("POST", "/book", headers, '{{"name": "' .. name .. '", "user_id": "' .. user .. '"}}')
end
"""

_GET = """\
local path = {path}
local headers = {{{authorization}}}

function request()
  return wrk.format("GET", path, headers)
end
"""

# wrk calls delay() before every request, a connection's first included. Those first calls (one per connection of
# the thread) are staggered over one pause, so that the connections do not all fire together ever after.
_PAUSE = """\
local pause, connections, thread_count = {milliseconds}, {connections}, {threads}
local per_thread = math.floor(connections / thread_count)
local starts = 0

function delay()
  if starts < per_thread then
    starts = starts + 1
    return math.floor(pause * ((starts - 1) * thread_count + index) / connections)
  end
  return pause
end
"""


def book_script(conferences: list[str], prefix: str, first: int, users: int, threads: int, token_file: Path) -> str:
    """POST /book round the conferences, each request as a user of its own: prefix<first> to prefix<first+users-1>,
    shared out between the threads in disjoint ranges, each with its own token: line k of `token_file` is the
    token of prefix<first+k>."""
    names = ", ".join(_lua_string(name) for name in conferences)
    per_thread = users // threads
    return _BOOK.format(
        prefix=_lua_string(prefix),
        first=first,
        per_thread=per_thread,
        conferences=names,
        token_file=_lua_path(token_file),
    )


def get_script(path: str, token: str | None = None) -> str:
    """GET `path` over and over, with `token` as its bearer token if given."""
    authorization = f'["Authorization"] = {_lua_token(token)}' if token else ""
    return _GET.format(path=_lua_string(path), authorization=authorization)


def _lua_string(text: str) -> str:
    if not _PLAIN.match(text):
        raise ValueError(f"{text!r} would need escaping in Lua")
    return json.dumps(text)


def _lua_path(path: Path) -> str:
    if not _PATH.match(str(path)):
        raise ValueError(f"{str(path)!r} would need escaping in Lua")
    return json.dumps(str(path))


def _lua_token(token: str) -> str:
    if not _TOKEN.match(token):
        raise ValueError("a token that is not a JWT would need escaping in Lua")
    return json.dumps(f"Bearer {token}")


def _full_script(body: str, load: Load) -> str:
    pause = ""
    if load.pause_seconds:
        milliseconds = round(load.pause_seconds * 1000)
        pause = _PAUSE.format(milliseconds=milliseconds, connections=load.connections, threads=load.threads)
    return "\n".join(["-- Written by scripts/bench/wrk.py for one run.", _COUNTING, body, pause])


# --- running wrk --------------------------------------------------------------------------------------------------


async def run(url: str, load: Load, body: str, script_path: Path) -> Result:
    """One wrk run with the script body (request() and what it needs), counting, and pacing when asked."""
    write_private(script_path, _full_script(body, load))  # a script may carry a bearer token
    command = [
        WRK,
        f"--threads={load.threads}",
        f"--connections={load.connections}",
        f"--duration={load.seconds}s",
        f"--timeout={TIMEOUT_SECONDS}s",
        "--latency",
        f"--script={script_path}",
        url,
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output, _ = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled: Ctrl-C, SIGTERM or a failure elsewhere
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"wrk exited with {process.returncode}:\n{text}")
    return parse(text)


def parse(output: str) -> Result:
    """wrk's --latency report, plus the lines the script's done() writes."""
    total = re.search(rf"^\s*(\d+) requests in {_TIME}", output, re.MULTILINE)
    per_second = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    non_2xx = re.search(r"^bench non-2xx: (\d+)", output, re.MULTILINE)
    if not (total and per_second and non_2xx):
        raise BenchError(f"cannot read wrk's output:\n{output}")
    # With no answer at all wrk still prints percentiles, as zeros; they mean nothing.
    latency = {
        int(match[1]): _seconds(match[2], match[3])
        for match in re.finditer(rf"^\s*({'|'.join(map(str, PERCENTILES))})%\s+{_TIME}\s*$", output, re.MULTILINE)
        if int(total[1])
    }
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    exhausted = re.search(r"^bench exhausted: (\d+)", output, re.MULTILINE)
    first_error = re.search(r"^bench first non-2xx: (.*)$", output, re.MULTILINE)
    return Result(
        requests=int(total[1]),
        seconds=_seconds(total[2], total[3]),
        per_second=float(per_second[1]),
        latency=latency,
        socket_errors=sum(int(count) for count in sockets.groups()) if sockets else 0,
        non_2xx=int(non_2xx[1]),
        exhausted=int(exhausted[1]) if exhausted else 0,
        first_error=first_error[1].strip() if first_error else "",
    )


def _seconds(number: str, unit: str) -> float:
    return float(number) * _UNITS[unit]


async def version() -> str:
    """wrk prints its version in its usage text."""
    process = await asyncio.create_subprocess_exec(WRK, "--version", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = await process.communicate()
    first_line = output.decode(errors="replace").splitlines()[:1]
    return first_line[0].split(" Copyright")[0].strip() if first_line else "wrk"
