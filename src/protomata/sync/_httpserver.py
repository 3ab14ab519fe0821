"""The blocking HTTP server: threads over the pure per-connection loop."""

from __future__ import annotations

import logging
import ssl
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import Any, BinaryIO, cast

from .._core._ops import Call, FileRange
from ..http import SERVER, Connection, Headers, Request
from ..http._operations import (
    Exchange,
    ResponseSpec,
    ServerSettings,
    end_response,
    read_request_body_chunk,
    send_body,
    serve_connection,
    start_response,
)
from ._runner import run
from ._server import TCPServer
from ._stream import SocketStream, Timeouts, peer_certificate_of

__all__ = ["HTTPServer", "ServerRequest", "access_log_line", "http_date"]

log = logging.getLogger("protomata.http")


#: (second, its HTTP date); replaced whole, so threads never see half an update
_date_cache: list[tuple[int, bytes]] = [(0, b"")]


def http_date() -> bytes:
    """The current time as an HTTP date (IMF-fixdate), formatted once a second."""
    now = int(time.time())
    cached = _date_cache[0]
    if cached[0] != now:
        cached = _date_cache[0] = (now, formatdate(now, usegmt=True).encode("ascii"))
    return cached[1]


def clf_time() -> str:
    """The local time as Common Log Format writes it: 10/Oct/2000:13:55:36 -0700."""
    return time.strftime("%d/%b/%Y:%H:%M:%S %z")


def access_log_line(peer: str, exchange: Exchange, when: str) -> str:
    """One line of Common Log Format for a served exchange."""
    request = exchange.request
    line = b"%s %s HTTP/%s" % (request.method, request.target, request.http_version)
    size = str(exchange.body_bytes) if exchange.body_bytes else "-"
    return f'{peer} - - [{when}] "{line.decode("latin-1")}" {exchange.status} {size}'


class ServerRequest:
    """A request as a blocking handler sees it; the body is read on demand."""

    def __init__(
        self, exchange: Exchange, conn: Connection, stream: SocketStream, settings: ServerSettings
    ) -> None:
        request = exchange.request
        self.method: bytes = request.method
        self.target: bytes = request.target
        self.headers: Headers = request.headers
        self.http_version: bytes = request.http_version
        self.client: tuple[str, int] = stream.peer
        self._exchange = exchange
        self._conn = conn
        self._stream = stream
        self._settings = settings
        self._received = 0
        self._finished = False

    @property
    def server(self) -> tuple[str, int]:
        """The local (host, port) the request arrived on."""
        try:
            host, port = self._stream.socket.getsockname()[:2]
            return str(host), int(port)
        except OSError:
            return ("", 0)

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The client's verified TLS certificate (``ssl.SSLSocket.getpeercert()``
        form), or None: plain HTTP, or a server that does not ask for one."""
        return peer_certificate_of(self._stream.tls_object)

    @property
    def scheme(self) -> str:
        """``"https"`` on a TLS connection, else ``"http"``."""
        return "https" if isinstance(self._stream.socket, ssl.SSLSocket) else "http"

    @property
    def request(self) -> Request:
        """The parsed request head."""
        return self._exchange.request

    @property
    def path(self) -> bytes:
        return self.target.partition(b"?")[0]

    @property
    def query(self) -> bytes:
        return self.target.partition(b"?")[2]

    def iter_body(self) -> Iterator[bytes]:
        """Yield the request body piece by piece."""
        while not self._finished:
            chunk = run(
                read_request_body_chunk(self._conn, self._exchange, self._settings, self._received),
                self._stream,
            )
            if chunk is None:
                self._finished = True
                return
            self._received += len(chunk)
            yield chunk

    def read(self) -> bytes:
        """The whole (remaining) request body."""
        return b"".join(self.iter_body())

    # Streaming responses, for handlers that do not return a ResponseSpec.

    def start_response(self, status: int, headers: Iterable[tuple[Any, Any]] = ()) -> None:
        run(
            start_response(self._conn, self._exchange, self._settings, status, headers),
            self._stream,
            _date_only,
        )

    def send(self, data: bytes) -> None:
        run(send_body(self._conn, self._exchange, data), self._stream)

    def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        """Send *count* bytes of the open *file* from *offset* as body data.

        The bytes go out with ``sendfile`` where the socket allows (no TLS),
        framed and counted like any other body piece.
        """
        piece = cast(bytes, FileRange(file, offset, count))  # the machine needs only len()
        run(send_body(self._conn, self._exchange, piece), self._stream)

    def end_response(self) -> None:
        run(end_response(self._conn), self._stream)


def _date_only(call: Call) -> bytes:
    if call.name == "date":
        return http_date()
    raise RuntimeError(f"unexpected call {call.name!r}")


Handler = Callable[[ServerRequest], "ResponseSpec | None"]


class HTTPServer(TCPServer):
    """Serve *handler* over HTTP/1.1 with a thread per connection.

    The handler gets a :class:`ServerRequest` and returns a
    :class:`~protomata.http.ResponseSpec` (or streams the response itself
    with ``request.start_response/send/end_response`` and returns None).
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        settings: ServerSettings | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 1000,
        tls_context: ssl.SSLContext | None = None,
        access_log: Callable[[str], None] | bool | None = None,
        reuse_port: bool = False,
        grace: float = 10.0,
    ) -> None:
        super().__init__(
            host,
            port,
            max_connections=max_connections,
            tls_context=tls_context,
            timeouts=timeouts or Timeouts(60.0, head=10.0, idle=60.0),
            reuse_port=reuse_port,
            grace=grace,
        )
        self.handler = handler
        self.settings = settings or ServerSettings()
        # None or True: Common Log Format lines on stderr; False: no access log.
        if access_log is None or access_log is True:
            self.access_log: Callable[[str], None] = _stderr_log
        elif access_log is False:
            self.access_log = _no_log
        else:
            self.access_log = access_log

    def on_drain(self) -> None:
        """From now on, responses say ``Connection: close``."""
        self.settings.draining = True

    def handle_connection(self, stream: SocketStream) -> None:
        conn = Connection(SERVER)
        settings = self.settings
        peer = stream.peer[0]

        def on_call(call: Call) -> Any:
            name = call.name
            if name == "handle":
                return self.handler(ServerRequest(call.args[0], conn, stream, settings))
            if name == "next_chunk":
                return next(call.args[0].stream, None)
            if name == "date":
                return http_date()
            if name == "log":
                self.access_log(access_log_line(peer, call.args[0], clf_time()))
                return None
            if name == "log_exception":
                log.error("error in HTTP handler:\n%s", _traceback(call.args[1]))
                return None
            if name == "log_error":
                return None
            raise RuntimeError(f"unexpected call {name!r}")

        run(serve_connection(conn, settings), stream, on_call)


def _traceback(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _no_log(line: str) -> None:
    pass


def _stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def iter_spec(
    status: int, body: Iterable[bytes], headers: Iterable[tuple[Any, Any]] = ()
) -> ResponseSpec:
    """A streamed ResponseSpec from any iterable of byte strings."""
    return ResponseSpec(status, headers, None, stream=iter(body))
