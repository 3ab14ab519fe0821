"""The asyncio HTTP server: one task per connection over the pure serve loop.

All but the asyncio specifics lives in :mod:`protomata.sync._asynchttpserver`,
shared with the trio server.  What is asyncio's own: a response that only
sends is queued on the transport without a task switch per piece.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

from .._core._ops import Call, Operation, Send
from ..http._operations import ResponseSpec
from ..sync._asynchttpserver import AsyncHTTPService, AsyncServerRequest
from ..sync._httpserver import http_date
from ._runner import run
from ._server import TCPServer
from ._stream import Stream

__all__ = ["HTTPServer", "ServerRequest", "http_date", "iter_spec"]


class ServerRequest(AsyncServerRequest):
    """A request as an async handler sees it; the body is read on demand."""

    _run = staticmethod(run)

    async def _send(self, op: Operation[None]) -> None:
        stream = self._stream
        _push(op, stream)
        if stream.flush_nowait():
            await stream.drain()


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


#: An HTTP handler: gets the request, returns a ResponseSpec or None.
Handler = Callable[[ServerRequest], Awaitable["ResponseSpec | None"]]


class HTTPServer(AsyncHTTPService, TCPServer):
    __doc__ = AsyncHTTPService.__doc__

    _request_class = ServerRequest
    _run = staticmethod(run)


def iter_spec(
    status: int,
    body: Iterable[bytes] | AsyncIterable[bytes],
    headers: Iterable[tuple[Any, Any]] = (),
) -> ResponseSpec:
    """A streamed ResponseSpec from any sync or async iterable of byte strings."""
    return ResponseSpec(status, headers, None, stream=body)
