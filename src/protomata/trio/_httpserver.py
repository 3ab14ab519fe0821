"""The trio HTTP server: one task per connection over the pure serve loop.

All but the trio specifics lives in :mod:`protomata.sync._asynchttpserver`,
shared with the asyncio server.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

from ..http._operations import ResponseSpec
from ..sync._asynchttpserver import AsyncHTTPService, AsyncServerRequest
from ..sync._httpserver import http_date
from ._runner import run
from ._server import TCPServer

__all__ = ["HTTPServer", "ServerRequest", "http_date", "iter_spec"]


class ServerRequest(AsyncServerRequest):
    """A request as an async handler sees it; the body is read on demand."""

    _run = staticmethod(run)


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
