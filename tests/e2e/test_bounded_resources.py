"""No client can pin a service or the gateway: idle streams, too many streams, slow and idle HTTP connections
are refused or ended within their bounds while bookings go on (docs/adr/0011)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.e2e.conftest import (
    E2E_MAX_STREAMS,
    E2E_REQUEST_READ_TIMEOUT_SECONDS,
    E2E_STREAM_IDLE_SECONDS,
    E2E_STREAM_MAX_SECONDS,
)

# What the server may take beyond a bound to act on it, on two busy CPUs.
SLACK_SECONDS = 3.0
# Many connections, so that every worker process of every replica gets more idle streams than it
# once had threads (16).
IDLE_CONNECTIONS = 32
STREAMS_PER_CONNECTION = 4


def separate_connection(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


async def ending(call: Any, started: float) -> tuple[grpc.StatusCode, float, int]:
    """How a stream ended (its status, when, after how many messages), having sent nothing."""
    messages = 0
    try:
        async for _ in call:
            messages += 1
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        code = error.code()
    return code, time.monotonic() - started, messages


async def book_meanwhile(book: Callable[[], float]) -> list[float]:
    return [await asyncio.to_thread(book) for _ in range(10)]


def test_idle_streams_neither_starve_bookings_nor_outlive_their_bounds(stack, api):
    conference = api.create_conference(slots=20)

    def book() -> float:
        started = time.monotonic()
        api.book(conference, api.create_user())
        return time.monotonic() - started

    async def scenario() -> tuple[list[Any], list[Any], list[float]]:
        channels = [separate_connection(stack.grpc_target("booking")) for _ in range(IDLE_CONNECTIONS)]
        started = time.monotonic()
        reflections, watches = [], []
        for channel in channels:
            for _ in range(STREAMS_PER_CONNECTION // 2):
                reflections.append(reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo())
                watches.append(health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest()))
        await asyncio.sleep(0.5)  # every stream open on the servers
        took = await book_meanwhile(book)
        ended = await asyncio.gather(*(ending(call, started) for call in reflections + watches))
        for channel in channels:
            await channel.close(grace=None)
        return ended[: len(reflections)], ended[len(reflections) :], took

    reflections, watches, took = asyncio.run(scenario())

    assert max(took) < 2.0, took
    for code, after, messages in reflections:
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED and messages == 0
        assert E2E_STREAM_IDLE_SECONDS - 0.5 <= after <= E2E_STREAM_IDLE_SECONDS + SLACK_SECONDS, after
    for code, after, messages in watches:
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED and messages >= 1  # SERVING, then nothing changed
        assert E2E_STREAM_MAX_SECONDS - 0.5 <= after <= E2E_STREAM_MAX_SECONDS + SLACK_SECONDS, after


def test_streams_past_the_limit_are_refused_while_calls_still_pass(stack):
    list_services = reflection_pb2.ServerReflectionRequest(list_services="")

    async def opened(stub: reflection_pb2_grpc.ServerReflectionStub) -> Any:
        call = stub.ServerReflectionInfo()
        await call.write(list_services)
        await call.read()  # answered, so the server counts it open
        return call

    async def scenario() -> tuple[Any, ...]:
        # One connection reaches one worker process, whose limit it is.
        async with separate_connection(stack.grpc_target("booking")) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            held = await asyncio.gather(*(opened(stub) for _ in range(E2E_MAX_STREAMS)))
            # Nothing is written: the server refuses on the stream's headers alone, and a write racing
            # that refusal makes an asyncio client report INTERNAL instead of the server's status
            # (grpc/grpc#36066).
            refused_code = await asyncio.wait_for(stub.ServerReflectionInfo().code(), timeout=10)
            check = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            for call in held:
                call.cancel()
            again = await opened_once_freed(stub)
            again.cancel()
            return refused_code, check.status

    async def opened_once_freed(stub: reflection_pb2_grpc.ServerReflectionStub) -> Any:
        # The server frees a canceled stream's place when it has seen the cancel: soon, not at once.
        deadline = time.monotonic() + 5
        while True:
            try:
                return await opened(stub)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    refused_code, status = asyncio.run(scenario())

    assert refused_code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status == health_pb2.HealthCheckResponse.SERVING


def gateway_socket(stack) -> socket.socket:
    host, port = stack.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def closed_after(sock: socket.socket, started: float) -> tuple[float, bytes]:
    """Seconds from `started` until the gateway closed the connection, and whatever it sent first."""
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return time.monotonic() - started, received


def test_slow_and_idle_connections_are_closed_within_the_bound_while_requests_pass(stack, http):
    started = time.monotonic()
    idle = gateway_socket(stack)
    slow = gateway_socket(stack)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.3):  # one byte of an endless header every 0.3 s
            try:
                slow.send(b"a")
            except OSError:
                return

    trickler = threading.Thread(target=trickle)
    trickler.start()
    answers = []
    while time.monotonic() - started < E2E_REQUEST_READ_TIMEOUT_SECONDS + 0.5:
        answers.append(http.get("/healthz").status_code)
        time.sleep(0.1)
    idle_closed, idle_sent = closed_after(idle, started)
    slow_closed, slow_sent = closed_after(slow, started)
    stop.set()
    trickler.join()
    idle.close()
    slow.close()

    assert answers and set(answers) == {200}, answers
    bound = E2E_REQUEST_READ_TIMEOUT_SECONDS
    assert bound - 0.5 <= idle_closed <= bound + SLACK_SECONDS and idle_sent == b"", (idle_closed, idle_sent)
    assert bound - 0.5 <= slow_closed <= bound + SLACK_SECONDS and slow_sent == b"", (slow_closed, slow_sent)


def test_a_request_sent_slowly_within_the_bound_is_answered(stack):
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"
    with gateway_socket(stack) as sock:
        for start in range(0, len(request), 8):
            sock.sendall(request[start : start + 8])
            time.sleep(E2E_REQUEST_READ_TIMEOUT_SECONDS / 2 / (len(request) / 8))
        _, answer = closed_after(sock, time.monotonic())
    assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_oversized_headers_are_refused_with_431(stack):
    with gateway_socket(stack) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Big: ")
        # In pieces, and none once the gateway answered: what arrives after its answer would make its close a
        # reset, which discards the answer before it is read.
        sock.settimeout(0.2)
        answer = b""
        for _ in range(8):
            sock.sendall(b"a" * 4096)
            try:
                answer = sock.recv(4096)
                break
            except TimeoutError:
                continue
        sock.settimeout(5)
        answer += closed_after(sock, time.monotonic())[1]
    assert answer.startswith(b"HTTP/1.1 431 "), answer
