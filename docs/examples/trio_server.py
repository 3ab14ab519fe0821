"""An HTTP/1.1 server on protomata.trio: one task per connection.

The same routes as sync_server.py, with an async handler:

* ``GET /``: a short text (a whole body in a ResponseSpec);
* ``POST /echo``: the request body, upper-cased (read whole);
* ``POST /count``: the size of the request body (read piece by piece);
* ``GET /numbers?n=5``: lines 1..n from an async generator (streamed, chunked);
* ``GET /countdown``: a response the handler writes itself, piece by piece.

Usage: python trio_server.py [--host 127.0.0.1] [--port 8000] [--cert C --key K]

It prints the URL it serves once it accepts connections, then runs until
Ctrl-C or SIGTERM: the server stops accepting, closes idle keep-alive
connections and gives requests in flight ``grace`` seconds to finish.
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import AsyncIterator

import trio

from protomata.trio import HTTPServer, ResponseSpec, ServerRequest, ServerSettings, Timeouts

TEXT = [("Content-Type", "text/plain; charset=utf-8")]


async def numbers(n: int) -> AsyncIterator[bytes]:
    """The streamed body of /numbers: an async generator works as well as a plain one."""
    for i in range(1, n + 1):
        await trio.sleep(0)
        yield f"{i}\n".encode()


async def handler(request: ServerRequest) -> ResponseSpec | None:
    """Answer one request (runs in the connection's task)."""
    if request.method == b"POST" and request.path == b"/echo":
        body = await request.read()  # the whole body (413 beyond max_body_size)
        return ResponseSpec(200, TEXT, body.upper())
    if request.method == b"POST" and request.path == b"/count":
        size = 0
        async for piece in request.iter_body():
            size += len(piece)
        return ResponseSpec(200, TEXT, f"{size} bytes\n".encode())
    if request.path == b"/numbers":
        n = int(request.query.partition(b"n=")[2] or 5)
        return ResponseSpec(200, TEXT, None, stream=numbers(n))
    if request.path == b"/countdown":
        await request.start_response(200, TEXT)
        for i in (3, 2, 1):
            await request.send(f"{i}...\n".encode())
        await request.send(b"liftoff\n")
        await request.end_response()
        return None
    if request.path == b"/":
        peer = f"{request.client[0]}:{request.client[1]}"
        return ResponseSpec(200, TEXT, f"Hello, {peer}\n".encode())
    return ResponseSpec(404, TEXT, b"not found\n")


def make_server(
    host: str = "127.0.0.1", port: int = 8000, tls_context: ssl.SSLContext | None = None
) -> HTTPServer:
    """The server, already bound (port 0 picks a free port; see ``server.port``)."""
    return HTTPServer(
        handler,
        host,
        port,
        timeouts=Timeouts(30.0, head=10.0, idle=15.0),
        max_connections=100,
        settings=ServerSettings(max_body_size=1_000_000),
        tls_context=tls_context,
        access_log=False,  # or a callable taking one Common Log Format line
        grace=5.0,  # seconds requests in flight get at shutdown
    )


async def serve(server: HTTPServer) -> None:
    async with trio.open_nursery() as nursery:
        # nursery.start returns once the server accepts connections.
        await nursery.start(server.serve_forever)
        print(f"Serving on {server.url}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--cert", help="certificate file (PEM): serve HTTPS")
    parser.add_argument("--key", help="private key of --cert (PEM)")
    args = parser.parse_args()
    tls_context = None
    if args.cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.cert, args.key)
    trio.run(serve, make_server(args.host, args.port, tls_context))
    print("Stopped", flush=True)


if __name__ == "__main__":
    main()
