"""A threaded TCP server: accept loop, connection limit, graceful shutdown."""

from __future__ import annotations

import abc
import contextlib
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator

from .._core._ops import ServerShutdown, TimeoutKind
from ._stream import SocketStream, Timeouts, readable_now

__all__ = ["TCPServer", "listen_tcp"]


def listen_tcp(
    host: str | None, port: int, *, reuse_port: bool = False, backlog: int = 1024
) -> socket.socket:
    """A listening socket on *host*:*port* (IPv6 when *host* contains ':').

    ``None`` or ``""`` listens on every address: one IPv6 socket that also
    takes IPv4 connections (dual-stack) where the machine has IPv6, else
    IPv4 only.  Peers reaching it over IPv4 are reported by their IPv4
    address (see :func:`~protomata.sync._stream.unmapped`).
    """
    dual = not host and socket.has_ipv6
    if dual:
        try:
            return _listen(socket.AF_INET6, "::", port, reuse_port, backlog, v6only=False)
        except OSError:
            pass  # IPv6 switched off here: IPv4 alone
    if not host:
        host = "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return _listen(family, host, port, reuse_port, backlog)


def _listen(
    family: socket.AddressFamily,
    host: str,
    port: int,
    reuse_port: bool,
    backlog: int,
    *,
    v6only: bool | None = None,
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


class _ServerStream(SocketStream):
    """A stream that a draining server can end while it waits for a request."""

    def __init__(self, server: TCPServer, sock: socket.socket, timeouts: Timeouts) -> None:
        super().__init__(sock, timeouts)
        self._server = server
        self.idle = False
        #: accepted before any shutdown began and nothing read yet: a request
        #: already waiting on it is served even if the server drains first
        self._early = not server.draining

    def receive_some(self, max_bytes: int = 65536, timeout: str = TimeoutKind.READ) -> bytes:
        if timeout != TimeoutKind.IDLE:
            return super().receive_some(max_bytes, timeout)
        server = self._server
        with server._lock:  # shutdown() sees this wait, or we see it draining
            if server.draining and not (self._early and readable_now(self.socket)):
                raise ServerShutdown
            self.idle = True
        self._early = False
        try:
            data = super().receive_some(max_bytes, timeout)
        finally:
            with server._lock:
                self.idle = False
        if not data and server.draining:
            raise ServerShutdown  # woken by shutdown(), which closed our read side
        return data

    def close(self) -> None:
        """Close; a plain connection first shuts down its sending side, then
        reads and discards what the client still sends, until it closes or
        ``timeouts.linger`` seconds pass (see :class:`Timeouts`)."""
        sock = self.socket
        linger = self.timeouts.linger
        if linger <= 0 or isinstance(sock, ssl.SSLSocket) or self._server.draining:
            super().close()
            return
        try:
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + linger
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                if not sock.recv(65536):
                    break
        except (OSError, ValueError):
            pass  # reset, timed out or already closed: nothing more to wait for
        sock.close()


class TCPServer(abc.ABC):
    """Accept TCP connections and run :meth:`handle_connection` in a thread each.

    At most *max_connections* are served at once; more wait in the listen
    backlog.  :meth:`shutdown` (also on SIGINT/SIGTERM when
    :meth:`serve_forever` runs in the main thread) stops accepting, closes
    idle keep-alive connections and lets requests in flight finish.
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
        #: seconds :meth:`shutdown` waits for requests in flight by default
        self.grace = grace
        self.tls_context = tls_context
        self.timeouts = timeouts or Timeouts()
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._listener = listen_tcp(host, port, reuse_port=reuse_port)
        self.port: int = self._listener.getsockname()[1]
        self.draining = False
        self._streams: set[_ServerStream] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls_context else 'http'}://{host}:{self.port}/"

    @abc.abstractmethod
    def handle_connection(self, stream: SocketStream) -> None:
        """Serve one accepted connection (runs in its own thread)."""

    def on_drain(self) -> None:  # noqa: B027 (an optional hook)
        """Called once when a graceful shutdown begins (before idle sessions end)."""

    def serve_forever(self, *, handle_signals: bool = True) -> None:
        """Accept connections until :meth:`shutdown`."""
        if handle_signals and threading.current_thread() is threading.main_thread():
            # The handler starts shutdown() in a new, non-daemon thread: the
            # accept loop below ends at once, and the interpreter then waits
            # for that thread, which joins the connection threads, so the
            # requests in flight finish before the process exits.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: threading.Thread(target=self.shutdown).start())
        self._listener.settimeout(0.2)  # to notice shutdown promptly
        try:
            while not self.draining:
                if not self._slots.acquire(timeout=0.2):
                    continue
                try:
                    sock, _ = self._listener.accept()
                except (TimeoutError, OSError):
                    self._slots.release()
                    continue
                thread = threading.Thread(target=self._serve_one, args=(sock,), daemon=True)
                with self._lock:
                    self._threads.add(thread)
                thread.start()
        finally:
            self._listener.close()
            self._stopped.set()

    def _serve_one(self, sock: socket.socket) -> None:
        stream: _ServerStream | None = None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls_context is not None:
                sock.settimeout(self.timeouts.by_kind[TimeoutKind.HEAD])
                sock = self.tls_context.wrap_socket(sock, server_side=True)
            stream = _ServerStream(self, sock, self.timeouts)
            with self._lock:
                self._streams.add(stream)
            self.handle_connection(stream)
        except (OSError, ssl.SSLError, ServerShutdown):
            pass  # the peer went away, failed the handshake, or we are draining
        finally:
            if stream is not None:
                with self._lock:
                    self._streams.discard(stream)
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._threads.discard(threading.current_thread())
            self._slots.release()

    def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, end idle connections, wait up to *grace* s for the rest.

        *grace* defaults to the one given to the constructor.
        """
        if grace is None:
            grace = self.grace
        with self._lock:
            first, self.draining = not self.draining, True
        if first:
            self.on_drain()
        self._stopped.wait(grace)
        with self._lock:
            idle = [s for s in self._streams if s.idle]
            threads = list(self._threads)
        for stream in idle:
            # Ending only the read side wakes the idle wait and leaves the
            # connection writable, so the protocol can say goodbye (SMTP 421).
            with contextlib.suppress(OSError):
                stream.socket.shutdown(socket.SHUT_RD)
        for thread in threads:
            thread.join(grace)

    @contextlib.contextmanager
    def running(self) -> Iterator[TCPServer]:
        """Serve in a background thread for the duration of a ``with`` block."""
        thread = threading.Thread(
            target=self.serve_forever, kwargs={"handle_signals": False}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self.shutdown()
            thread.join()
