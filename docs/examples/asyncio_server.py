"""An HTTP/1.1 server on protomata.asyncio: one task per connection.

``GET /`` says hello, ``POST /echo`` returns the body upper-cased, and
``GET /numbers?n=5`` streams lines 1..n from an async generator.

Usage: python asyncio_server.py [--host 127.0.0.1] [--port 8000]

It prints the URL it serves and runs until Ctrl-C or SIGTERM (graceful:
idle connections are closed, requests in flight get ``grace`` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

from protomata.asyncio import HTTPServer, ResponseSpec, ServerRequest, ServerSettings, Timeouts

TEXT = [("Content-Type", "text/plain; charset=utf-8")]


async def numbers(n: int) -> AsyncIterator[bytes]:
    for i in range(1, n + 1):
        await asyncio.sleep(0)
        yield f"{i}\n".encode()


async def handler(request: ServerRequest) -> ResponseSpec:
    """Answer one request (runs in the connection's task)."""
    if request.method == b"POST" and request.path == b"/echo":
        return ResponseSpec(200, TEXT, (await request.read()).upper())
    if request.path == b"/numbers":
        n = int(request.query.partition(b"n=")[2] or 5)
        return ResponseSpec(200, TEXT, None, stream=numbers(n))
    if request.path == b"/":
        return ResponseSpec(200, TEXT, f"Hello, {request.client[0]}\n".encode())
    return ResponseSpec(404, TEXT, b"not found\n")


async def main(host: str, port: int) -> None:
    server = HTTPServer(
        handler,
        host,
        port,
        timeouts=Timeouts(30.0, head=10.0, idle=15.0),
        max_connections=100,
        settings=ServerSettings(max_body_size=1_000_000),
        access_log=False,
        grace=5.0,
    )
    # The socket listens from construction on: the URL is final already.
    print(f"Serving on {server.url}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
    print("Stopped", flush=True)
