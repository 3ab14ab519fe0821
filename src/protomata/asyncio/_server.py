"""An asyncio TCP server: connection limit, TLS, graceful shutdown."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import AsyncIterator

from .._core._ops import ServerShutdown, TimeoutKind
from ..sync._server import listen_tcp
from ._stream import Stream, Timeouts, _StreamProtocol

__all__ = ["TCPServer"]

log = logging.getLogger("protomata.server")


class TCPServer(abc.ABC):
    """Accept TCP connections and run :meth:`handle_connection` in a task each.

    At most *max_connections* are served at once.  Excess connections are
    accepted but wait, unread, until a slot frees (their bytes stay in the
    kernel and our small buffer; nothing is refused).  :meth:`shutdown` (also
    on SIGINT/SIGTERM while :meth:`serve_forever` runs with
    ``handle_signals``) stops accepting, ends idle keep-alive connections and
    gives requests in flight up to *grace* seconds to finish; connections
    still busy after that are cancelled.
    """

    def __init__(
        self,
        host: str | None = "127.0.0.1",
        port: int = 0,
        *,
        max_connections: int = 1000,
        tls_context: ssl.SSLContext | None = None,
        timeouts: Timeouts | None = None,
        reuse_port: bool = False,
        grace: float = 10.0,
    ) -> None:
        #: the listening address ("0.0.0.0" for every address, IPv4 and IPv6)
        self.host = host or "0.0.0.0"
        self.tls_context = tls_context
        self.timeouts = timeouts or Timeouts()
        self.max_connections = max_connections
        self.grace = grace
        self._listener = listen_tcp(host, port, reuse_port=reuse_port)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self.draining = False
        self._server: asyncio.Server | None = None
        self._streams: set[Stream] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._stop: asyncio.Future[None] | None = None
        self._started: asyncio.Event | None = None
        self._done: asyncio.Event | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._tick = 1.0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls_context else 'http'}://{host}:{self.port}/"

    @abc.abstractmethod
    async def handle_connection(self, stream: Stream) -> None:
        """Serve one connection (subclasses implement their protocol here)."""

    async def on_startup(self) -> None:  # noqa: B027 (an optional hook)
        """Called before accepting connections (override to add work)."""

    async def on_shutdown(self) -> None:  # noqa: B027 (an optional hook)
        """Called after the last connection ended (override to add work)."""

    def on_drain(self) -> None:  # noqa: B027 (an optional hook)
        """Called once when a graceful shutdown begins (before idle sessions end)."""

    # -- accepting ---------------------------------------------------------------

    def _protocol_factory(self) -> _StreamProtocol:
        protocol = _StreamProtocol(self._loop)
        protocol.on_made = self._connection_made
        return protocol

    def _connection_made(self, protocol: _StreamProtocol) -> None:
        stream = Stream(protocol, self.timeouts)
        stream.linger = self.timeouts.linger
        stream.swept = True
        stream.draining = self.draining
        self._streams.add(stream)
        task = self._loop.create_task(self._serve_one(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _sweep(self) -> None:
        """Fail the waits whose deadline passed (one timer per server, not per read)."""
        now = self._loop.time()
        for stream in self._streams:
            future = stream.waiting
            if future is not None and stream.deadline <= now and not future.done():
                future.set_exception(TimeoutError("timed out"))
        self._sweeper = self._loop.call_later(self._tick, self._sweep)

    async def _serve_one(self, stream: Stream) -> None:
        slots = self._slots
        assert slots is not None
        try:
            async with slots:
                await self.handle_connection(stream)
        except (OSError, ssl.SSLError, TimeoutError, ServerShutdown):
            pass  # the peer went away or stalled, or we are draining
        except Exception:
            log.exception("error serving a connection from %s", stream.peer)
        finally:
            self._streams.discard(stream)
            if self.draining:
                stream.linger = 0.0  # a server going away does not wait for clients
            await stream.linger_and_close()

    async def start(self) -> None:
        """Run :meth:`on_startup` and begin accepting connections."""
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.max_connections)
        self._stop = self._loop.create_future()
        self._done = asyncio.Event()
        await self.on_startup()
        limits = [t for t in (*self.timeouts.by_kind.values(), self.timeouts.write) if t]
        # Deadlines are checked every tick: timeouts fire at most ~1/8 late.
        self._tick = min(1.0, max(0.01, min(limits, default=8.0) / 8))
        self._sweeper = self._loop.call_later(self._tick, self._sweep)
        self._server = await self._loop.create_server(
            self._protocol_factory,
            sock=self._listener,
            ssl=self.tls_context,
            ssl_handshake_timeout=self.timeouts.by_kind[TimeoutKind.HEAD]
            if self.tls_context
            else None,
            backlog=1024,
        )

    async def serve_forever(self, *, handle_signals: bool = True) -> None:
        """Accept connections until :meth:`request_shutdown` (or a signal), then drain."""
        await self.start()
        loop = self._loop
        installed: list[signal.Signals] = []
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(signum, self.request_shutdown)
                    installed.append(signum)
        assert self._stop is not None and self._done is not None
        if self._started is not None:
            self._started.set()
        try:
            await self._stop
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            try:
                await self._drain(self.grace)
            finally:
                self._done.set()

    def request_shutdown(self) -> None:
        """Ask :meth:`serve_forever` to stop (safe to call more than once)."""
        if not self.draining:
            self.draining = True
            self.on_drain()
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, end idle connections, wait up to *grace* s for the rest."""
        if grace is not None:
            self.grace = grace
        self.request_shutdown()
        if self._done is not None:
            await self._done.wait()

    async def _drain(self, grace: float) -> None:
        if not self.draining:
            self.draining = True
            self.on_drain()
        if self._server is not None:
            self._server.close()
        for stream in list(self._streams):
            stream.draining = True
            stream.wake_if_idle()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        with contextlib.suppress(OSError):
            self._listener.close()
        await self.on_shutdown()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TCPServer]:
        """Serve in a background task for the duration of an ``async with`` block."""
        self._started = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self.serve_forever(handle_signals=False))
        started = asyncio.ensure_future(self._started.wait())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            started.cancel()
            task.result()  # startup failed: raise its error
        try:
            yield self
        finally:
            await self.shutdown()
            await task
