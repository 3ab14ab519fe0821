"""The async adapters' ASGI servers with an application that uses lifespan."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from ._harness import TIMEOUT, run_server


class LifespanApp:
    """Records lifespan events; answers requests with what its scope said."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = "hi"
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        info = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "http_version": scope["http_version"],
            "state": scope.get("state", {}).get("greeting"),
            "body": body.decode(),
        }
        payload = json.dumps(info).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


@pytest.mark.parametrize("adapter", ["asyncio", "trio"])
def test_asgi_server_with_lifespan(adapter: str, request: pytest.FixtureRequest) -> None:
    app = LifespanApp()
    started = time.monotonic()
    with run_server(adapter, handler=app, server_class="ASGIServer", lifespan_timeout=3) as server:
        startup_seconds = time.monotonic() - started
        post = urllib.request.Request(server.url + "p/a?x=1", data=b"body!", method="POST")
        with urllib.request.urlopen(post, timeout=TIMEOUT) as response:
            info = json.loads(response.read())
    assert startup_seconds < 2
    assert info == {
        "method": "POST",
        "path": "/p/a",
        "query": "x=1",
        "http_version": "1.1",
        "state": "hi",
        "body": "body!",
    }
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]
