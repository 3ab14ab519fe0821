"""The trio server's limits, timeouts, connection limit and graceful shutdown."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import trio

from protomata.trio import (
    HTTPClient,
    HTTPServer,
    ResponseSpec,
    ServerRequest,
    ServerSettings,
    Timeouts,
    get,
)

from ._util import echo, quiet, read_response_head, read_until_eof, trio_test


@trio_test
async def test_body_too_large_gives_413() -> None:
    settings = ServerSettings(max_body_size=100)
    async with (
        HTTPServer(echo, port=0, access_log=quiet, settings=settings).running() as server,
        HTTPClient() as client,
    ):
        response = await client.request("POST", server.url, content=b"x" * 50)
        assert response.status == 200
        response = await client.request("POST", server.url, content=b"x" * 101)
        assert response.status == 413
        assert response.headers.get(b"connection") == b"close"
        # chunked: the limit is only known while reading
        response = await client.request("POST", server.url, content=[b"y" * 60] * 2)
        assert response.status == 413


@trio_test
async def test_huge_header_block_gives_431() -> None:
    async with HTTPServer(echo, port=0, access_log=quiet).running() as server:
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000)
        reply = await read_until_eof(stream)
        await stream.aclose()
        assert reply.startswith(b"HTTP/1.1 431 ")


@trio_test
async def test_slow_loris_gets_408_and_is_disconnected() -> None:
    timeouts = Timeouts(5.0, head=0.2, idle=5.0)
    async with HTTPServer(echo, port=0, access_log=quiet, timeouts=timeouts).running() as server:
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        start = trio.current_time()
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        reply = await read_until_eof(stream)
        await stream.aclose()
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert 0.15 < trio.current_time() - start < 2.0


@trio_test
async def test_idle_connection_is_closed_silently() -> None:
    timeouts = Timeouts(5.0, head=5.0, idle=0.2)
    async with HTTPServer(echo, port=0, access_log=quiet, timeouts=timeouts).running() as server:
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        buffer = bytearray()
        head = await read_response_head(stream, buffer)
        assert head.startswith(b"HTTP/1.1 200 ")
        start = trio.current_time()
        rest = await read_until_eof(stream)  # then nothing: the server ends the idle connection
        await stream.aclose()
        assert bytes(buffer) + rest == b"GET /\n"
        assert 0.15 < trio.current_time() - start < 2.0


@trio_test
async def test_graceful_shutdown_finishes_in_flight_request() -> None:
    started = trio.Event()

    async def handler(request: ServerRequest) -> ResponseSpec:
        if request.path == b"/slow":
            started.set()
            await trio.sleep(0.3)
            return ResponseSpec(200, [], b"finished")
        return ResponseSpec(200, [], b"quick")

    server = HTTPServer(handler, port=0, access_log=quiet)
    results: dict[str, object] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_forever)
        # an idle keep-alive connection: shutdown must end it at once
        idle = await trio.open_tcp_stream("127.0.0.1", server.port)
        await idle.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await read_response_head(idle, bytearray())
        assert head.startswith(b"HTTP/1.1 200 ")

        async def slow_request() -> None:
            response = await get(server.url + "slow")
            results["slow"] = (response.status, await response.read())

        nursery.start_soon(slow_request)
        await started.wait()
        begun = trio.current_time()
        await server.shutdown()
        results["took"] = trio.current_time() - begun
        assert await read_until_eof(idle, 1.0) == b""  # the idle one was closed
        await idle.aclose()
    assert results["slow"] == (200, b"finished")
    assert 0.1 < results["took"] < 2.0  # type: ignore[operator]
    try:  # and nothing is accepted any more
        late = await trio.open_tcp_stream("127.0.0.1", server.port)
    except OSError:
        pass
    else:
        await late.aclose()
        raise AssertionError("the server still accepts connections")


@trio_test
async def test_shutdown_grace_cancels_stuck_requests() -> None:
    async def stuck(request: ServerRequest) -> ResponseSpec:
        await trio.sleep_forever()
        raise AssertionError

    server = HTTPServer(stuck, port=0, access_log=quiet, grace=0.2)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_forever)
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.sleep(0.05)
        begun = trio.current_time()
        await server.shutdown()
        assert 0.15 < trio.current_time() - begun < 2.0
        assert await read_until_eof(stream, 1.0) == b""
        await stream.aclose()


@trio_test
async def test_sigterm_shuts_down() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    server = HTTPServer(echo, port=0, access_log=quiet)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_forever)  # handle_signals defaults to True
        assert (await get(server.url)).status == 200
        os.kill(os.getpid(), signal.SIGTERM)
        with trio.fail_after(3):
            while not server.draining:
                await trio.sleep(0.01)
    assert server.draining  # serve_forever returned: the nursery could close


@trio_test
async def test_max_connections_limits_concurrency() -> None:
    active = 0
    most = 0

    async def handler(request: ServerRequest) -> ResponseSpec:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await trio.sleep(0.05)
        active -= 1
        return ResponseSpec(200, [(b"Connection", b"close")], b"ok")

    async with (
        HTTPServer(handler, port=0, access_log=quiet, max_connections=2).running() as server,
        trio.open_nursery() as nursery,
    ):
        for _ in range(6):
            nursery.start_soon(get, server.url)
    assert most == 2
