"""asyncio streams built on a bare :class:`asyncio.Protocol`, with timeouts.

Theory of operation
-------------------
:class:`_StreamProtocol` collects received data in a list and wakes at most
one waiting reader through a future; there is no ``StreamReader`` layer.
It is a buffered protocol: the transport reads into one 256 KiB buffer per
thread (as much as asyncio's own reads take), and only the bytes that
arrived are copied out.  (A plain protocol gets a fresh 256 KiB ``bytes``
from every ``recv``, which glibc serves with ``mmap``, ``mremap`` and
``munmap``; the SMTP benchmark spent more time on that than on parsing,
docs/performance.rst.)
Writes go straight to the transport.  :meth:`Stream.write` only buffers,
so that the pieces of one response (head, body, chunk terminator) leave
in one ``transport.write``; :meth:`Stream.flush` hands them over, and the
runner flushes before it waits for anything.  Timeouts are one
``loop.call_later`` per wait that actually blocks; reads that find data
buffered never touch the timer wheel.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from typing import Any

from .._core._ops import ServerShutdown, TimeoutKind
from ..sync._stream import Timeouts, unmapped

__all__ = ["Stream", "Timeouts", "connect_tcp"]

_HEAD = TimeoutKind.HEAD

# Reading pauses when this much is buffered and nobody reads it.
_HIGH_WATER = 256 * 1024

#: The most one read takes from the socket (what asyncio's transports read).
_READ_SIZE = 256 * 1024
# The read buffer of each thread's loop.  Transports call get_buffer(), read
# into it and call buffer_updated() in one go, so connections can share it.
_read_buffers = threading.local()


def _read_buffer() -> memoryview:
    try:
        view: memoryview = _read_buffers.view
    except AttributeError:
        view = _read_buffers.view = memoryview(bytearray(_READ_SIZE))
    return view


class _StreamProtocol(asyncio.BufferedProtocol):
    """Feeds received bytes and connection events to its :class:`Stream`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused_writing = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.reading_paused = False
        self.closed: asyncio.Future[None] = loop.create_future()
        #: set by a server: called once the connection is made
        self.on_made: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.on_made is not None:
            self.on_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_read_buffers.view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        # Keep the connection half-open: a peer that shuts its sending side
        # after its last command (exim does, after BDAT LAST and QUIT) is
        # still owed the replies.  The stream closes the transport when the
        # operation is done.  TLS transports cannot stay half-open (and
        # asyncio logs a warning when asked to), so they get False.
        transport = self.transport
        return transport is None or transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and not isinstance(exc, ConnectionResetError):
            self.error = exc
        self._wake()
        drain = self.drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        drain = self.drain_waiter
        if drain is not None:
            self.drain_waiter = None
            if not drain.done():
                drain.set_result(None)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def take(self, max_bytes: int) -> bytes:
        """Up to *max_bytes* buffered bytes (the caller checked there are some)."""
        chunks = self.chunks
        data = chunks[0]
        if len(data) <= max_bytes:
            del chunks[0]
        else:
            chunks[0] = data[max_bytes:]
            data = data[:max_bytes]
        self.buffered -= len(data)
        if self.reading_paused and self.buffered < _HIGH_WATER // 4 and self.transport:
            self.reading_paused = False
            self.transport.resume_reading()
        return data


def _fire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("timed out"))


