"""The loop-agnostic half of the asyncio and trio HTTP servers.

The dialogue is :func:`protomata.http._operations.serve_connection`; the
classes here answer its calls (hand the request to the application, log,
give the date) and give handlers their request object.  Each async adapter
subclasses them and supplies its runner, how a send-only response
operation goes out on its stream, and its ``TCPServer``; nothing here
imports an event loop.
"""

from __future__ import annotations

import logging
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from .._core._ops import Call, Operation
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
    whole_response,
)
from ._httpserver import _traceback, access_log_line, clf_time, http_date
from ._stream import Timeouts, peer_certificate_of

__all__ = ["AsyncHTTPService", "AsyncServerRequest", "respond_calls"]

log = logging.getLogger("protomata.http")


def respond_calls(call: Call) -> Any:
    """The calls of a response operation: the next piece of a streamed body, the date."""
    if call.name == "next_chunk":
        return next_chunk(call.args[0])
    if call.name == "date":
        return http_date()
    raise RuntimeError(f"unexpected call {call.name!r}")


class AsyncServerRequest:
    """A request as an async handler sees it; the body is read on demand."""

    # Supplied by the adapter's subclass: its runner of pure operations.
    _run: Callable[..., Awaitable[Any]]

    def __init__(
        self,
        exchange: Exchange,
        conn: Connection,
        stream: Any,
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

    async def _send(self, op: Operation[None]) -> None:
        """Carry out *op*, which only sends and asks for the date."""
        await self._run(op, self._stream, respond_calls)

    def _whole_response(self, status: int, headers: Any, body: bytes) -> list[bytes]:
        """The bytes of a complete response with a known body, for an adapter
        to write at once (no operation to run)."""
        settings = self._settings
        date = settings.date() if settings.date is not None else http_date()
        return whole_response(
            self._conn, self._exchange, settings, status, headers, body=body, date=date
        )

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The client's verified TLS certificate (``ssl.SSLSocket.getpeercert()``
        form), or None: plain HTTP, or a server that does not ask for one."""
        return peer_certificate_of(self._stream.tls_object)

    @property
    def path(self) -> bytes:
        """The target without its query."""
        return self.target.partition(b"?")[0]

    @property
    def query(self) -> bytes:
        """The query part of the target (after ``?``)."""
        return self.target.partition(b"?")[2]

    async def read_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end.

        Raises :class:`~protomata.http._operations.BodyTooLarge` past the
        server's ``max_body_size`` (the server then answers 413).
        """
        if self._finished:
            return None
        chunk: bytes | None = await self._run(
            read_request_body_chunk(self._conn, self._exchange, self._settings, self._received),
            self._stream,
        )
        if chunk is None:
            self._finished = True
        else:
            self._received += len(chunk)
        return chunk

    async def iter_body(self) -> AsyncIterator[bytes]:
        """Yield the request body piece by piece."""
        while (chunk := await self.read_chunk()) is not None:
            yield chunk

    async def read(self) -> bytes:
        """The whole (remaining) request body."""
        return b"".join([chunk async for chunk in self.iter_body()])

    # Streaming responses, for handlers that do not return a ResponseSpec.

    async def start_response(
        self,
        status: int,
        headers: Iterable[tuple[Any, Any]] = (),
        *,
        content_length: int | None = None,
    ) -> None:
        """Send the response head (Date and Server fields are added)."""
        conn, exchange, settings = self._conn, self._exchange, self._settings
        await self._send(
            start_response(conn, exchange, settings, status, headers, content_length=content_length)
        )

    async def send(self, data: bytes) -> None:
        """Send a piece of the response body."""
        await self._send(send_body(self._conn, self._exchange, data))

    async def end_response(self) -> None:
        """Finish the response."""
        await self._send(end_response(self._conn))

    async def respond(self, spec: ResponseSpec) -> None:
        """Send a complete response; a one-piece body leaves with its head in one write."""
        op = respond(self._conn, self._exchange, self._settings, spec)
        if spec.body is None:  # a streamed body: pulling its pieces may wait
            await self._run(op, self._stream, respond_calls)
        else:
            await self._send(op)


def _stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class AsyncHTTPService:
    """Serve an async *handler* over HTTP/1.1 with a task per connection.

    The handler gets a :class:`ServerRequest` and returns a
    :class:`~protomata.http.ResponseSpec` (whose ``stream`` may be a sync or
    async iterable of bytes), or streams the response itself with
    ``await request.start_response/send/end_response`` and returns None.
    *access_log* receives one Common Log Format line per request (stderr by
    default; ``False`` turns it off).
    """

    # Supplied by the adapter class that mixes this in.
    _request_class: type[AsyncServerRequest]
    _run: Callable[..., Awaitable[Any]]

    def __init__(
        self,
        handler: Callable[[Any], Awaitable[ResponseSpec | None]],
        host: str | None = "127.0.0.1",
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
        super().__init__(  # type: ignore[call-arg]  # the adapter's TCPServer
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
        if self.settings.date is None:
            self.settings.date = http_date  # no Call("date") round trip per response
        if access_log is None or access_log is True:
            self.access_log: Callable[[str], None] | None = _stderr_log
        elif access_log is False:
            self.access_log = None
            self.settings.log_exchanges = False  # nobody wants Call("log")
        else:
            self.access_log = access_log

    def on_drain(self) -> None:
        """From now on, responses say ``Connection: close``."""
        self.settings.draining = True

    async def handle_connection(self, stream: Any) -> None:
        """Serve one connection: requests until it closes."""
        conn = Connection(SERVER)
        settings = self.settings
        client = stream.peer
        handler = self.handler
        make_request = self._request_class
        access_log = self.access_log

        def on_call(call: Call) -> Any:
            name = call.name
            if name == "handle":
                return handler(make_request(call.args[0], conn, stream, settings, client))
            if name == "date":
                return http_date()
            if name == "log":
                if access_log is not None:
                    access_log(access_log_line(client[0], call.args[0], clf_time()))
                return None
            if name == "next_chunk":
                return next_chunk(call.args[0])
            if name == "log_exception":
                log.error("error in HTTP handler:\n%s", _traceback(call.args[1]))
                return None
            if name == "log_error":
                return None
            raise RuntimeError(f"unexpected call {name!r}")

        await self._run(serve_connection(conn, settings), stream, on_call)
