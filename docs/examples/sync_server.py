"""A blocking HTTP/1.1 server on protomata.sync: one thread per connection.

Routes:

* ``GET /``: a short text (a whole body in a ResponseSpec);
* ``POST /echo``: the request body, upper-cased (read whole);
* ``POST /count``: the size of the request body (read piece by piece);
* ``GET /numbers?n=5``: lines 1..n from a generator (a streamed, chunked body);
* ``GET /countdown``: a response the handler writes itself, piece by piece.

Usage: python sync_server.py [--host 127.0.0.1] [--port 8000] [--cert C --key K]

It prints the URL it serves, then runs until Ctrl-C or SIGTERM, which stop it
gracefully: no new connections, idle keep-alive connections are closed and
requests in flight finish.
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Iterator

from protomata.sync import HTTPServer, ResponseSpec, ServerRequest, ServerSettings, Timeouts

TEXT = [("Content-Type", "text/plain; charset=utf-8")]


def numbers(n: int) -> Iterator[bytes]:
    """The streamed body of /numbers: produced while it is being sent."""
    for i in range(1, n + 1):
        yield f"{i}\n".encode()


def handler(request: ServerRequest) -> ResponseSpec | None:
    """Answer one request (runs in the connection's thread)."""
    if request.method == b"POST" and request.path == b"/echo":
        body = request.read()  # the whole body (413 beyond max_body_size)
        return ResponseSpec(200, TEXT, body.upper())
    if request.method == b"POST" and request.path == b"/count":
        size = sum(len(piece) for piece in request.iter_body())
        return ResponseSpec(200, TEXT, f"{size} bytes\n".encode())
    if request.path == b"/numbers":
        n = int(request.query.partition(b"n=")[2] or 5)
        # body=None and a stream: sent chunked as the generator yields.
        return ResponseSpec(200, TEXT, None, stream=numbers(n))
    if request.path == b"/countdown":
        # The handler writes the response itself and returns None.
        request.start_response(200, TEXT)
        for i in (3, 2, 1):
            request.send(f"{i}...\n".encode())
        request.send(b"liftoff\n")
        request.end_response()
        return None
    if request.path == b"/":
        peer = f"{request.client[0]}:{request.client[1]}"
        return ResponseSpec(200, TEXT, f"Hello, {peer}\n".encode())
    return ResponseSpec(404, TEXT, b"not found\n")


def make_server(
    host: str = "127.0.0.1", port: int = 8000, tls_context: ssl.SSLContext | None = None
) -> HTTPServer:
    """The server, listening (port 0 picks a free port; see ``server.port``)."""
    return HTTPServer(
        handler,
        host,
        port,
        # read: 30 s per read; head: 10 s for a whole request head (slow
        # clients get 408); idle: 15 s between requests on a kept-alive
        # connection (then it is closed quietly).
        timeouts=Timeouts(30.0, head=10.0, idle=15.0),
        max_connections=100,  # more wait in the listen backlog
        settings=ServerSettings(max_body_size=1_000_000),  # 413 beyond
        tls_context=tls_context,
    )


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
    server = make_server(args.host, args.port, tls_context)
    print(f"Serving on {server.url}", flush=True)
    server.serve_forever()  # SIGINT/SIGTERM: graceful shutdown, then return
    print("Stopped", flush=True)


if __name__ == "__main__":
    main()
