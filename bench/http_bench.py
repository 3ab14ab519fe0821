"""HTTP/1.1 parsing and serialization: protomata vs h11 (and httptools).

Cases (issue targets in brackets):

a. server parse of a ~500-byte browser GET with 10 headers, on a fresh
   connection, up to EndOfMessage [>= 5x h11, >= 1/3 of httptools]
a2. the same with every field line new, so that protomata's tables of
   lines seen before never help (the worst case for it)
b. a full in-memory keep-alive cycle: client sends a request, server parses
   it and sends a 1 KiB response, client parses it [>= 4x h11]
b2. the same with every header value new in every cycle
c. a 10 MB chunked upload streamed through client and server machines in
   64 KiB pieces, with peak traced memory for several body sizes [memory
   independent of body size]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tracemalloc
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import h11

import protomata.http as pm

try:
    import httptools
except ImportError:  # optional peer
    httptools = None

from _common import compare, report

BROWSER_GET = (
    b"GET /wiki/Hypertext_Transfer_Protocol?action=view HTTP/1.1\r\n"
    b"Host: en.wikipedia.org\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=abcdef0123456789; theme=dark; lang=en\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"\r\n"
)


# -- case a: server-side parse -------------------------------------------------


def parse_get(mod: ModuleType) -> Any:
    def run() -> Any:
        conn = mod.Connection(mod.SERVER)
        conn.receive_data(BROWSER_GET)
        request = conn.next_event()
        conn.next_event()  # EndOfMessage
        return request

    return run


class _HttptoolsCollector:
    """What a server built on httptools does: collect URL and headers."""

    __slots__ = ("complete", "headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_message_complete(self) -> None:
        self.complete = True


def parse_get_httptools() -> Any:
    collector = _HttptoolsCollector()
    parser = httptools.HttpRequestParser(collector)
    parser.feed_data(BROWSER_GET)
    parser.get_method()
    parser.get_http_version()
    return collector


# -- case a2: the same parse with every field line new -------------------------
#
# protomata keeps bounded tables of field lines and header pairs it has
# validated (docs/performance.rst).  Repeating one request finds every line
# there but the Cookie (secrets are never kept); this case shows the other
# extreme, a stream of heads whose every line is new, so the tables never
# help.

_VARIANTS = 4096  # far more lines than the tables keep


def _fresh_get(n: int) -> bytes:
    lines = BROWSER_GET.split(b"\r\n")
    out = [lines[0], b"Host: h%d.wikipedia.org" % n]
    out += [
        line + b", v%d" % n if line.startswith(b"Connection") else line + b" %d" % n
        for line in lines[2:-2]
    ]
    return b"\r\n".join(out) + b"\r\n\r\n"


FRESH_GETS = [_fresh_get(n) for n in range(_VARIANTS)]


def parse_fresh_get(mod: ModuleType) -> Any:
    heads = iter(FRESH_GETS * 1000)

    def run() -> Any:
        conn = mod.Connection(mod.SERVER)
        conn.receive_data(next(heads))
        request = conn.next_event()
        conn.next_event()  # EndOfMessage
        return request

    return run


def parse_fresh_get_httptools() -> Any:
    heads = iter(FRESH_GETS * 1000)

    def run() -> Any:
        collector = _HttptoolsCollector()
        parser = httptools.HttpRequestParser(collector)
        parser.feed_data(next(heads))
        parser.get_method()
        parser.get_http_version()
        return collector

    return run


# -- case b: full cycle --------------------------------------------------------

BODY_1K = bytes(range(256)) * 4


REQUEST_HEADERS = [("Host", "example.com"), ("User-Agent", "bench/1.0"), ("Accept", "*/*")]
RESPONSE_HEADERS = [
    ("Content-Type", "application/octet-stream"),
    ("Content-Length", str(len(BODY_1K))),
    ("Server", "bench"),
]
Lists = tuple[list[tuple[str, str]], list[tuple[str, str]]]


def _cycle(mod: ModuleType, header_lists: Iterator[Lists]) -> Any:
    client = mod.Connection(mod.CLIENT)
    server = mod.Connection(mod.SERVER)

    def run() -> Any:
        request_headers, response_headers = next(header_lists)
        server.receive_data(
            client.send(mod.Request(method="GET", target="/data", headers=request_headers))
            + client.send(mod.EndOfMessage())
        )
        server.next_event()
        server.next_event()
        out = server.send(mod.Response(status_code=200, headers=response_headers))
        out += server.send(mod.Data(data=BODY_1K))
        out += server.send(mod.EndOfMessage())
        client.receive_data(out)
        response = client.next_event()
        client.next_event()
        client.next_event()
        client.start_next_cycle()
        server.start_next_cycle()
        return response

    return run


def full_cycle(mod: ModuleType) -> Any:
    return _cycle(mod, itertools.repeat((REQUEST_HEADERS, RESPONSE_HEADERS)))


def full_cycle_fresh(mod: ModuleType) -> Any:
    """Case b with every header value new in every cycle (cold tables)."""
    variants = [
        (
            [("Host", f"h{n}.example.com"), ("User-Agent", f"bench/{n}"), ("Accept", f"*/{n}")],
            [
                ("Content-Type", f"application/x-{n}"),
                ("Content-Length", str(len(BODY_1K))),
                ("Server", f"bench/{n}"),
            ],
        )
        for n in range(_VARIANTS)
    ]
    return _cycle(mod, itertools.cycle(variants))


# -- case c: streamed chunked upload -------------------------------------------

PIECE = b"x" * 65536


def chunked_upload(mod: ModuleType, total: int) -> Any:
    def run() -> int:
        client = mod.Connection(mod.CLIENT)
        server = mod.Connection(mod.SERVER)
        server.receive_data(
            client.send(
                mod.Request(
                    method="PUT",
                    target="/upload",
                    headers=[("Host", "example.com"), ("Transfer-Encoding", "chunked")],
                )
            )
        )
        received = 0
        sent = 0
        while True:
            if sent < total:
                server.receive_data(client.send(mod.Data(data=PIECE)))
                sent += len(PIECE)
            else:
                server.receive_data(client.send(mod.EndOfMessage()))
            while True:
                event = server.next_event()
                if event is mod.NEED_DATA:
                    break
                if type(event) is mod.Data:
                    received += len(event.data)
                elif type(event) is mod.EndOfMessage:
                    return received

    return run


def peak_memory(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    print(f"Python {sys.version.split()[0]}, h11 {h11.__version__}", end="")
    print(f", httptools {httptools.__version__}" if httptools else ", httptools not installed")

    cases: dict[str, Any] = {"protomata": parse_get(pm), "h11": parse_get(h11)}
    if httptools is not None:
        cases["httptools"] = parse_get_httptools
    results = compare(cases, 20000 // scale)
    report("a. server parse of a 500-byte browser GET (fresh connection)", results)

    cases = {"protomata": parse_fresh_get(pm), "h11": parse_fresh_get(h11)}
    if httptools is not None:
        cases["httptools"] = parse_fresh_get_httptools()
    results = compare(cases, 20000 // scale)
    report("a2. the same parse, every field line new (protomata's tables never help)", results)

    results = compare({"protomata": full_cycle(pm), "h11": full_cycle(h11)}, 5000 // scale)
    report("b. full keep-alive cycle, 1 KiB response body", results)

    results = compare(
        {"protomata": full_cycle_fresh(pm), "h11": full_cycle_fresh(h11)}, 5000 // scale
    )
    report("b2. the same cycle, every header value new (protomata's tables never help)", results)

    total = 10 * 1024 * 1024
    results = compare(
        {"protomata": chunked_upload(pm, total), "h11": chunked_upload(h11, total)},
        1,
        rounds=5 if not args.quick else 1,
    )
    report("c. 10 MB chunked upload in 64 KiB pieces", results)
    for name, mod in (("protomata", pm), ("h11", h11)):
        peaks = [peak_memory(chunked_upload(mod, size)) for size in (1 << 20, 10 << 20, 50 << 20)]
        print(
            f"  peak traced memory, {name:<9}: "
            + ", ".join(
                f"{size} MB body: {peak / 1024:.0f} KiB"
                for size, peak in zip((1, 10, 50), peaks, strict=True)
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
