"""Helpers for the trio adapter tests: run async tests with trio.run, raw sockets."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from protomata.trio import ResponseSpec, ServerRequest

#: no test may take longer than this (seconds)
TEST_DEADLINE = 10.0


def trio_test(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run the async test *fn* in a fresh trio.run with a deadline."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        async def main() -> None:
            with trio.fail_after(TEST_DEADLINE):
                await fn(*args, **kwargs)

        trio.run(main)

    return wrapper


def quiet(line: str) -> None:
    """An access log that drops lines."""


async def echo(request: ServerRequest) -> ResponseSpec:
    """A handler answering with the method, target and request body."""
    body = await request.read()
    return ResponseSpec(
        200,
        [(b"Content-Type", b"text/plain")],
        request.method + b" " + request.target + b"\n" + body,
    )


async def read_until_eof(stream: trio.SocketStream, limit: float = 5.0) -> bytes:
    """Everything the peer sends until it closes."""
    chunks = []
    with trio.fail_after(limit):
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


async def read_response_head(stream: trio.SocketStream, buffer: bytearray) -> bytes:
    """Read until the end of a response head; return it (the rest stays in *buffer*)."""
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError(bytes(buffer))
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    return head
