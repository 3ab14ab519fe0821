"""A blocking HTTP/1.1 client session with protomata.sync.HTTPClient.

Usage: python sync_client.py BASE_URL [--cafile CA.pem | --insecure]

BASE_URL is a server that speaks like sync_server.py (``/``, ``/echo``,
``/count``, ``/numbers``).  Each step prints one line.
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Iterator

from protomata.sync import HTTPClient, HTTPError


def upload_pieces() -> Iterator[bytes]:
    """A request body produced on the fly: sent chunked, never held whole."""
    for i in range(100):
        yield b"x" * (i + 1)


def session(base: str, client: HTTPClient) -> list[str]:
    """Talk to the server at *base*; return what each step found."""
    lines = []
    # Two GETs: the second reuses the first one's connection (keep-alive);
    # reading the body to its end is what puts a connection back in the pool.
    for _ in range(2):
        response = client.get(base)
        lines.append(f"GET / -> {response.status} {response.text().strip()}")
    # A POST with a bytes body goes out with a Content-Length.
    response = client.request("POST", base + "echo", content=b"hello", headers=[("X-Demo", "1")])
    lines.append(f"POST /echo -> {response.read()!r}")
    # A POST with an iterable body goes out chunked.
    response = client.request("POST", base + "count", content=upload_pieces())
    lines.append(f"POST /count -> {response.text().strip()}")
    # A streamed response, read piece by piece as it arrives.
    with client.get(base + "numbers?n=3") as response:
        pieces = list(response.iter_bytes())
    lines.append(f"GET /numbers -> {b''.join(pieces).split()}")
    return lines


def make_client(cafile: str | None = None, insecure: bool = False) -> HTTPClient:
    """A client; certificates are verified unless *insecure*.

    *cafile* names a PEM file of certificate authorities to trust instead
    of the system's (for a private or test CA).
    """
    if cafile is not None:
        return HTTPClient(verify=ssl.create_default_context(cafile=cafile), timeout=10.0)
    if insecure:
        return HTTPClient(verify=False, timeout=10.0)  # for testing only
    return HTTPClient(timeout=10.0)  # the system's CAs, host name checked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="server base URL, ending in /")
    parser.add_argument("--cafile", help="trust the CAs in this PEM file")
    parser.add_argument("--insecure", action="store_true", help="do not verify certificates")
    args = parser.parse_args()
    try:
        with make_client(args.cafile, args.insecure) as client:
            for line in session(args.base, client):
                print(line)
    except HTTPError as exc:  # refused, timed out, TLS failure, broken HTTP ...
        print(f"failed: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
