"""The trio runner of pure operations and its stream, over a recording transport."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from protomata._core._ops import Call, Close, Operation, Receive, Send, TimeoutKind
from protomata.trio import HIGH_WATER, Stream, Timeouts, run

from ._util import trio_test


class Recorder:
    """A transport that records what is sent and answers reads from a script."""

    def __init__(self, replies: list[bytes] | None = None, stall: bool = False) -> None:
        self.sent: list[bytes] = []
        self.replies = replies or []
        self.stall = stall
        self.closed = False

    async def send_all(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.stall:
            await trio.sleep_forever()
        return self.replies.pop(0) if self.replies else b""

    async def aclose(self) -> None:
        self.closed = True


def stream_over(transport: Recorder, timeouts: Timeouts | None = None) -> Stream:
    return Stream(transport, timeouts)  # type: ignore[arg-type]


@trio_test
async def test_sends_are_coalesced_until_the_operation_waits() -> None:
    def op() -> Operation[bytes]:
        yield Send(b"a")
        yield Send([b"b", b"c"])
        reply = yield Receive()
        yield Send(b"d")
        return reply  # type: ignore[no-any-return]

    transport = Recorder([b"reply"])
    assert await run(op(), stream_over(transport)) == b"reply"
    assert transport.sent == [b"abc", b"d"]


@trio_test
async def test_large_sends_leave_at_the_high_water_mark() -> None:
    transport = Recorder()

    def probe(call: Call) -> int:
        return len(transport.sent)

    def op() -> Operation[tuple[int, int]]:
        yield Send(b"x" * 10)
        small = yield Call("probe")
        yield Send(b"y" * HIGH_WATER)
        large = yield Call("probe")
        return small, large

    assert await run(op(), stream_over(transport), probe) == (0, 1)
    assert transport.sent == [b"x" * 10 + b"y" * HIGH_WATER]


@trio_test
async def test_timeouts_and_call_errors_are_thrown_into_the_operation() -> None:
    def op() -> Operation[list[str]]:
        seen = []
        try:
            yield Receive(timeout=TimeoutKind.HEAD)
        except TimeoutError:
            seen.append("timeout")
        try:
            yield Call("fail")
        except ValueError as exc:
            seen.append(str(exc))
        seen.append((yield Call("async")))
        yield Close()
        return seen

    async def answer(value: str) -> str:
        await trio.sleep(0)
        return value

    def on_call(call: Call) -> Any:
        if call.name == "fail":
            raise ValueError("handler failed")
        return answer("awaited")

    transport = Recorder(stall=True)
    stream = stream_over(transport, Timeouts(5.0, head=0.05))
    assert await run(op(), stream, on_call) == ["timeout", "handler failed", "awaited"]
    assert transport.closed


@trio_test
async def test_cancellation_closes_the_operation() -> None:
    finished = []

    def op() -> Operation[None]:
        try:
            yield Receive()
        finally:
            finished.append(True)

    with trio.move_on_after(0.05):
        await run(op(), stream_over(Recorder(stall=True)))
    assert finished == [True]


@trio_test
async def test_unknown_request_and_missing_call_handler() -> None:
    def op() -> Operation[list[str]]:
        errors = []
        try:
            yield "not a request"  # type: ignore[misc]
        except TypeError:
            errors.append("type")
        try:
            yield Call("x")
        except RuntimeError:
            errors.append("no handler")
        return errors

    assert await run(op(), stream_over(Recorder())) == ["type", "no handler"]


@trio_test
async def test_start_tls_without_context_fails() -> None:
    with pytest.raises(RuntimeError, match="no TLS context"):
        await stream_over(Recorder()).start_tls()
