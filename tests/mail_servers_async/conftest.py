"""Run the asyncio and trio mail servers in a background thread, each with its own loop.

The tests drive them with the blocking stdlib clients (smtplib, poplib) in
the test thread; every test runs once per adapter.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from protomata.sync._stream import Timeouts

#: how long starting or stopping a server may take (seconds)
STARTUP_TIMEOUT = 10.0

ADAPTERS = [
    "asyncio",
    pytest.param(
        "trio",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("trio") is None, reason="trio is not installed"
        ),
    ),
]


@contextmanager
def _serve_asyncio(server: Any) -> Iterator[Any]:
    ready = threading.Event()
    failure: list[BaseException] = []
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        box["thread"] = threading.current_thread()
        box["loop"] = asyncio.get_running_loop()
        box["stop"] = stop
        async with server.running():
            ready.set()
            await stop.wait()

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert ready.wait(STARTUP_TIMEOUT)
    if failure:
        raise failure[0]
    server.test_loop_thread = box["thread"]
    try:
        yield server
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(STARTUP_TIMEOUT)
        assert not thread.is_alive()
    if failure:
        raise failure[0]


@contextmanager
def _serve_trio(server: Any) -> Iterator[Any]:
    import trio

    ready = threading.Event()
    failure: list[BaseException] = []
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = trio.Event()
        box["thread"] = threading.current_thread()
        box["token"] = trio.lowlevel.current_trio_token()
        box["stop"] = stop
        async with server.running():
            ready.set()
            await stop.wait()

    def target() -> None:
        try:
            trio.run(main)
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert ready.wait(STARTUP_TIMEOUT)
    if failure:
        raise failure[0]
    server.test_loop_thread = box["thread"]
    try:
        yield server
    finally:
        box["token"].run_sync_soon(box["stop"].set)
        thread.join(STARTUP_TIMEOUT)
        assert not thread.is_alive()
    if failure:
        raise failure[0]


class Adapter:
    """One adapter's mail server classes, its Timeouts and a way to run a server."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "asyncio":
            from protomata.asyncio import _mailservers

            self._serve: Callable[[Any], Any] = _serve_asyncio
        else:
            from protomata.trio import _mailservers  # type: ignore[no-redef]

            self._serve = _serve_trio
        self.SMTPServer: Any = _mailservers.SMTPServer
        self.POP3Server: Any = _mailservers.POP3Server
        self.Timeouts: Any = Timeouts  # both adapters use the blocking one's Timeouts
        #: the thread running the event loop of the server last served
        self.loop_thread: threading.Thread | None = None

    @contextmanager
    def serve(self, server: Any) -> Iterator[Any]:
        """Run *server* in a background thread with its own event loop."""
        with self._serve(server) as served:
            self.loop_thread = served.test_loop_thread
            yield served

    def off_loop(self, threads: list[threading.Thread]) -> bool:
        """Whether every one of *threads* is a worker, not the event loop's thread."""
        return all(t is not self.loop_thread and t is not threading.main_thread() for t in threads)


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> Adapter:
    """The asyncio, then the trio adapter."""
    return Adapter(request.param)
