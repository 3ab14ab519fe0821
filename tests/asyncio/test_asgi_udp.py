"""ASGI serving (http + lifespan) and UDP endpoints over asyncio."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from protomata.asyncio import ASGIServer, HTTPClient, open_udp
from protomata.http import Request
from protomata.http._asgi import (
    ASGIProtocolError,
    Lifespan,
    ResponseTranslator,
    http_scope,
    request_message,
)

from .test_http import arun


def make_app(events: list[Any]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = "hi"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        events.append((scope["method"], scope["path"], scope["query_string"]))
        if scope["path"] == "/boom":
            raise RuntimeError("app failure")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 201, "headers": []})
            for part in (b"a", b"b", b"c"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        text = f"{scope['state']['greeting']} {scope['http_version']} {len(body)}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": text + b" " + body})

    return app


def test_asgi_app_served_with_lifespan() -> None:
    events: list[Any] = []

    async def main() -> None:
        srv = ASGIServer(make_app(events), "127.0.0.1", 0, access_log=False)
        async with srv.running(), HTTPClient() as client:
            assert events == ["lifespan.startup"]
            r = await client.request("POST", srv.url + "caf%C3%A9?q=1", content=b"body")
            assert r.status == 200
            assert await r.read() == b"hi 1.1 4 body"

            async def chunks() -> Any:
                yield b"x" * 10
                yield b"y" * 10

            r = await client.request("PUT", srv.url + "up", content=chunks())
            assert (await r.read()).startswith(b"hi 1.1 20 ")
            r = await client.get(srv.url + "stream")
            assert r.status == 201 and r.headers.get(b"transfer-encoding") == b"chunked"
            assert await r.read() == b"abc"
            r = await client.get(srv.url + "boom")
            assert r.status == 500
        assert events[-1] == "lifespan.shutdown"
        assert ("POST", "/café", b"q=1") in events

    arun(main())


def test_lifespan_auto_tolerates_apps_without_lifespan() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("no lifespan here")
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    async def main() -> None:
        srv = ASGIServer(app, "127.0.0.1", 0, access_log=False)
        async with srv.running(), HTTPClient() as client:
            r = await client.get(srv.url)
            assert r.status == 204
        with pytest.raises(Exception, match="lifespan"):
            async with ASGIServer(app, "127.0.0.1", 0, lifespan="on").running():
                pass

    arun(main())


def test_pure_asgi_helpers() -> None:
    request = Request(
        method=b"GET", target=b"/a%20b?x=y", headers=[(b"Host", b"h"), (b"X-A", b"1")]
    )
    scope = http_scope(request, ("1.2.3.4", 5), ("h", 80), "https", state={"k": 1})
    assert scope["path"] == "/a b" and scope["raw_path"] == b"/a%20b"
    assert scope["query_string"] == b"x=y" and scope["scheme"] == "https"
    assert scope["headers"] == [(b"host", b"h"), (b"x-a", b"1")]
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["state"] == {"k": 1}
    assert request_message(b"", False) == {"type": "http.request", "body": b"", "more_body": False}

    t = ResponseTranslator()
    with pytest.raises(ASGIProtocolError):
        t.feed({"type": "http.response.body", "body": b""})
    assert t.feed({"type": "http.response.start", "status": 200, "headers": []}) == ("ignore",)
    with pytest.raises(ASGIProtocolError):
        t.feed({"type": "http.response.start", "status": 200})
    assert t.feed({"type": "http.response.body", "body": b"x", "more_body": True})[0] == "response"
    assert t.feed({"type": "http.response.body", "body": b"y"}) == ("body", b"y", False)
    assert t.complete
    with pytest.raises(ASGIProtocolError, match="trailers"):
        ResponseTranslator().feed({"type": "http.response.start", "status": 200, "trailers": True})
    with pytest.raises(ASGIProtocolError):
        ResponseTranslator().feed({"type": "http.response.start", "status": 99})

    life = Lifespan()
    assert life.next_message() == {"type": "lifespan.startup"}
    assert life.next_message() is None
    life.feed({"type": "lifespan.startup.complete"})
    assert life.phase == "started"
    life.begin_shutdown()
    assert life.next_message() == {"type": "lifespan.shutdown"}
    life.feed({"type": "lifespan.shutdown.failed", "message": "oops"})
    assert life.phase == "failed" and life.error == "oops"
    with pytest.raises(ASGIProtocolError):
        Lifespan().feed({"type": "lifespan.shutdown.complete"})


def test_udp_echo_round_trip() -> None:
    async def main() -> None:
        server = await open_udp(("127.0.0.1", 0))
        addr = server.local_address
        client = await open_udp(remote_addr=addr)

        async def echo_once() -> None:
            data, peer = await server.receive(timeout=3)
            await server.send(data.upper(), peer)

        task = asyncio.ensure_future(echo_once())
        await client.send(b"ping")
        data, peer = await client.receive(timeout=3)
        assert data == b"PING" and peer[1] == addr[1]
        await task
        with pytest.raises(TimeoutError):
            await client.receive(timeout=0.1)
        client.close()
        server.close()

    arun(main())