class Stream:
    """A TCP connection (maybe TLS) over asyncio, with per-purpose timeouts."""

    def __init__(
        self,
        protocol: _StreamProtocol,
        timeouts: Timeouts | None = None,
        tls_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self._protocol = protocol
        self.transport: asyncio.Transport = protocol.transport  # type: ignore[assignment]
        self.timeouts = timeouts or Timeouts()
        self.tls_context = tls_context
        self.server_hostname = server_hostname
        self._pending: list[bytes] = []
        self._loop = protocol.loop
        #: set by a draining server: idle waits end at once with ServerShutdown
        self.draining = False
        #: a read is waiting for the next request on a keep-alive connection
        self.idle = False
        #: seconds a closing server connection keeps reading (see close())
        self.linger = 0.0
        self._half_closed = False
        #: the last transport or callback error the runner threw into an operation
        self.last_error: BaseException | None = None
        #: set by a server that sweeps deadlines itself (no timer per wait)
        self.swept = False
        #: what a swept wait is waiting for, and until when (loop time)
        self.waiting: asyncio.Future[None] | None = None
        self.deadline = 0.0
        #: when the message head being read must be complete (loop time);
        #: the head timeout bounds the whole head, not each read of it
        self.head_deadline: float | None = None

    # -- writing ---------------------------------------------------------------

    def write(self, data: bytes | list[bytes]) -> None:
        """Queue *data*; it leaves on the next :meth:`flush`."""
        if type(data) is list:
            self._pending.extend(data)
        else:
            self._pending.append(data)  # type: ignore[arg-type]

    def flush_nowait(self) -> bool:
        """Hand queued data to the transport; True if the caller must drain."""
        pending = self._pending
        if pending:
            if self._protocol.eof and self.transport.is_closing():
                pending.clear()
                raise ConnectionResetError("connection closed by peer")
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            self.transport.write(data)
        return self._protocol.paused_writing

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        protocol = self._protocol
        while protocol.paused_writing and not self.transport.is_closing():
            waiter = protocol.drain_waiter = self._loop.create_future()
            await self._wait(waiter, self.timeouts.write)

    async def flush(self) -> None:
        """Hand queued data to the transport and wait if it is full."""
        if self.flush_nowait():
            await self.drain()

    async def send_all(self, data: bytes | list[bytes]) -> None:
        """Write all of *data* (waiting only when the transport is full)."""
        self.write(data)
        await self.flush()

    # -- reading ---------------------------------------------------------------

    async def _wait(self, future: asyncio.Future[None], timeout: float | None) -> None:
        if timeout is None:
            await future
            return
        if self.swept:
            self.deadline = self._loop.time() + timeout
            self.waiting = future
            try:
                await future
            finally:
                self.waiting = None
            return
        timer = self._loop.call_later(timeout, _fire, future)
        try:
            await future
        finally:
            timer.cancel()

    def receive_nowait(self, max_bytes: int = 65536) -> bytes | None:
        """Buffered bytes, b"" at EOF, or None when a read would have to wait."""
        protocol = self._protocol
        if protocol.chunks:
            return protocol.take(max_bytes)
        if protocol.eof:
            if protocol.error is not None:
                error, protocol.error = protocol.error, None
                raise error
            return b""
        return None

    async def receive_some(self, max_bytes: int = 65536, timeout: str = TimeoutKind.READ) -> bytes:
        """Read at most *max_bytes*; b"" at EOF (a reset counts as EOF)."""
        data = self.receive_nowait(max_bytes)
        if data is not None:
            return data
        await self.flush()
        protocol = self._protocol
        idle = timeout == TimeoutKind.IDLE
        if idle:
            if self.draining:
                raise ServerShutdown
            self.idle = True
        limit = self.timeouts.by_kind.get(timeout)
        if timeout != _HEAD:
            self.head_deadline = None
        elif limit is not None:
            now = self._loop.time()
            if self.head_deadline is None:
                self.head_deadline = now + limit
            limit = max(self.head_deadline - now, 0.0)
        try:
            while True:
                waiter = protocol.waiter = self._loop.create_future()
                await self._wait(waiter, limit)
                if self.draining and idle and not protocol.chunks:
                    raise ServerShutdown
                data = self.receive_nowait(max_bytes)
                if data is not None:
                    return data
        finally:
            self.idle = False

    def wake_if_idle(self) -> None:
        """End an idle wait at once (a draining server calls this)."""
        if self.idle:
            self._protocol._wake()

    # -- TLS, closing ------------------------------------------------------------

    async def start_tls(
        self, server_hostname: str | None = None, server_side: bool = False
    ) -> None:
        """Upgrade to TLS with :attr:`tls_context`."""
        if self.tls_context is None:
            raise RuntimeError("this stream has no TLS context to start TLS with")
        await self.flush()
        # Bytes the peer sent in the clear before the handshake (an injection
        # attempt, or a broken peer) must never be read as if they came
        # over TLS: drop what is buffered.  No await separates this from
        # start_tls(), which pauses reading before it yields.
        protocol = self._protocol
        protocol.chunks.clear()
        protocol.buffered = 0
        protocol.reading_paused = False  # start_tls() resumes reading itself
        transport = await self._loop.start_tls(
            self.transport,
            self._protocol,
            self.tls_context,
            server_side=server_side,
            server_hostname=None if server_side else (server_hostname or self.server_hostname),
            ssl_handshake_timeout=self.timeouts.connect,
        )
        if transport is None:
            raise ConnectionResetError("connection closed during the TLS handshake")
        self.transport = self._protocol.transport = transport

    def close(self) -> None:
        """Flush what is queued and close (no waiting).

        A server's stream with a ``linger`` time whose client has not
        finished sending only shuts down its sending side here; the server
        then calls :meth:`linger_and_close` (see :class:`Timeouts`).
        """
        with contextlib.suppress(OSError):
            self.flush_nowait()
        transport = self.transport
        if (
            self.linger > 0
            and not self._protocol.eof
            and not transport.is_closing()
            and transport.can_write_eof()  # (not over TLS)
        ):
            transport.write_eof()  # after what is queued
            self._half_closed = True
            return
        transport.close()

    async def linger_and_close(self) -> None:
        """Close; after a half-close, first read and discard what the client
        still sends, until it closes or ``linger`` seconds pass."""
        try:
            self.close()
            if self._half_closed:
                protocol = self._protocol
                deadline = self._loop.time() + self.linger
                while not protocol.eof:
                    protocol.chunks.clear()
                    protocol.buffered = 0
                    if protocol.reading_paused:
                        protocol.reading_paused = False
                        self.transport.resume_reading()
                    left = deadline - self._loop.time()
                    if left <= 0:
                        break
                    waiter = protocol.waiter = self._loop.create_future()
                    # A timer of its own, not _wait(): the server has already
                    # dropped this stream from the set its sweeper watches.
                    timer = self._loop.call_later(left, _fire, waiter)
                    try:
                        await waiter
                    except TimeoutError:
                        break
                    finally:
                        timer.cancel()
        finally:
            self.transport.close()

    async def aclose(self) -> None:
        """Close and wait until the connection is gone."""
        self.close()
        await self._protocol.closed

    @property
    def is_closing(self) -> bool:
        return self.transport.is_closing()

    @property
    def peer(self) -> tuple[str, int]:
        """The peer's (host, port), or ("", 0) when unknown."""
        info = self.transport.get_extra_info("peername")
        if not info:
            return ("", 0)
        return unmapped(str(info[0])), int(info[1])

    @property
    def tls_object(self) -> ssl.SSLObject | None:
        """The TLS connection (for ``getpeercert``, ``version``...), or None on plain TCP."""
        tls: ssl.SSLObject | None = self.transport.get_extra_info("ssl_object")
        return tls

    @property
    def local(self) -> tuple[str, int]:
        """Our (host, port), or ("", 0) when unknown."""
        info = self.transport.get_extra_info("sockname")
        if not info:
            return ("", 0)
        return str(info[0]), int(info[1])


async def connect_tcp(
    host: str,
    port: int,
    *,
    timeouts: Timeouts | None = None,
    tls_context: ssl.SSLContext | None = None,
    tls: bool = False,
    server_hostname: str | None = None,
) -> Stream:
    """Connect to *host*:*port* (IPv4 or IPv6), optionally starting TLS at once."""
    timeouts = timeouts or Timeouts()
    loop = asyncio.get_running_loop()
    if tls and tls_context is None:
        tls_context = ssl.create_default_context()

    async def connect() -> tuple[asyncio.BaseTransport, _StreamProtocol]:
        return await loop.create_connection(
            lambda: _StreamProtocol(loop),
            host,
            port,
            ssl=tls_context if tls else None,
            server_hostname=(server_hostname or host) if tls else None,
        )

    if timeouts.connect is None:
        transport, protocol = await connect()
    else:
        transport, protocol = await asyncio.wait_for(connect(), timeouts.connect)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Stream(protocol, timeouts, tls_context, server_hostname or host)
