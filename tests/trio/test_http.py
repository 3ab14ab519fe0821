"""The trio HTTP client and server against each other, the blocking server and http.client."""

from __future__ import annotations

import http.client

import pytest
import trio

from protomata import sync
from protomata.trio import (
    HTTPClient,
    HTTPError,
    HTTPServer,
    ResponseSpec,
    ServerRequest,
    Timeouts,
    TooManyRedirects,
    get,
    iter_spec,
    request,
)

from ._util import echo, quiet, read_response_head, trio_test


@trio_test
async def test_client_against_trio_server() -> None:
    async with (
        HTTPServer(echo, port=0, access_log=quiet).running() as server,
        HTTPClient() as client,
    ):
        response = await client.request("POST", server.url + "a?b=1", content=b"hello")
        assert response.status == 200
        assert response.reason == b"OK"
        assert response.http_version == b"1.1"
        assert response.headers.get(b"content-type") == b"text/plain"
        assert response.headers.get(b"server") == b"protomata"
        assert response.headers.get(b"date") is not None
        assert await response.read() == b"POST /a?b=1\nhello"
        assert await response.text() == "POST /a?b=1\nhello"


@trio_test
async def test_module_helpers() -> None:
    async with HTTPServer(echo, port=0, access_log=quiet).running() as server:
        response = await get(server.url + "x")
        assert await response.read() == b"GET /x\n"
        response = await request("PUT", server.url + "y", content=b"z")
        assert await response.read() == b"PUT /y\nz"


def test_client_against_blocking_server() -> None:
    def handler(req: sync.ServerRequest) -> ResponseSpec:
        return ResponseSpec(201, [(b"X-Seen", req.headers.get(b"x-test") or b"")], req.read())

    async def main(url: str) -> None:
        async with HTTPClient(timeout=5) as client:
            for i in range(3):
                response = await client.request(
                    "POST", url, headers=[("X-Test", "yes")], content=b"n%d" % i
                )
                assert response.status == 201
                assert response.headers.get(b"x-seen") == b"yes"
                assert await response.read() == b"n%d" % i
            assert sum(len(v) for v in client._idle.values()) == 1  # one reused connection

    server = sync.HTTPServer(handler, port=0, access_log=quiet)
    with server.running():
        trio.run(main, server.url)


@trio_test
async def test_stdlib_client_against_trio_server() -> None:
    async with HTTPServer(echo, port=0, access_log=quiet).running() as server:

        def blocking() -> list[tuple[int, bytes]]:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            results = []
            for body in (b"one", b"two"):  # both on one keep-alive connection
                conn.request("POST", "/p", body=body)
                response = conn.getresponse()
                results.append((response.status, response.read()))
            conn.request("HEAD", "/h")
            response = conn.getresponse()
            results.append((response.status, response.read()))
            conn.close()
            return results

        results = await trio.to_thread.run_sync(blocking)
        assert results == [(200, b"POST /p\none"), (200, b"POST /p\ntwo"), (200, b"")]


@trio_test
async def test_keep_alive_reuses_one_connection() -> None:
    peers = []

    async def handler(request: ServerRequest) -> ResponseSpec:
        peers.append(request.client)
        return ResponseSpec(200, [], b"ok")

    async with (
        HTTPServer(handler, port=0, access_log=quiet).running() as server,
        HTTPClient() as client,
    ):
        for _ in range(4):
            response = await client.get(server.url)
            assert await response.read() == b"ok"
    assert len(peers) == 4
    assert len(set(peers)) == 1


@trio_test
async def test_pooled_connection_closed_by_server_is_retried() -> None:
    timeouts = Timeouts(5.0, idle=0.1)
    async with (
        HTTPServer(echo, port=0, access_log=quiet, timeouts=timeouts).running() as server,
        HTTPClient() as client,
    ):
        assert await (await client.get(server.url)).read() == b"GET /\n"
        await trio.sleep(0.3)  # the server closes the idle connection meanwhile
        pooled = next(iter(client._idle.values()))[0][1]
        response = await client.get(server.url + "again")
        assert await response.read() == b"GET /again\n"
        assert pooled.closed  # the stale connection was dropped, a new one used


@trio_test
async def test_chunked_upload_from_async_iterable() -> None:
    seen = []

    async def handler(request: ServerRequest) -> ResponseSpec:
        seen.append(request.headers.get(b"transfer-encoding"))
        pieces = [piece async for piece in request.iter_body()]
        return ResponseSpec(200, [], b"|".join(pieces))

    async def body():  # type: ignore[no-untyped-def]
        for i in range(3):
            await trio.sleep(0.01)  # separate pieces on the wire
            yield b"part%d" % i

    async with (
        HTTPServer(handler, port=0, access_log=quiet).running() as server,
        HTTPClient() as client,
    ):
        response = await client.request("POST", server.url, content=body())
        assert (await response.read()).replace(b"|", b"") == b"part0part1part2"
        response = await client.request("POST", server.url, content=[b"a", b"", b"b"])
        assert (await response.read()).replace(b"|", b"") == b"ab"
    assert seen == [b"chunked", b"chunked"]


