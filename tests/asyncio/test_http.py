"""The asyncio HTTP client and server against each other, the sync adapter and stdlib."""

from __future__ import annotations

import asyncio
import http.client
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from protomata import sync
from protomata.asyncio import (
    HTTPClient,
    HTTPError,
    HTTPServer,
    ResponseSpec,
    ServerRequest,
    ServerSettings,
    Timeouts,
    get,
    iter_spec,
)


def arun(coro: Awaitable[Any], timeout: float = 10.0) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(main())


async def echo(request: ServerRequest) -> ResponseSpec | None:
    if request.path == b"/stream":
        return iter_spec(200, [b"one ", b"two ", b"three"])

    if request.path == b"/astream":

        async def pieces() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0)
                yield b"piece%d " % i

        return iter_spec(200, pieces())
    if request.path == b"/manual":
        await request.start_response(200, [(b"Content-Type", b"text/plain")])
        await request.send(b"hand")
        await request.send(b"made")
        await request.end_response()
        return None
    if request.path == b"/slow":
        await asyncio.sleep(0.5)
        return ResponseSpec(200, [], b"slow done")
    if request.path == b"/fail":
        raise RuntimeError("handler failed")
    if request.path == b"/redirect":
        return ResponseSpec(302, [(b"Location", b"/target")], b"")
    body = await request.read()
    info = f"{request.method.decode()} {request.target.decode()} {len(body)}".encode()
    return ResponseSpec(200, [(b"X-Info", info)], body or b"empty")


def server(handler: Callable[[ServerRequest], Awaitable[Any]] = echo, **kw: Any) -> HTTPServer:
    kw.setdefault("access_log", False)
    return HTTPServer(handler, "127.0.0.1", 0, **kw)


def test_client_against_async_server_with_keepalive_and_streams() -> None:
    lines: list[str] = []

    async def main() -> None:
        async with server(access_log=lines.append).running() as srv, HTTPClient() as client:
            r = await client.get(srv.url + "hello?x=1")
            assert r.status == 200
            assert r.headers.get(b"x-info") == b"GET /hello?x=1 0"
            assert await r.read() == b"empty"
            first = r._stream
            r = await client.request("POST", srv.url + "p", content=b"abc")
            assert await r.text() == "abc"
            assert r._stream is first  # keep-alive reuse

            async def upload() -> AsyncIterator[bytes]:
                for part in (b"chunk1-", b"chunk2-", b"chunk3"):
                    yield part

            r = await client.request("PUT", srv.url + "u", content=upload())
            assert r.headers.get(b"x-info") == b"PUT /u 20"
            assert await r.read() == b"chunk1-chunk2-chunk3"
            r = await client.request("POST", srv.url + "u", content=[b"sync", b"-iter"])
            assert await r.read() == b"sync-iter"
            r = await client.get(srv.url + "stream")
            assert [c async for c in r.iter_bytes()] and r._client is None
            r = await client.get(srv.url + "astream")
            assert await r.read() == b"piece0 piece1 piece2 "
            r = await client.get(srv.url + "manual")
            assert await r.read() == b"handmade"
            r = await client.request("HEAD", srv.url + "stream")
            assert r.status == 200 and await r.read() == b""
            r = await client.get(srv.url + "fail")
            assert r.status == 500
            r = await client.get(srv.url + "redirect")
            assert r.status == 302

        async with HTTPClient(follow_redirects=True) as client, server().running() as srv:
            r = await client.get(srv.url + "redirect")
            assert r.status == 200 and r.url.endswith("/target")

    arun(main())
    assert any('"GET /hello?x=1 HTTP/1.1" 200 5' in line for line in lines)


