"""Serve ASGI 3 applications (``http`` and ``lifespan``) on trio.

The scope, message validation and lifespan conversation are pure
(:mod:`protomata.http._asgi`); this module only wires ``receive`` and
``send`` to the connection.  The application coroutine runs directly in
the connection's task; the lifespan conversation runs in a task beside
the server for as long as it serves.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ..http._asgi import (
    DISCONNECT,
    ASGIProtocolError,
    Lifespan,
    LifespanFailure,
    lifespan_scope,
    request_message,
)
from ..http._operations import ProtocolFailure, ResponseSpec
from ..sync._asyncasgi import ASGIApp, AsyncASGIService, Message
from ._httpserver import HTTPServer, ServerRequest
from ._server import TCPServer

__all__ = ["ASGIApp", "ASGIServer", "serve_asgi"]

log = logging.getLogger("protomata.asgi")


class ASGIServer(AsyncASGIService, HTTPServer):
    __doc__ = AsyncASGIService.__doc__

    _lifespan_nursery: trio.Nursery | None = None
    _lifespan_error: BaseException | None = None

    def _init_lifespan(self) -> None:
        self._lifespan_changed = trio.Event()
        self._lifespan_wake = trio.Event()
        self._lifespan_ended = trio.Event()

    # -- http ---------------------------------------------------------------------

    async def _handle(self, request: ServerRequest) -> ResponseSpec | None:
        scope, translator, body_done = self._start_exchange(request)
        sent_last = False
        finished = trio.Event()  # the response is complete or the client is gone

        async def receive() -> Message:
            nonlocal body_done, sent_last
            if not body_done:
                try:
                    chunk = await request.read_chunk()
                except ProtocolFailure:  # the client went away mid-body
                    body_done = sent_last = True
                    finished.set()
                    return dict(DISCONNECT)
                if chunk is None:
                    body_done = sent_last = True
                    return request_message(b"", False)
                return request_message(chunk, True)
            if not sent_last:
                sent_last = True
                return request_message(b"", False)
            # The body is over: the next message is the disconnect, once the
            # response is complete (we do not read ahead to notice a client
            # leaving earlier: the connection may carry the next request).
            await finished.wait()
            return dict(DISCONNECT)

        async def send(message: Message) -> None:
            action = translator.feed(message)
            kind = action[0]
            if kind == "response":
                _, status, headers, body, more = action
                if more:
                    await request.start_response(status, headers)
                    await request.send(body)
                else:
                    # A whole response, sent in one write (no operation to run).
                    await request._stream.send_all(request._whole_response(status, headers, body))
            elif kind == "body":
                _, body, more = action
                await request.send(body)
                if not more:
                    await request.end_response()
            if translator.complete:
                finished.set()

        try:
            await self.app(scope, receive, send)
        finally:
            finished.set()
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

    async def serve_forever(
        self,
        *,
        handle_signals: bool = True,
        task_status: trio.TaskStatus[TCPServer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the lifespan startup, serve until shut down, run the lifespan shutdown."""
        failure: Exception | None = None
        async with trio.open_nursery() as nursery:
            self._lifespan_nursery = nursery
            try:
                await super().serve_forever(handle_signals=handle_signals, task_status=task_status)
            except Exception as exc:  # re-raised below, not wrapped in a group
                failure = exc
            finally:
                nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _run_lifespan(self, state: dict[str, Any]) -> None:
        lifespan = self._lifespan
        assert lifespan is not None

        async def receive() -> Message:
            while (message := lifespan.next_message()) is None:
                self._lifespan_wake = trio.Event()
                await self._lifespan_wake.wait()
            return message

        async def send(message: Message) -> None:
            lifespan.feed(message)
            self._lifespan_changed.set()

        try:
            await self.app(lifespan_scope(state), receive, send)
        except Exception as exc:
            self._lifespan_error = exc
        finally:
            self._lifespan_ended.set()
            self._lifespan_changed.set()

    async def _wait_lifespan(self, phase: str) -> None:
        lifespan = self._lifespan
        assert lifespan is not None
        with trio.fail_after(self.lifespan_timeout):
            while lifespan.phase == phase and not self._lifespan_ended.is_set():
                self._lifespan_changed = trio.Event()
                await self._lifespan_changed.wait()

    async def on_startup(self) -> None:
        if self.lifespan_mode == "off":
            return
        nursery = self._lifespan_nursery
        if nursery is None:
            raise RuntimeError("ASGIServer.on_startup runs inside serve_forever")
        lifespan = self._lifespan = Lifespan()
        state: dict[str, Any] = {}
        nursery.start_soon(self._run_lifespan, state)
        try:
            await self._wait_lifespan("starting")
        except trio.TooSlowError:
            raise LifespanFailure("ASGI lifespan startup timed out") from None
        if lifespan.phase == "started":
            self.state = state
            return
        if lifespan.phase == "failed":
            raise LifespanFailure(f"ASGI lifespan startup failed: {lifespan.error}")
        # The app ended (or raised) without answering startup.
        self._lifespan = None
        error = self._lifespan_error
        if self.lifespan_mode == "on":
            raise LifespanFailure(f"ASGI lifespan startup did not complete: {error!r}")
        if error is not None:
            log.info("ASGI app does not support lifespan (%r); going on without it", error)

    async def on_shutdown(self) -> None:
        lifespan = self._lifespan
        if lifespan is None or lifespan.phase != "started" or self._lifespan_ended.is_set():
            return
        lifespan.begin_shutdown()
        self._lifespan_wake.set()
        try:
            await self._wait_lifespan("stopping")
        except trio.TooSlowError:
            log.error("ASGI lifespan shutdown timed out")
            return
        if lifespan.phase == "failed":
            log.error("ASGI lifespan shutdown failed: %s", lifespan.error)


async def serve_asgi(app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, **kw: Any) -> None:
    """Serve *app* until SIGINT/SIGTERM; keyword arguments go to :class:`ASGIServer`.

    Run it with ``trio.run(serve_asgi, app)``.
    """
    server = ASGIServer(app, host, port, **kw)
    await server.serve_forever()