@trio_test
async def test_streaming_responses() -> None:
    release = trio.Event()

    async def pieces():  # type: ignore[no-untyped-def]
        yield b"first "
        await release.wait()  # the client sees the first piece before the rest exists
        yield b"second"

    async def handler(request: ServerRequest) -> ResponseSpec | None:
        if request.path == b"/spec":
            return iter_spec(200, pieces(), [(b"Content-Type", b"text/plain")])
        if request.path == b"/sync":
            return iter_spec(200, [b"a", b"b", b"c"])
        await request.start_response(200, [(b"X-Mode", b"manual")])
        await request.send(b"x" * 10)
        await request.send(b"y" * 10)
        await request.end_response()
        return None

    async with (
        HTTPServer(handler, port=0, access_log=quiet).running() as server,
        HTTPClient() as client,
    ):
        response = await client.get(server.url + "spec")
        assert response.headers.get(b"transfer-encoding") == b"chunked"
        chunks = response.iter_bytes()
        assert await chunks.__anext__() == b"first "
        release.set()
        rest = [chunk async for chunk in chunks]
        assert b"".join(rest) == b"second"
        response = await client.get(server.url + "sync")
        assert await response.read() == b"abc"
        response = await client.get(server.url + "manual")
        assert response.headers.get(b"x-mode") == b"manual"
        assert await response.read() == b"x" * 10 + b"y" * 10


@trio_test
async def test_head_has_no_body() -> None:
    async def handler(request: ServerRequest) -> ResponseSpec:
        return ResponseSpec(200, [], b"0123456789")

    async with (
        HTTPServer(handler, port=0, access_log=quiet).running() as server,
        HTTPClient() as client,
    ):
        response = await client.request("HEAD", server.url)
        assert response.headers.get(b"content-length") == b"10"
        assert await response.read() == b""
        response = await client.get(server.url)  # the connection is still in sync
        assert await response.read() == b"0123456789"


@trio_test
async def test_expect_100_continue() -> None:
    async with HTTPServer(echo, port=0, access_log=quiet).running() as server:
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stream.send_all(
            b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        buffer = bytearray()
        head = await read_response_head(stream, buffer)
        assert head.startswith(b"HTTP/1.1 100 ")
        await stream.send_all(b"body")
        head = await read_response_head(stream, buffer)
        assert head.startswith(b"HTTP/1.1 200 ")
        while len(buffer) < len(b"POST /c\nbody"):
            buffer += await stream.receive_some(1000)
        assert bytes(buffer) == b"POST /c\nbody"
        await stream.aclose()


@trio_test
async def test_redirects() -> None:
    async def handler(request: ServerRequest) -> ResponseSpec:
        if request.path == b"/loop":
            return ResponseSpec(302, [(b"Location", b"/loop")], b"")
        if request.path == b"/old":
            return ResponseSpec(303, [(b"Location", b"/new")], b"")
        return ResponseSpec(200, [], request.method + b" " + request.path)

    async with (
        HTTPServer(handler, port=0, access_log=quiet).running() as server,
        HTTPClient(follow_redirects=True, max_redirects=3) as client,
    ):
        response = await client.request("POST", server.url + "old", content=b"x")
        assert (response.status, await response.read()) == (200, b"GET /new")
        with pytest.raises(TooManyRedirects):
            await client.get(server.url + "loop")
        async with HTTPClient() as client:
            response = await client.get(server.url + "old")
            assert response.status == 303


@trio_test
async def test_handler_error_gives_500_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(request: ServerRequest) -> ResponseSpec:
        raise ValueError("boom")

    async with HTTPServer(handler, port=0, access_log=quiet).running() as server:
        response = await get(server.url)
        assert response.status == 500
    assert "ValueError: boom" in caplog.text


@trio_test
async def test_access_log_common_log_format() -> None:
    lines: list[str] = []
    async with HTTPServer(echo, port=0, access_log=lines.append).running() as server:
        await get(server.url + "logged?q=1")
    assert len(lines) == 1
    assert lines[0].startswith("127.0.0.1 - - [")
    assert lines[0].endswith('] "GET /logged?q=1 HTTP/1.1" 200 16')


@trio_test
async def test_connection_refused_is_http_error() -> None:
    server = HTTPServer(echo, port=0, access_log=quiet)
    port = server.port
    for sock in server._sockets:
        sock.close()
    with pytest.raises(HTTPError, match="cannot connect"):
        await get(f"http://127.0.0.1:{port}/")


@trio_test
async def test_read_timeout_is_http_error() -> None:
    async def slow(request: ServerRequest) -> ResponseSpec:
        await trio.sleep(2)
        return ResponseSpec(200, [], b"late")

    async with (
        HTTPServer(slow, port=0, access_log=quiet, grace=0.1).running() as server,
        HTTPClient(timeout=0.2) as client,
    ):
        with pytest.raises(HTTPError, match="timed out"):
            await client.get(server.url)


@trio_test
async def test_client_close_drops_unread_responses() -> None:
    async with HTTPServer(echo, port=0, access_log=quiet).running() as server:
        client = HTTPClient()
        response = await client.get(server.url)
        stream = response._stream
        await client.aclose()
        assert stream.closed
        assert not client._busy