def test_client_against_sync_server() -> None:
    def handler(request: sync.ServerRequest) -> sync.ResponseSpec:
        return sync.ResponseSpec(200, [], b"sync says " + request.read())

    srv = sync.HTTPServer(handler, "127.0.0.1", 0, access_log=lambda line: None)

    async def main() -> None:
        async with HTTPClient() as client:
            for _ in range(3):
                r = await client.request("POST", srv.url, content=b"hi")
                assert await r.read() == b"sync says hi"

    with srv.running():
        arun(main())


def test_one_call_helpers_and_connection_refused() -> None:
    async def main() -> None:
        async with server().running() as srv:
            r = await get(srv.url + "x")
            assert r.status == 200 and await r.read() == b"empty"
            port = srv.port
        with pytest.raises(HTTPError, match="connection refused"):
            await get(f"http://127.0.0.1:{port}/")

    arun(main())


def test_stdlib_client_against_async_server() -> None:
    async def main() -> None:
        async with server().running() as srv:

            def talk() -> list[tuple[int, bytes]]:
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
                out = []
                for body in (b"", b"xyz"):
                    conn.request("POST", "/a", body=body)
                    resp = conn.getresponse()
                    out.append((resp.status, resp.read()))
                conn.request("GET", "/stream")
                resp = conn.getresponse()
                out.append((resp.status, resp.read()))
                conn.close()
                return out

            result = await asyncio.to_thread(talk)
            assert result == [(200, b"empty"), (200, b"xyz"), (200, b"one two three")]

    arun(main())


async def raw_exchange(port: int, data: bytes, *, wait: float = 3.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), wait):
            chunks.append(chunk)
    finally:
        writer.close()
    return b"".join(chunks)


def test_100_continue_413_and_431() -> None:
    async def main() -> None:
        settings = ServerSettings(max_body_size=10)
        async with server(settings=settings).running() as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
            assert interim.startswith(b"HTTP/1.1 100 ")
            writer.write(b"hello")
            rest = await asyncio.wait_for(reader.read(), 3)
            assert rest.startswith(b"HTTP/1.1 200 ") and rest.endswith(b"hello")
            writer.close()

            reply = await raw_exchange(
                srv.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n" + b"x" * 50
            )
            assert reply.startswith(b"HTTP/1.1 413 ")
            huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
            reply = await raw_exchange(srv.port, huge)
            assert reply.startswith(b"HTTP/1.1 431 ")

    arun(main())


def test_slow_loris_gets_408_and_idle_connection_closes() -> None:
    async def main() -> None:
        timeouts = Timeouts(5.0, head=0.3, idle=0.4)
        async with server(timeouts=timeouts).running() as srv:
            loop = asyncio.get_running_loop()
            start = loop.time()
            reply = await raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n")
            assert reply.startswith(b"HTTP/1.1 408 ")
            assert loop.time() - start < 2.0
            start = loop.time()
            reply = await raw_exchange(srv.port, b"")
            assert reply == b""  # the idle connection was closed without a word
            assert 0.3 < loop.time() - start < 2.0

    arun(main())


def test_graceful_shutdown_finishes_in_flight_request_and_closes_idle() -> None:
    async def main() -> None:
        srv = server(grace=5.0)
        async with srv.running():
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", srv.port)
            async with HTTPClient() as client:
                in_flight = asyncio.ensure_future(client.get(srv.url + "slow"))
                await asyncio.sleep(0.2)
                shutdown = asyncio.ensure_future(srv.shutdown())
                response = await in_flight
                assert response.status == 200
                assert await response.read() == b"slow done"
                await asyncio.wait_for(shutdown, 5)
            assert await asyncio.wait_for(idle_reader.read(), 2) == b""  # idle one closed
            idle_writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", srv.port)

    arun(main())


def test_client_timeout_is_an_http_error() -> None:
    async def handler(request: ServerRequest) -> ResponseSpec:
        await asyncio.sleep(2)
        return ResponseSpec(200, [], b"late")

    async def main() -> None:
        async with server(handler, grace=0.1).running() as srv, HTTPClient(timeout=0.3) as c:
            with pytest.raises(HTTPError, match="timed out"):
                await c.get(srv.url)

    arun(main())


