"""Adapter-agnostic helpers: run any adapter's server or client from a test.

A server runs in a background thread (with its own event loop for asyncio
and trio) and is reached through its URL; a client runs its loop in the
test thread (``asyncio.run`` / ``trio.run``).  Every adapter serves the same
small application (see :func:`app_response`), so the matrix tests compare
like with like.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

ADAPTERS = ("sync", "asyncio", "trio")
HOST = "127.0.0.1"
TIMEOUT = 10.0
STREAM_CHUNKS = [b"chunk-%d\n" % i for i in range(5)]
SLOW_SECONDS = 1.0
BIG = bytes(range(256)) * (4 * 4096)  # 4 MiB


def adapter_module(name: str) -> ModuleType:
    """``protomata.<name>``, or skip the test when that adapter is missing."""
    if name == "trio":
        pytest.importorskip("trio", reason="trio is not installed")
    module = pytest.importorskip(
        f"protomata.{name}", reason=f"the protomata.{name} adapter is not available"
    )
    if getattr(module, "__file__", None) is None:  # a namespace package: no __init__.py yet
        pytest.skip(f"the protomata.{name} adapter is not available (no __init__.py)")
    return module


# --- the application every server runs ------------------------------------


@dataclass
class Recorder:
    """What a running server saw: client addresses per request, log lines."""

    peers: list[tuple[str, int]] = field(default_factory=list)
    #: the client's TLS certificate per request (None: none was asked for)
    certificates: list[Any] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


def app_response(
    method: bytes, path: bytes, body: bytes, client: tuple[str, int], headers: Any
) -> tuple[int, list[tuple[bytes, bytes]], bytes | None]:
    """(status, headers, body) for a request; body None means "stream STREAM_CHUNKS".

    Raises RuntimeError for ``/error`` so the server answers 500.
    """
    text = [(b"content-type", b"text/plain")]
    if path == b"/hello":
        return 200, text, b"hello"
    if path == b"/peer":
        return 200, text, f"{client[0]}:{client[1]}".encode()
    if path == b"/echo":
        te = headers.get(b"transfer-encoding") or b"-"
        return 200, [*text, (b"x-method", method), (b"x-request-te", te)], body
    if path == b"/stream":
        return 200, text, None
    if path == b"/error":
        raise RuntimeError("the handler failed on purpose")
    if path == b"/slow":
        return 200, text, b"slow done"
    if path == b"/big":
        return 200, [(b"content-type", b"application/octet-stream")], BIG
    if path == b"/redirect":
        return 302, [(b"location", b"/hello")], b""
    if path == b"/redirect307":
        return 307, [(b"location", b"/echo")], b""
    return 404, text, b"not found"


def sync_handler(recorder: Recorder) -> Callable[[Any], Any]:
    from protomata.sync import ResponseSpec

    def handler(request: Any) -> Any:
        recorder.peers.append(request.client)
        recorder.certificates.append(request.peer_certificate)
        body = request.read()
        recorder.bodies.append(body)
        if request.path == b"/slow":
            time.sleep(SLOW_SECONDS)
        status, headers, content = app_response(
            request.method, request.path, body, request.client, request.headers
        )
        if content is None:
            return ResponseSpec(status, headers, None, stream=iter(STREAM_CHUNKS))
        return ResponseSpec(status, headers, content)

    return handler


def _async_handler(
    recorder: Recorder, sleep: Callable[[float], Any], response_spec: Any
) -> Callable[[Any], Any]:
    """The same handler for the asyncio and trio servers (*sleep* is the loop's)."""

    async def chunks() -> Any:
        for chunk in STREAM_CHUNKS:
            await sleep(0)
            yield chunk

    async def handler(request: Any) -> Any:
        recorder.peers.append(request.client)
        recorder.certificates.append(request.peer_certificate)
        body = await request.read()
        recorder.bodies.append(body)
        if request.path == b"/slow":
            await sleep(SLOW_SECONDS)
        status, headers, content = app_response(
            request.method, request.path, body, request.client, request.headers
        )
        if content is None:
            return response_spec(status, headers, None, stream=chunks())
        return response_spec(status, headers, content)

    return handler


def asyncio_handler(recorder: Recorder) -> Callable[[Any], Any]:
    from protomata.asyncio import ResponseSpec

    return _async_handler(recorder, asyncio.sleep, ResponseSpec)


def trio_handler(recorder: Recorder) -> Callable[[Any], Any]:
    import trio

    from protomata.trio import ResponseSpec

    return _async_handler(recorder, trio.sleep, ResponseSpec)


HANDLERS = {"sync": sync_handler, "asyncio": asyncio_handler, "trio": trio_handler}


# --- servers in a background thread ----------------------------------------


@dataclass
class RunningServer:
    """A server running in a background thread."""

    adapter: str
    url: str
    port: int
    recorder: Recorder
    server: Any
    stop: Callable[[], None]


@contextlib.contextmanager
def run_server(
    adapter: str,
    *,
    handler: Callable[[Any], Any] | None = None,
    timeouts: dict[str, float] | None = None,
    tls_context: ssl.SSLContext | None = None,
    server_class: str = "HTTPServer",
    host: str = HOST,
    **kwargs: Any,
) -> Iterator[RunningServer]:
    """Serve the test application with *adapter*'s HTTPServer on *host* (127.0.0.1).

    *timeouts* are keyword arguments of the adapter's ``Timeouts`` (``read``
    first positional).  Extra *kwargs* go to the server's constructor;
    *server_class* names another server class of the adapter (``ASGIServer``
    with an ASGI app as *handler*).
    """
    module = adapter_module(adapter)
    recorder = Recorder()
    if handler is None:
        handler = HANDLERS[adapter](recorder)
    options: dict[str, Any] = dict(kwargs)
    options["access_log"] = recorder.log.append
    options["server_class"] = getattr(module, server_class)
    options["host"] = host
    if tls_context is not None:
        options["tls_context"] = tls_context
    if timeouts is not None:
        t = dict(timeouts)
        options["timeouts"] = module.Timeouts(t.pop("read", 10.0), **t)
    starter = {"sync": _run_sync, "asyncio": _run_asyncio, "trio": _run_trio}[adapter]
    with starter(module, handler, options, recorder) as running:
        yield running


@contextlib.contextmanager
def _run_sync(
    module: ModuleType, handler: Any, options: dict[str, Any], recorder: Recorder
) -> Iterator[RunningServer]:
    server_class = options.pop("server_class")
    server = server_class(handler, options.pop("host"), 0, **options)
    with server.running():
        yield RunningServer("sync", server.url, server.port, recorder, server, server.shutdown)


def _server_url(server: Any, tls: bool) -> tuple[str, int]:
    port = getattr(server, "port", None)
    url = getattr(server, "url", None)
    if port is None:
        port = server.sockets[0].getsockname()[1]
    if url is None:
        url = f"{'https' if tls else 'http'}://{HOST}:{port}/"
    return str(url), int(port)


@contextlib.contextmanager
def _run_asyncio(
    module: ModuleType, handler: Any, options: dict[str, Any], recorder: Recorder
) -> Iterator[RunningServer]:
    started: queue.Queue[Any] = queue.Queue()
    failures: list[BaseException] = []
    server_class = options.pop("server_class")
    host = options.pop("host")

    def main() -> None:
        async def serve() -> None:
            try:
                server = server_class(handler, host, 0, **options)
                async with server.running():
                    stop = asyncio.Event()
                    started.put((server, asyncio.get_running_loop(), stop))
                    await stop.wait()
            except BaseException as exc:  # reported to the test thread
                failures.append(exc)
                started.put(exc)

        asyncio.run(serve())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    item = started.get(timeout=TIMEOUT)
    if isinstance(item, BaseException):
        raise item
    server, loop, stop_event = item
    url, port = _server_url(server, "tls_context" in options)

    def stop() -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(stop_event.set)

    try:
        yield RunningServer("asyncio", url, port, recorder, server, stop)
    finally:
        stop()
        thread.join(TIMEOUT + 5)
        assert not thread.is_alive(), "the asyncio server did not shut down"
    if failures:
        raise failures[0]


@contextlib.contextmanager
def _run_trio(
    module: ModuleType, handler: Any, options: dict[str, Any], recorder: Recorder
) -> Iterator[RunningServer]:
    import trio

    started: queue.Queue[Any] = queue.Queue()
    failures: list[BaseException] = []
    server_class = options.pop("server_class")
    host = options.pop("host")

    def main() -> None:
        async def serve() -> None:
            try:
                server = server_class(handler, host, 0, **options)
                async with trio.open_nursery() as nursery:
                    await nursery.start(server.serve_forever)
                    started.put((server, trio.lowlevel.current_trio_token(), nursery))
            except BaseException as exc:  # reported to the test thread
                failures.append(exc)
                started.put(exc)

        trio.run(serve)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    item = started.get(timeout=TIMEOUT)
    if isinstance(item, BaseException):
        raise item
    server, token, _nursery = item
    url, port = _server_url(server, "tls_context" in options)

    def stop() -> None:
        with contextlib.suppress(trio.RunFinishedError):
            trio.from_thread.run(server.shutdown, trio_token=token)

    try:
        yield RunningServer("trio", url, port, recorder, server, stop)
    finally:
        stop()
        thread.join(TIMEOUT + 5)
        assert not thread.is_alive(), "the trio server did not shut down"
    if failures:
        raise failures[0]


# --- clients in the test thread ---------------------------------------------


@dataclass
class Call:
    """One request to make: method, URL, headers and a body (bytes or a list, sent chunked)."""

    method: str
    url: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content: bytes | list[bytes] | None = None
    stream: bool = False  # read the body piece by piece


@dataclass
class Result:
    """What a client got back."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes
    http_version: bytes
    pieces: int = 1


def _result(response: Any, body: bytes, pieces: int = 1) -> Result:
    headers = {bytes(k).lower(): bytes(v) for k, v in response.headers}
    return Result(response.status, headers, body, response.http_version, pieces)


def fetch(adapter: str, calls: list[Call], **client_options: Any) -> list[Result]:
    """Make *calls* in order with one *adapter* HTTPClient (so it may reuse connections)."""
    module = adapter_module(adapter)
    client_options.setdefault("timeout", TIMEOUT)
    return {"sync": _fetch_sync, "asyncio": _fetch_asyncio, "trio": _fetch_trio}[adapter](
        module, calls, client_options
    )


def _fetch_sync(module: ModuleType, calls: list[Call], options: dict[str, Any]) -> list[Result]:
    results = []
    with module.HTTPClient(**options) as client:
        for c in calls:
            content = iter(c.content) if isinstance(c.content, list) else c.content
            response = client.request(c.method, c.url, headers=c.headers, content=content)
            if c.stream:
                pieces = list(response.iter_bytes())
                results.append(_result(response, b"".join(pieces), len(pieces)))
            else:
                results.append(_result(response, response.read()))
    return results


async def _agen(items: list[bytes], sleep: Callable[[float], Any]) -> Any:
    for item in items:
        await sleep(0)
        yield item


async def _fetch_async(
    module: ModuleType, calls: list[Call], options: dict[str, Any], sleep: Any
) -> list[Result]:
    results = []
    client = module.HTTPClient(**options)
    async with client:
        for c in calls:
            content: Any = c.content
            if isinstance(content, list):
                content = _agen(content, sleep)
            response = await client.request(c.method, c.url, headers=c.headers, content=content)
            if c.stream:
                pieces = [piece async for piece in response.iter_bytes()]
                results.append(_result(response, b"".join(pieces), len(pieces)))
            else:
                results.append(_result(response, await response.read()))
    return results


def _fetch_asyncio(module: ModuleType, calls: list[Call], options: dict[str, Any]) -> list[Result]:
    return asyncio.run(asyncio.wait_for(_fetch_async(module, calls, options, asyncio.sleep), 30))


def _fetch_trio(module: ModuleType, calls: list[Call], options: dict[str, Any]) -> list[Result]:
    import trio

    async def main() -> list[Result]:
        with trio.fail_after(30):
            return await _fetch_async(module, calls, options, trio.sleep)

    return trio.run(main)


def http_error(adapter: str) -> type[Exception]:
    """The adapter's HTTPError class."""
    error: type[Exception] = adapter_module(adapter).HTTPError
    return error
