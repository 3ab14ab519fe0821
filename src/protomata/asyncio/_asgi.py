"""Serve ASGI 3 applications (``http`` and ``lifespan``) on :class:`HTTPServer`.

The scope, message validation and lifespan conversation are pure
(:mod:`protomata.http._asgi`); this module only wires ``receive`` and
``send`` to the connection.  The application coroutine runs directly in
the connection's task: no task per request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..http._asgi import (
    DISCONNECT,
    ASGIProtocolError,
    Lifespan,
    LifespanFailure,
    lifespan_scope,
    request_message,
)
from ..http._operations import (
    ResponseSpec,
    end_response,
    send_body,
    start_response,
)
from ..sync._asyncasgi import ASGIApp, AsyncASGIService, Message
from ._httpserver import HTTPServer, ServerRequest, _push

__all__ = ["ASGIApp", "ASGIServer", "serve_asgi"]

log = logging.getLogger("protomata.asgi")


class ASGIServer(AsyncASGIService, HTTPServer):
    __doc__ = AsyncASGIService.__doc__

    _lifespan_task: asyncio.Task[None] | None = None
    _lifespan_changed: asyncio.Event | None = None
    _lifespan_wake: asyncio.Event | None = None

    # -- http ---------------------------------------------------------------------

    async def _handle(self, request: ServerRequest) -> ResponseSpec | None:
        scope, translator, body_done = self._start_exchange(request)
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

        conn, exchange, settings = request._conn, request._exchange, request._settings

        async def send(message: Message) -> None:
            action = translator.feed(message)
            kind = action[0]
            if kind == "response":
                _, status, headers, body, more = action
                if more:
                    _push(start_response(conn, exchange, settings, status, headers), stream)
                    _push(send_body(conn, exchange, body), stream)
                else:
                    stream.write(request._whole_response(status, headers, body))
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
