"""A WSGI (PEP 3333) application served by protomata's blocking adapter.

``GET /`` says hello, ``POST /echo`` returns the request body read from
``wsgi.input``, and ``GET /stream`` returns a generator (sent chunked).

Usage:  python wsgi_app.py [--port 8000]
   or:  protomata serve http --app wsgi_app:app
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

TEXT = [("Content-Type", "text/plain; charset=utf-8")]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The application: called once per request, in the connection's thread."""
    path = environ["PATH_INFO"]
    if environ["REQUEST_METHOD"] == "POST" and path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read()
        start_response("200 OK", TEXT)
        return [body]  # one piece: sent with a Content-Length
    if path == "/stream":
        start_response("200 OK", TEXT)
        return words()  # a generator: sent chunked as it yields
    start_response("200 OK", TEXT)
    return [f"Hello from WSGI: {environ['REQUEST_METHOD']} {path}\n".encode()]


def words() -> Iterator[bytes]:
    yield from (b"one\n", b"two\n", b"three\n")


def main() -> None:
    from protomata.sync import HTTPServer, wsgi_handler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    server = HTTPServer(wsgi_handler(app), args.host, args.port)
    print(f"Serving on {server.url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
