"""A trio TCP server: listeners, connection limit, TLS, graceful shutdown."""

from __future__ import annotations

import abc
import contextlib
import logging
import signal
import socket
import ssl
import threading
from collections.abc import AsyncIterator

import trio

from .._core._ops import ServerShutdown, TimeoutKind
from ..sync._server import listen_tcp
from ..sync._stream import readable_now
from ._stream import Stream, Timeouts

__all__ = ["TCPServer", "listen_sockets"]

log = logging.getLogger("protomata.server")


def listen_sockets(
    host: str | None, port: int, *, reuse_port: bool = False, backlog: int = 1024
) -> list[socket.socket]:
    """Listening sockets for *host*:*port*.

    A host name or address gives one socket (IPv6 when it contains ':');
    ``None`` or ``""`` listens on every IPv4 and IPv6 address (two sockets
    on the same port where the machine has IPv6).
    """
    if host:
        return [listen_tcp(host, port, reuse_port=reuse_port, backlog=backlog)]
    first = listen_tcp("0.0.0.0", port, reuse_port=reuse_port, backlog=backlog)
    if not socket.has_ipv6:
        return [first]
    port = first.getsockname()[1]
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("::", port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        return [first]  # no usable IPv6 here: IPv4 alone
    return [first, sock]


class _ServerStream(Stream):
    """A stream that a draining server can end while it waits for a request."""

    def __init__(
        self,
        server: TCPServer,
        stream: trio.SocketStream,
        timeouts: Timeouts,
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(stream, timeouts, tls)
        self._server = server
        self._idle_scope: trio.CancelScope | None = None
        #: accepted before any shutdown began and nothing read yet: a request
        #: already waiting on it is served even if the server drains first
        self._early = not server.draining

    @property
    def idle(self) -> bool:
        """Waiting for the next request on a keep-alive connection."""
        return self._idle_scope is not None

    async def aclose(self) -> None:
        """Close; a plain connection first shuts down its sending side, then
        reads and discards what the client still sends, until it closes or
        ``timeouts.linger`` seconds pass (see :class:`Timeouts`)."""
        linger = self.timeouts.linger
        if (
            self.closed
            or linger <= 0
            or self._server.draining
            or not isinstance(self.stream, trio.SocketStream)
        ):
            await super().aclose()
            return
        try:
            with trio.move_on_after(1.0):
                await self.flush()
                await self.stream.send_eof()
            with trio.move_on_after(linger):
                while await self.stream.receive_some(65536):
                    pass
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # reset or closed: nothing more to wait for
        finally:
            await super().aclose()

    def end_idle_wait(self) -> None:
        """Make a wait for the next request end with :class:`ServerShutdown`."""
        if self._idle_scope is not None:
            self._idle_scope.cancel()

    async def receive_some(self, max_bytes: int = 65536, timeout: str = TimeoutKind.READ) -> bytes:
        if timeout != TimeoutKind.IDLE:
            return await super().receive_some(max_bytes, timeout)
        early, self._early = self._early, False
        if self._server.draining and not (early and readable_now(self.socket_stream.socket)):
            raise ServerShutdown
        await self.flush()
        with trio.CancelScope() as scope:
            self._idle_scope = scope
            try:
                return await super().receive_some(max_bytes, timeout)
            finally:
                self._idle_scope = None
        raise ServerShutdown  # the server is draining: no further request is read


class TCPServer(abc.ABC):
    """Accept TCP connections and run :meth:`handle_connection` in a task each.

    The listening socket is bound at construction (so :attr:`port` is known
    at once).  At most *max_connections* are served at once; more wait in
    the listen backlog.  :meth:`request_shutdown` (also SIGINT/SIGTERM
    while :meth:`serve_forever` runs with ``handle_signals`` in the main
    thread) stops accepting, ends idle keep-alive connections and gives
    requests in flight up to *grace* seconds to finish; connections still
    busy then are cancelled.  *host* ``None`` listens on all IPv4 and IPv6
    addresses.
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
        self.host = host or "0.0.0.0"
        self.tls_context = tls_context
        self.timeouts = timeouts or Timeouts()
        self.max_connections = max_connections
        self.grace = grace
        self._sockets = listen_sockets(host, port, reuse_port=reuse_port)
        self.port: int = self._sockets[0].getsockname()[1]
        self.draining = False
        self._streams: set[_ServerStream] = set()
        self._accept_scope = trio.CancelScope()
        self._connections: trio.Nursery | None = None
        #: a nursery for the server's own background tasks while it serves,
        #: from :meth:`on_startup` to :meth:`on_shutdown` (None otherwise)
        self.services: trio.Nursery | None = None
        self._done: trio.Event | None = None

    @property
    def url(self) -> str:
        """The server's base URL (``http://127.0.0.1:PORT/``)."""
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

    # -- serving -----------------------------------------------------------------

    async def serve_forever(
        self,
        *,
        handle_signals: bool = True,
        task_status: trio.TaskStatus[TCPServer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections until :meth:`request_shutdown` (or a signal), then drain.

        Start it with ``await nursery.start(server.serve_forever)`` to learn
        when it accepts (the started value is the server itself).
        """
        self._done = trio.Event()
        listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(s)) for s in self._sockets]
        failure: Exception | None = None
        try:
            async with trio.open_nursery() as services:
                self.services = services
                try:
                    await self.on_startup()
                    await self._serve(listeners, handle_signals, task_status)
                    await self.on_shutdown()
                except Exception as exc:  # re-raised below, not wrapped in a group
                    failure = exc
                finally:
                    services.cancel_scope.cancel()  # whatever the hooks left running
            if failure is not None:
                raise failure
        finally:
            self.services = None
            self._connections = None
            for sock in self._sockets:
                sock.close()
            self._done.set()

    async def _serve(
        self,
        listeners: list[trio.SocketListener],
        handle_signals: bool,
        task_status: trio.TaskStatus[TCPServer],
    ) -> None:
        limiter = trio.CapacityLimiter(self.max_connections)
        async with trio.open_nursery() as connections:
            self._connections = connections
            with self._accept_scope:
                async with trio.open_nursery() as accepting:
                    if handle_signals and threading.current_thread() is threading.main_thread():
                        await accepting.start(self._watch_signals)
                    for listener in listeners:
                        accepting.start_soon(self._accept_loop, listener, limiter, connections)
                    task_status.started(self)
            # no longer accepting: let the rest finish within the grace time
            self.request_shutdown()
            for listener in listeners:
                with contextlib.suppress(OSError, trio.ClosedResourceError):
                    await listener.aclose()

    async def _watch_signals(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for _ in signals:
                self.request_shutdown()
                return  # a second signal gets trio's default: KeyboardInterrupt

    async def _accept_loop(
        self, listener: trio.SocketListener, limiter: trio.CapacityLimiter, nursery: trio.Nursery
    ) -> None:
        while True:
            borrower = object()
            await limiter.acquire_on_behalf_of(borrower)
            try:
                tcp = await listener.accept()
            except OSError as exc:  # out of file descriptors, say: back off
                limiter.release_on_behalf_of(borrower)
                log.warning("accept failed: %s", exc)
                await trio.sleep(0.1)
                continue
            except BaseException:
                limiter.release_on_behalf_of(borrower)
                raise
            nursery.start_soon(self._serve_one, tcp, limiter, borrower)

    async def _serve_one(
        self, tcp: trio.SocketStream, limiter: trio.CapacityLimiter, borrower: object
    ) -> None:
        stream = _ServerStream(self, tcp, self.timeouts, self.tls_context)
        self._streams.add(stream)
        try:
            if self.tls_context is not None:
                await stream.start_tls(server_side=True)
            await self.handle_connection(stream)
        except (
            OSError,
            TimeoutError,
            ServerShutdown,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
        ):
            pass  # the peer went away, stalled or failed the handshake, or we drain
        except Exception:  # a bug must not bring the whole server down
            log.exception("error serving a connection")
        finally:
            self._streams.discard(stream)
            await stream.aclose()
            limiter.release_on_behalf_of(borrower)

    # -- stopping ------------------------------------------------------------------

    def request_shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, end idle connections, cancel the rest after *grace* s.

        Call it from inside the trio run serving this server; it returns at
        once and :meth:`serve_forever` returns when the connections are done.
        """
        if grace is not None:
            self.grace = grace
        first = not self.draining
        self.draining = True
        if first:
            self.on_drain()
        self._accept_scope.cancel()
        for stream in list(self._streams):
            stream.end_idle_wait()
        if first and self._connections is not None:
            self._connections.cancel_scope.deadline = trio.current_time() + self.grace

    async def shutdown(self, grace: float | None = None) -> None:
        """:meth:`request_shutdown` and wait until :meth:`serve_forever` has returned."""
        self.request_shutdown(grace)
        if self._done is not None:
            await self._done.wait()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TCPServer]:
        """Serve in a background task for the duration of an ``async with`` block.

        An exception from the block propagates as itself (not wrapped in an
        exception group).
        """
        failure: Exception | None = None
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(self._serve_quietly)
            except Exception as exc:  # startup failed
                failure = exc
            else:
                try:
                    yield self
                except Exception as exc:
                    failure = exc
                finally:
                    self.request_shutdown()
        if failure is not None:
            raise failure

    async def _serve_quietly(
        self, *, task_status: trio.TaskStatus[TCPServer] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await self.serve_forever(handle_signals=False, task_status=task_status)
