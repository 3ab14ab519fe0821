"""Serve ASGI 3 applications (``http`` and ``lifespan``) on :class:`HTTPServer`.

The scope, message validation and lifespan conversation are pure
(:mod:`protomata.http._asgi`); this module only wires ``receive`` and
``send`` to the connection.  The application coroutine runs directly in
the connection's task: no task per request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..http._asgi import (
    DISCONNECT,
    ASGIProtocolError,
    Lifespan,
    LifespanFailure,
    ResponseTranslator,
    http_scope,
    lifespan_scope,
    request_message,
)
from ..http._operations import (
    ResponseSpec,
    ServerSettings,
    end_response,
    respond,
    send_body,
    start_response,
)
from ._httpserver import HTTPServer, ServerRequest, _push
from ._stream import Timeouts

__all__ = ["ASGIApp", "ASGIServer", "serve_asgi"]

log = logging.getLogger("protomata.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ASGIServer(HTTPServer):
    """Serve the ASGI 3 application *app* over HTTP/1.1.

    *lifespan* is ``"auto"`` (run the lifespan protocol; if the app raises
    on the lifespan scope, go on without it), ``"on"`` (a failure stops
    the server from starting) or ``"off"``.  An app exception before the
    response starts is answered with 500; after it started, the connection
    is closed.  Other keyword arguments are those of :class:`HTTPServer`.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        lifespan: str = "auto",
        root_path: str = "",
        settings: ServerSettings | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 1000,
        tls_context: ssl.SSLContext | None = None,
        access_log: Callable[[str], None] | bool | None = None,
        reuse_port: bool = False,
        grace: float = 10.0,
        lifespan_timeout: float = 60.0,
    ) -> None:
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {lifespan!r}")
        super().__init__(
            self._handle,
            host,
            port,
            settings=settings,
            timeouts=timeouts,
            max_connections=max_connections,
            tls_context=tls_context,
            access_log=access_log,
            reuse_port=reuse_port,
            grace=grace,
        )
        self.app = app
        self.lifespan_mode = lifespan
        self.lifespan_timeout = lifespan_timeout
        self.root_path = root_path
        self.scheme = "https" if tls_context is not None else "http"
        #: the lifespan ``state`` (None when the app does not do lifespan)
        self.state: dict[str, Any] | None = None
        self._lifespan: Lifespan | None = None
        self._lifespan_task: asyncio.Task[None] | None = None
        self._lifespan_changed: asyncio.Event | None = None
        self._lifespan_wake: asyncio.Event | None = None
        self._server_addr: tuple[str, int | None] = (host, self.port)

    # -- http ---------------------------------------------------------------------

    async def _handle(self, request: ServerRequest) -> ResponseSpec | None:
        exchange = request._exchange
        scope = http_scope(
            exchange.request,
            request.client,
            self._server_addr,
            self.scheme,
            root_path=self.root_path,
            state=self.state,
        )
        translator = ResponseTranslator()
        info = exchange.request.headers.info
        body_done = not info.chunked and not info.content_length
        stream = request._stream
        sent_empty = False
        finished: asyncio.Future[None] | None = None

        async def receive() -> Message:
            nonlocal body_done, sent_empty, finished
            if not body_done:
                chunk = await request.read_chunk()
                if chunk is None:
                    body_done = sent_empty = True
                    return request_message(b"", False)
                return request_message(chunk, True)
            if not sent_empty:
                sent_empty = True
                return request_message(b"", False)
            # The body is over: the next message is the disconnect, once the
            # response is complete or the client is gone.
            if not translator.complete and not stream.is_closing:
                closed = stream._protocol.closed
                finished = asyncio.get_running_loop().create_future()
                await asyncio.wait({closed, finished}, return_when=asyncio.FIRST_COMPLETED)
            return dict(DISCONNECT)

        conn, settings = request._conn, request._settings

        async def send(message: Message) -> None:
            action = translator.feed(message)
            kind = action[0]
            if kind == "response":
                _, status, headers, body, more = action
                if more:
                    _push(start_response(conn, exchange, settings, status, headers), stream)
                    _push(send_body(conn, exchange, body), stream)
                else:
                    _push(
                        respond(conn, exchange, settings, ResponseSpec(status, headers, body)),
                        stream,
                    )
            elif kind == "body":
                _, body, more = action
                _push(send_body(conn, exchange, body), stream)
                if not more:
                    _push(end_response(conn), stream)
            else:
                return
            if stream.flush_nowait():
                await stream.drain()
            if translator.complete and finished is not None and not finished.done():
                finished.set_result(None)

        await self.app(scope, receive, send)
        if translator.head_pending:
            # A start with no body message: ASGI leaves the response open;
            # we end it empty rather than hang the client.
            status, headers = translator.take_head()
            await request.respond(ResponseSpec(status, headers, b""))
        elif not translator.started:
            raise ASGIProtocolError("ASGI app returned without sending a response")
        elif not translator.complete:
            log.warning("ASGI app returned without finishing its response")
        return None

    # -- lifespan -------------------------------------------------------------------

    async def on_startup(self) -> None:
        if self.lifespan_mode == "off":
            return
        lifespan = self._lifespan = Lifespan()
        state: dict[str, Any] = {}
        changed = self._lifespan_changed = asyncio.Event()
        wake = self._lifespan_wake = asyncio.Event()

        async def receive() -> Message:
            while (message := lifespan.next_message()) is None:
                wake.clear()
                await wake.wait()
            return message

        async def send(message: Message) -> None:
            lifespan.feed(message)
            changed.set()

        async def run_app() -> None:
            await self.app(lifespan_scope(state), receive, send)

        task = self._lifespan_task = asyncio.get_running_loop().create_task(run_app())
        await self._wait_lifespan(("starting",))
        if lifespan.phase == "started":
            self.state = state
            return
        if lifespan.phase == "failed":
            raise LifespanFailure(f"ASGI lifespan startup failed: {lifespan.error}")
        # The app ended (or raised) without answering startup.
        error = task.exception() if task.done() and not task.cancelled() else None
        self._lifespan = None
        if self.lifespan_mode == "on":
            raise LifespanFailure(f"ASGI lifespan startup did not complete: {error!r}")
        if error is not None:
            log.info("ASGI app does not support lifespan (%r); going on without it", error)

    async def _wait_lifespan(self, phases: tuple[str, ...]) -> None:
        lifespan, task, changed = self._lifespan, self._lifespan_task, self._lifespan_changed
        assert lifespan is not None and task is not None and changed is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lifespan_timeout
        while lifespan.phase in phases and not task.done():
            changed.clear()
            waiter = asyncio.ensure_future(changed.wait())
            left = deadline - loop.time()
            await asyncio.wait(
                {task, waiter}, timeout=max(left, 0), return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            if loop.time() >= deadline:
                raise TimeoutError("ASGI lifespan step timed out")

    async def on_shutdown(self) -> None:
        lifespan, task = self._lifespan, self._lifespan_task
        if task is None:
            return
        try:
            if lifespan is not None and lifespan.phase == "started" and not task.done():
                lifespan.begin_shutdown()
                assert self._lifespan_wake is not None
                self._lifespan_wake.set()
                await self._wait_lifespan(("stopping",))
                if lifespan.phase == "failed":
                    log.error("ASGI lifespan shutdown failed: %s", lifespan.error)
        finally:
            if not task.done():
                task.cancel()
            await asyncio.wait({task}, timeout=1.0)
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.debug("lifespan app raised: %r", task.exception())


async def serve_asgi(app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, **kw: Any) -> None:
    """Serve *app* until SIGINT/SIGTERM; keyword arguments go to :class:`ASGIServer`."""
    server = ASGIServer(app, host, port, **kw)
    await server.serve_forever()