trustme = pytest.importorskip("trustme")


def test_tls_verification_on_and_wrong_hostname() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main() -> None:
        async with server(tls_context=server_ctx).running() as srv:
            assert srv.url.startswith("https://")
            async with HTTPClient(verify=client_ctx) as client:
                r = await client.get(srv.url + "tls")
                assert await r.read() == b"empty"
                other = srv.url.replace("127.0.0.1", "localhost")
                r = await client.get(other + "tls")
                assert r.status == 200
                await r.read()
            wrong = ca.issue_cert("elsewhere.example")
            bad_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            wrong.configure_cert(bad_ctx)
            async with server(tls_context=bad_ctx).running() as bad:
                async with HTTPClient(verify=client_ctx) as client:
                    with pytest.raises(HTTPError, match="verification failed"):
                        await client.get(bad.url)
                async with HTTPClient() as client:  # default trust store: our CA unknown
                    with pytest.raises(HTTPError, match="TLS"):
                        await client.get(srv.url)

    arun(main())


def test_max_connections_makes_excess_connections_wait() -> None:
    async def main() -> None:
        async with server(max_connections=1).running() as srv:
            first_r, first_w = await asyncio.open_connection("127.0.0.1", srv.port)
            first_w.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await asyncio.wait_for(first_r.readuntil(b"empty"), 3)).startswith(
                b"HTTP/1.1 200"
            )
            second_r, second_w = await asyncio.open_connection("127.0.0.1", srv.port)
            second_w.write(b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(second_r.read(1), 0.3)  # waits for a slot
            first_w.close()
            reply = await asyncio.wait_for(second_r.read(), 3)
            assert reply.startswith(b"HTTP/1.1 200")
            second_w.close()

    arun(main())


def test_sigterm_drains_and_stops_serve_forever() -> None:
    import os
    import signal

    async def main() -> None:
        srv = server()
        task = asyncio.ensure_future(srv.serve_forever())
        async with HTTPClient() as client:
            for _ in range(50):
                try:
                    r = await client.get(srv.url)
                    break
                except HTTPError:
                    await asyncio.sleep(0.02)
            assert r.status == 200
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 5)
        assert srv.draining

    arun(main())


def test_ipv6_loopback_and_runner_with_async_call() -> None:
    import socket

    from protomata._core._ops import Call, Receive, Send
    from protomata.asyncio import connect_tcp, run

    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = HTTPServer(echo, "::1", 0, access_log=False)
    except OSError:
        pytest.skip("no IPv6 loopback")

    def op() -> Any:
        name = yield Call("name")
        yield Send(b"GET /" + name + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := (yield Receive()):
            data += chunk
        return data

    async def on_call(call: Call) -> bytes:
        await asyncio.sleep(0)
        return b"v6"

    async def main() -> None:
        async with srv.running():
            assert srv.url.startswith("http://[::1]:")
            stream = await connect_tcp("::1", srv.port)
            reply = await run(op(), stream, on_call)
            stream.close()
            assert reply.startswith(b"HTTP/1.1 200 ") and b"GET /v6 0" in reply

    arun(main())


def test_head_timeout_bounds_the_whole_head_not_each_read() -> None:
    async def main() -> None:
        async with server(timeouts=Timeouts(5.0, head=0.4, idle=5.0)).running() as srv:
            loop = asyncio.get_running_loop()
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            start = loop.time()
            writer.write(b"GET / HTTP/1.1\r\n")
            reply = b""
            while loop.time() - start < 3:
                writer.write(b"X")  # one byte per 0.1 s: each read is quick
                try:
                    reply = await asyncio.wait_for(reader.read(65536), 0.1)
                    break
                except TimeoutError:
                    continue
            writer.close()
            assert reply.startswith(b"HTTP/1.1 408 ")
            assert loop.time() - start < 1.5

    arun(main())
