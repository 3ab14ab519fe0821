"""The asyncio HTTP server: one task per connection over the pure serve loop."""

from __future__ import annotations

import logging
import ssl
import sys
import time
import traceback
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from email.utils import formatdate
from typing import Any

from .._core._ops import Call, Operation, Send
from ..http import SERVER, Connection, Headers
from ..http._operations import (
    Exchange,
    ResponseSpec,
    ServerSettings,
    end_response,
    next_chunk,
    read_request_body_chunk,
    respond,
    send_body,
    serve_connection,
    start_response,
)
from ..sync._httpserver import access_log_line, clf_time
from ._runner import run
from ._server import TCPServer
from ._stream import Stream, Timeouts

__all__ = ["HTTPServer", "ServerRequest", "http_date", "iter_spec"]

log = logging.getLogger("protomata.http")

_date_cache: list[Any] = [0, b""]


def http_date() -> bytes:
    """The current time as an HTTP date (IMF-fixdate), recomputed once a second."""
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode("ascii")
    return _date_cache[1]  # type: ignore[no-any-return]


def _date_only(call: Call) -> bytes:
    if call.name == "date":
        return http_date()
    raise RuntimeError(f"unexpected call {call.name!r}")


class ServerRequest:
    """A request as an async handler sees it; the body is read on demand."""

    def __init__(
        self,
        exchange: Exchange,
        conn: Connection,
        stream: Stream,
        settings: ServerSettings,
        client: tuple[str, int],
    ) -> None:
        request = exchange.request
        self.method: bytes = request.method
        self.target: bytes = request.target
        self.headers: Headers = request.headers
        self.http_version: bytes = request.http_version
        self.client = client
        self._exchange = exchange
        self._conn = conn
        self._stream = stream
        self._settings = settings
        self._received = 0
        self._finished = False

    @property
    def path(self) -> bytes:
        return self.target.partition(b"?")[0]

    @property
    def query(self) -> bytes:
        return self.target.partition(b"?")[2]

    async def read_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        if self._finished:
            return None
        chunk = await run(
            read_request_body_chunk(self._conn, self._exchange, self._settings, self._received),
            self._stream,
        )
        if chunk is None:
            self._finished = True
        else:
            self._received += len(chunk)
        return chunk

    async def iter_body(self) -> AsyncIterable[bytes]:
        """Yield the request body piece by piece."""
        while (chunk := await self.read_chunk()) is not None:
            yield chunk

    async def read(self) -> bytes:
        """The whole (remaining) request body."""
        return b"".join([chunk async for chunk in self.iter_body()])

    # Streaming responses, for handlers that do not return a ResponseSpec.

    async def _flush(self) -> None:
        stream = self._stream
        if stream.flush_nowait():
            await stream.drain()

    async def start_response(
        self,
        status: int,
        headers: Iterable[tuple[Any, Any]] = (),
        *,
        content_length: int | None = None,
    ) -> None:
        """Send the response head."""
        _push(
            start_response(
                self._conn,
                self._exchange,
                self._settings,
                status,
                headers,
                content_length=content_length,
            ),
            self._stream,
        )
        await self._flush()

    async def send(self, data: bytes) -> None:
        """Send a piece of the response body."""
        _push(send_body(self._conn, self._exchange, data), self._stream)
        await self._flush()

    async def end_response(self) -> None:
        """Finish the response."""
        _push(end_response(self._conn), self._stream)
        await self._flush()

    async def respond(self, spec: ResponseSpec) -> None:
        """Send a complete response; a one-piece body leaves with its head in one write."""
        if spec.body is None:
            await run(
                respond(self._conn, self._exchange, self._settings, spec),
                self._stream,
                _stream_call,
            )
            return
        _push(respond(self._conn, self._exchange, self._settings, spec), self._stream)
        await self._flush()


def _push(op: Operation[None], stream: Stream) -> None:
    """Run an operation that only sends (and asks for the date) without awaiting:
    its bytes are queued on *stream* for the next flush."""
    write = stream.write
    value: Any = None
    while True:
        try:
            request = op.send(value)
        except StopIteration:
            return
        value = None
        kind = type(request)
        if kind is Send:
            write(request.data)  # type: ignore[attr-defined]
        elif kind is Call and request.name == "date":  # type: ignore[attr-defined]
            value = http_date()
        else:
            op.close()
            raise RuntimeError(f"unexpected {request!r} in a response operation")


def _stream_call(call: Call) -> Any:
    if call.name == "next_chunk":
        return next_chunk(call.args[0])
    return _date_only(call)


Handler = Callable[[ServerRequest], Awaitable["ResponseSpec | None"]]


class HTTPServer(TCPServer):
    """Serve an async *handler* over HTTP/1.1 with a task per connection.

    The handler gets a :class:`ServerRequest` and returns a
    :class:`~protomata.http.ResponseSpec` (whose ``stream`` may be a sync or
    async iterable of bytes), or streams the response itself with
    ``await request.start_response/send/end_response`` and returns None.
    *access_log* receives one Common Log Format line per request (stderr by
    default; ``False`` turns it off).
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
        if access_log is None or access_log is True:
            self.access_log: Callable[[str], None] | None = _stderr_log
        elif access_log is False:
            self.access_log = None
        else:
            self.access_log = access_log

    async def handle_connection(self, stream: Stream) -> None:
        conn = Connection(SERVER)
        settings = self.settings
        client = stream.peer
        handler = self.handler
        access_log = self.access_log

        def on_call(call: Call) -> Any:
            name = call.name
            if name == "handle":
                return handler(ServerRequest(call.args[0], conn, stream, settings, client))
            if name == "date":
                return http_date()
            if name == "log":
                if access_log is not None:
                    access_log(access_log_line(client[0], call.args[0], clf_time()))
                return None
            if name == "next_chunk":
                return next_chunk(call.args[0])
            if name == "log_exception":
                exc = stream.last_error
                if exc is not None:
                    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                    log.error("error in HTTP handler:\n%s", text)
                return None
            if name == "log_error":
                return None
            raise RuntimeError(f"unexpected call {name!r}")

        await run(serve_connection(conn, settings), stream, on_call)


def _stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def iter_spec(
    status: int,
    body: Iterable[bytes] | AsyncIterable[bytes],
    headers: Iterable[tuple[Any, Any]] = (),
) -> ResponseSpec:
    """A streamed ResponseSpec from any sync or async iterable of byte strings."""
    return ResponseSpec(status, headers, None, stream=body)
