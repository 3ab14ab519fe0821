"""ASGI 3 applications on the trio server."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from protomata.http._asgi import LifespanFailure
from protomata.trio import ASGIServer, HTTPClient, get

from ._util import quiet, trio_test


class App:
    """An ASGI app with lifespan that echoes request bodies and shows state."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = "hello"
                    self.events.append("startup")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.events.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            assert message["type"] == "http.request"
            body += message["body"]
            if not message["more_body"]:
                break
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for piece in (b"a", b"b", b"c"):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["path"] == "/fail":
            raise RuntimeError("app failure")
        text = (
            f"{scope['method']} {scope['path']} q={scope['query_string'].decode()} "
            f"{scope['state']['greeting']} {scope['client'][0]} "
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": text.encode() + body})


@trio_test
async def test_asgi_app_with_lifespan() -> None:
    app = App()
    server = ASGIServer(app, port=0, access_log=quiet)
    async with server.running():
        assert app.events == ["startup"]
        async with HTTPClient() as client:
            response = await client.request("POST", server.url + "p%20q?x=1", content=b"body")
            assert response.status == 200
            assert response.headers.get(b"content-length") == b"36"
            assert await response.read() == b"POST /p q q=x=1 hello 127.0.0.1 body"
            response = await client.request("POST", server.url + "e", content=[b"1", b"2"])
            assert (await response.read()).endswith(b"12")
            response = await client.get(server.url + "stream")
            assert response.headers.get(b"transfer-encoding") == b"chunked"
            assert await response.read() == b"abc"
            response = await client.request("HEAD", server.url + "h")
            assert await response.read() == b""
    assert app.events == ["startup", "shutdown"]


@trio_test
async def test_asgi_app_error_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    async with ASGIServer(App(), port=0, access_log=quiet).running() as server:
        response = await get(server.url + "fail")
        assert response.status == 500
    assert "app failure" in caplog.text


@trio_test
async def test_app_without_lifespan_support_in_auto_mode() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("only http here")
        assert "state" not in scope
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    async with ASGIServer(app, port=0, access_log=quiet).running() as server:
        assert (await get(server.url)).status == 204

    with pytest.raises(LifespanFailure):
        async with ASGIServer(app, port=0, access_log=quiet, lifespan="on").running():
            raise AssertionError("must not start")


@trio_test
async def test_startup_failure_stops_the_server() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(LifespanFailure, match="no database"):
        async with ASGIServer(app, port=0, access_log=quiet).running():
            raise AssertionError("must not start")


@trio_test
async def test_disconnect_after_response() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise ValueError("no lifespan")
        assert (await receive())["type"] == "http.request"
        async with trio.open_nursery() as nursery:

            async def listen() -> None:
                seen.append((await receive())["type"])

            nursery.start_soon(listen)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"done"})
        seen.append("returned")

    async with ASGIServer(app, port=0, access_log=quiet).running() as server:
        response = await get(server.url)
        assert await response.read() == b"done"
    assert seen == ["http.disconnect", "returned"]
