"""An ASGI 3 application served by protomata's asyncio or trio adapter.

Plain ASGI, no framework: ``GET /`` says hello with a greeting prepared at
lifespan startup, ``POST /echo`` returns the request body, and
``GET /stream`` sends its body in three ``http.response.body`` messages.

Usage:  python asgi_app.py [--io asyncio|trio] [--port 8000]
   or:  protomata serve http --app asgi_app:app [--io trio]
"""

from __future__ import annotations

import argparse
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    """The application: one call per request, and one for the lifespan."""
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)


async def lifespan(scope: Scope, receive: Any, send: Any) -> None:
    """Startup and shutdown, once per server process."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # What is put in scope["state"] here reaches every request's scope.
            scope["state"]["greeting"] = "Hello from ASGI"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http(scope: Scope, receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if scope["method"] == "POST" and scope["path"] == "/echo":
        body = b""
        while True:  # the body arrives in http.request messages
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for word in (b"one\n", b"two\n"):
            await send({"type": "http.response.body", "body": word, "more_body": True})
        await send({"type": "http.response.body", "body": b"three\n"})
    else:
        greeting = scope.get("state", {}).get("greeting", "Hello")
        text = f"{greeting}: {scope['method']} {scope['path']}\n".encode()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": text})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--io", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    if args.io == "trio":
        import trio

        from protomata.trio import ASGIServer as TrioASGIServer

        trio_server = TrioASGIServer(app, args.host, args.port, lifespan="on")
        print(f"Serving on {trio_server.url}", flush=True)
        trio.run(trio_server.serve_forever)
    else:
        import asyncio

        from protomata.asyncio import ASGIServer

        server = ASGIServer(app, args.host, args.port, lifespan="on")
        print(f"Serving on {server.url}", flush=True)
        asyncio.run(server.serve_forever())


if __name__ == "__main__":
    main()
