"""trio streams with TLS and per-purpose timeouts.

A :class:`Stream` wraps a :class:`trio.SocketStream` (later a
:class:`trio.SSLStream` over it).  Sends are buffered by :meth:`Stream.write`
and leave in one ``send_all`` at :meth:`Stream.flush`, so the pieces of one
response (head, body, chunk terminator) go out together; the runner flushes
before it waits for anything.  trio's own errors are translated into the
exceptions the pure operations expect: :class:`TimeoutError` for a timeout,
:class:`ConnectionResetError` for a broken stream, ``b""`` for a reset seen
while reading (to a protocol that is the end of input).
"""

from __future__ import annotations

import contextlib
import math
import ssl
from typing import Any

import trio

from .._core._ops import TimeoutKind
from ..sync._stream import Timeouts, unmapped

__all__ = ["HIGH_WATER", "Stream", "Timeouts", "connect_tcp"]

#: queued bytes beyond which the runner sends at once rather than waiting
#: for the operation to pause (a long streamed body is not held in memory)
HIGH_WATER = 65536


def _limit(seconds: float | None) -> float:
    return math.inf if seconds is None else seconds


class Stream:
    """A connected TCP stream, optionally TLS-wrapped, with timeouts applied.

    :param stream: the connected :class:`trio.SocketStream`.
    :param timeouts: how long each kind of wait may take.
    :param tls_context: the context :meth:`start_tls` wraps the stream with.
    :param server_hostname: the name a client checks the certificate against.
    """

    def __init__(
        self,
        stream: trio.SocketStream,
        timeouts: Timeouts | None = None,
        tls_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.socket_stream = stream
        self.stream: trio.abc.Stream = stream
        self.timeouts = timeouts or Timeouts()
        self.tls_context = tls_context
        self.server_hostname = server_hostname
        self.closed = False
        # When the current message head began (trio clock), or None: the head
        # timeout bounds the whole head, not each read of it (slow loris).
        self._head_started: float | None = None
        self._pending: list[bytes] = []
        #: bytes queued by :meth:`write` and not yet sent
        self.pending_size = 0

    # -- sending -------------------------------------------------------------------

    def write(self, data: bytes | list[bytes]) -> None:
        """Queue *data*; it leaves at the next :meth:`flush`."""
        if isinstance(data, list):
            self._pending.extend(data)
            self.pending_size += sum(map(len, data))
        elif data:
            self._pending.append(data)
            self.pending_size += len(data)

    async def flush(self) -> None:
        """Send everything queued by :meth:`write`."""
        if not self._pending:
            return
        pending = self._pending
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        self._pending = []
        self.pending_size = 0
        try:
            with trio.fail_after(_limit(self.timeouts.write)):
                await self.stream.send_all(data)
        except trio.TooSlowError:
            raise TimeoutError("timed out sending") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionResetError(f"cannot send: {exc}") from exc

    async def send_all(self, data: bytes | list[bytes]) -> None:
        """Send all of *data* (and anything queued before it)."""
        self.write(data)
        await self.flush()

    # -- receiving -------------------------------------------------------------------

    async def receive_some(self, max_bytes: int = 65536, timeout: str = TimeoutKind.READ) -> bytes:
        """Read at most *max_bytes*; ``b""`` at EOF (a reset counts as EOF).

        *timeout* names the :class:`~protomata._core._ops.TimeoutKind` whose
        duration applies; running out raises :class:`TimeoutError`.
        """
        await self.flush()
        limit = self.timeouts.by_kind.get(timeout)
        if timeout == TimeoutKind.HEAD and limit is not None:
            now = trio.current_time()
            if self._head_started is None:
                self._head_started = now
            limit -= now - self._head_started
            if limit <= 0:
                raise TimeoutError("message head not received in time")
        else:
            self._head_started = None
        try:
            with trio.fail_after(_limit(limit)):
                return bytes(await self.stream.receive_some(max_bytes))
        except trio.TooSlowError:
            raise TimeoutError(f"timed out waiting for data ({timeout})") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    # -- TLS, closing ------------------------------------------------------------

    async def start_tls(
        self, server_hostname: str | None = None, server_side: bool = False
    ) -> None:
        """Wrap the stream in TLS with :attr:`tls_context` and do the handshake.

        A failed handshake raises :class:`ssl.SSLError` (a certificate or
        host name that does not verify, say) or :class:`OSError`.
        """
        if self.tls_context is None:
            raise RuntimeError("this stream has no TLS context to start TLS with")
        await self.flush()
        tls = trio.SSLStream(
            self.stream,
            self.tls_context,
            server_side=server_side,
            server_hostname=None if server_side else (server_hostname or self.server_hostname),
            # A server says goodbye with close_notify; a client skips it,
            # as HTTPS clients do (and some servers never answer it).
            https_compatible=not server_side,
        )
        try:
            # server side: a client that never finishes the handshake is a
            # slow peer like any other, so the head timeout applies
            if server_side:
                limit = self.timeouts.by_kind[TimeoutKind.HEAD]
            else:
                limit = self.timeouts.connect
            with trio.fail_after(_limit(limit)):
                await tls.do_handshake()
        except trio.TooSlowError:
            raise TimeoutError("timed out in the TLS handshake") from None
        except trio.BrokenResourceError as exc:
            cause = exc.__cause__
            if isinstance(cause, ssl.SSLError):
                raise cause from None
            raise ConnectionResetError(f"TLS handshake failed: {cause or exc}") from exc
        self.stream = tls

    async def aclose(self) -> None:
        """Flush what is queued (briefly), then close.  Never raises."""
        if self.closed:
            return
        self.closed = True
        with trio.move_on_after(1.0) as scope:
            scope.shield = True
            try:
                await self.flush()
                if isinstance(self.stream, trio.SocketStream):
                    await self.stream.send_eof()
            except (OSError, TimeoutError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            with contextlib.suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                await self.stream.aclose()
        if scope.cancelled_caught:  # could not close cleanly in time
            await trio.aclose_forcefully(self.socket_stream)

    @property
    def peer(self) -> tuple[str, int]:
        """The peer's (host, port), or ("", 0) when unknown."""
        try:
            host, port = self.socket_stream.socket.getpeername()[:2]
            return unmapped(str(host)), int(port)
        except OSError:
            return ("", 0)

    @property
    def tls_object(self) -> trio.SSLStream[Any] | None:
        """The TLS stream (for ``getpeercert``, ``version``...), or None on plain TCP.

        Set only once the handshake is done, so its methods never need one.
        """
        stream = self.stream
        return stream if isinstance(stream, trio.SSLStream) else None

    @property
    def local(self) -> tuple[str, int]:
        """Our (host, port), or ("", 0) when unknown."""
        try:
            host, port = self.socket_stream.socket.getsockname()[:2]
            return str(host), int(port)
        except OSError:
            return ("", 0)


async def connect_tcp(
    host: str,
    port: int,
    *,
    timeouts: Timeouts | None = None,
    tls_context: ssl.SSLContext | None = None,
    tls: bool = False,
    server_hostname: str | None = None,
) -> Stream:
    """Connect to *host*:*port* (IPv4 or IPv6), optionally starting TLS at once.

    With *tls* and no *tls_context*, a default (verifying) context is used.
    Running out of ``timeouts.connect`` raises :class:`TimeoutError`.
    """
    timeouts = timeouts or Timeouts()
    if tls and tls_context is None:
        tls_context = ssl.create_default_context()
    try:
        with trio.fail_after(_limit(timeouts.connect)):
            tcp = await trio.open_tcp_stream(host, port)
    except trio.TooSlowError:
        raise TimeoutError(f"timed out connecting to {host}:{port}") from None
    stream = Stream(tcp, timeouts, tls_context, server_hostname or host)
    if tls:
        try:
            await stream.start_tls()
        except BaseException:
            await trio.aclose_forcefully(tcp)
            raise
    return stream
