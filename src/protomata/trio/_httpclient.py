"""The trio HTTP client: a keep-alive pool over the pure HTTP operations.

All but the trio specifics lives in :mod:`protomata.sync._asynchttp`,
shared with the asyncio client.
"""

from __future__ import annotations

from typing import Any

import trio

from ..http._operations import HTTPError
from ..sync._asynchttp import AsyncClientResponse, AsyncHTTPClient, one_request
from ._runner import run
from ._stream import Stream, connect_tcp

__all__ = ["ClientResponse", "HTTPClient", "HTTPError", "get", "request"]


class ClientResponse(AsyncClientResponse):
    """A response whose body is read on demand.

    Read it with ``await`` :meth:`read` or ``async for`` over
    :meth:`iter_bytes`; the connection goes back to the pool once the body
    has been read to its end.  ``async with`` (or :meth:`aclose`) drops the
    connection if the body was not read.
    """


class HTTPClient(AsyncHTTPClient[ClientResponse]):
    """A trio HTTP/1.1 client with a keep-alive connection pool.

    :param timeout: seconds for connecting and for each read and write.
    :param verify: verify TLS certificates and host names (default).  Pass
        ``False`` only for testing; or pass an :class:`ssl.SSLContext`.
    :param follow_redirects: follow 301/302/303/307/308 responses.
    :param max_redirects: how many redirects to follow before giving up.
    :param max_idle_per_origin: idle connections kept per origin.
    """

    _response_class = ClientResponse
    _run = staticmethod(run)
    _connect_tcp = staticmethod(connect_tcp)
    _transport_errors = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)

    @staticmethod
    def _is_closed(stream: Stream) -> bool:
        return stream.closed

    async def _drop(self, stream: Stream) -> None:
        await stream.aclose()


async def request(method: str, url: str, **kwargs: Any) -> ClientResponse:
    """One request on a fresh client; the body is read before returning."""
    return await one_request(HTTPClient, method, url, kwargs)


async def get(url: str, **kwargs: Any) -> ClientResponse:
    """``request("GET", url, ...)``."""
    return await request("GET", url, **kwargs)
