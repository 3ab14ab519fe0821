"""ASGI server cost per request without sockets: protomata against uvicorn's protocols.

    python bench/asgi_inprocess.py [--requests 60000] [--rounds 5] [--quick]

The wrk benchmark (http_server_bench.py) is the figure the issue asks for,
but on a shared two-core machine it mixes the servers' own cost with wrk,
the kernel's loopback path and whatever else runs.  This one drives each
server's connection object directly, in one process, on one event loop:

- protomata: ``protomata.asyncio.ASGIServer``'s connections (the same
  protocol objects its listener creates);
- uvicorn: ``H11Protocol`` and ``HttpToolsProtocol`` (what ``--http h11`` and
  ``--http httptools`` run), with the Date and Server fields uvicorn's server
  loop normally adds.

Each of 50 connections gets keep-alive ``GET /`` requests through
``data_received`` and waits until its transport has been handed the whole
13-byte response (bench_asgi_app.py), then sends the next.  The transport is
a stand-in that keeps what is written.  Rounds alternate between the
servers; the best round counts; ratios are protomata's speed relative to
each peer.  What this leaves out is the same for every server: epoll, recv
and send, one of each per request for protomata and httptools (uvicorn h11
writes head and body separately).  For instruction counts instead of time,
run one server under ``valgrind --tool=callgrind`` with ``--only NAME``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_asgi_app import BODY, app

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
CONNECTIONS = 50


class Transport(asyncio.Transport):
    """Keeps what the server writes; wakes the client once a response is complete."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.waiter: asyncio.Future[None] | None = None
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))
        waiter = self.waiter
        if waiter is not None and data.endswith(BODY) and not waiter.done():
            waiter.set_result(None)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def _client(protocol: asyncio.Protocol, transport: Transport, requests: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(requests):
        transport.written.clear()
        transport.waiter = loop.create_future()
        protocol.data_received(REQUEST)
        await transport.waiter
    if not transport.written[0].startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"unexpected response {transport.written[0][:40]!r}")


async def _drive(factory: Callable[[], asyncio.Protocol], requests: int) -> float:
    """Seconds per request over CONNECTIONS connections made by *factory*."""
    pairs = []
    for _ in range(CONNECTIONS):
        protocol, transport = factory(), Transport()
        protocol.connection_made(transport)
        pairs.append((protocol, transport))
    per_connection = max(1, requests // CONNECTIONS)
    start = time.perf_counter()
    await asyncio.gather(*(_client(p, t, per_connection) for p, t in pairs))
    elapsed = time.perf_counter() - start
    for protocol, transport in pairs:
        transport.closing = True
        protocol.connection_lost(None)
    await asyncio.sleep(0)
    return elapsed / (per_connection * CONNECTIONS)


def _protomata() -> Callable[[int], Any]:
    from protomata.asyncio import ASGIServer

    async def run(requests: int) -> float:
        server = ASGIServer(app, "127.0.0.1", 0, lifespan="off", access_log=False)
        async with server.running():
            return await _drive(server._protocol_factory, requests)

    return run


def _uvicorn(http: str) -> Callable[[int], Any]:
    from email.utils import formatdate

    from uvicorn.config import Config
    from uvicorn.server import ServerState

    if http == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol as Protocol
    else:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Protocol
    config = Config(app, http=http, lifespan="off", access_log=False, log_level="warning")
    config.load()

    async def run(requests: int) -> float:
        state = ServerState()
        # What uvicorn's main loop keeps up to date (once a second) while serving.
        date = formatdate(time.time(), usegmt=True).encode()
        state.default_headers = [(b"date", date), *config.encoded_headers]

        def factory() -> asyncio.Protocol:
            return Protocol(config=config, server_state=state, app_state={})  # type: ignore[no-any-return]

        return await _drive(factory, requests)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", help="run one server once (for callgrind): protomata, h11, ...")
    parser.add_argument("--quick", action="store_true", help="5000 requests, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.rounds = 5000, 2
    servers: dict[str, Callable[[int], Any]] = {"protomata": _protomata()}
    try:
        servers["uvicorn h11"] = _uvicorn("h11")
        servers["uvicorn httptools"] = _uvicorn("httptools")
    except ImportError as exc:
        print(f"uvicorn or httptools is missing ({exc}): protomata alone")
    if args.only:
        name = next(n for n in servers if args.only in n)
        asyncio.run(servers[name](args.requests))
        return 0
    best = {name: float("inf") for name in servers}
    for run in servers.values():  # warm-up
        asyncio.run(run(2000))
    for _ in range(args.rounds):
        for name, run in servers.items():
            best[name] = min(best[name], asyncio.run(run(args.requests)))
    print(f"ASGI hello-world, {CONNECTIONS} keep-alive connections, no sockets (best of rounds)")
    for name, seconds in best.items():
        ratio = f"   protomata/{name}: {seconds / best['protomata']:.2f}x"
        if name == "protomata":
            ratio = ""
        print(f"  {name:<18} {seconds * 1e6:7.2f} us/request{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
