"""The asyncio HTTP client: a keep-alive pool over the pure HTTP operations.

All but the asyncio specifics lives in :mod:`protomata.sync._asynchttp`,
shared with the trio client.
"""

from __future__ import annotations

from typing import Any

from ..http._operations import HTTPError
from ..sync._asynchttp import AsyncClientResponse, AsyncHTTPClient, one_request
from ._runner import run
from ._stream import Stream, connect_tcp

__all__ = ["ClientResponse", "HTTPClient", "HTTPError", "get", "request"]


class ClientResponse(AsyncClientResponse):
    """A response whose body is read on demand.

    Read it with ``await read()`` or ``async for chunk in iter_bytes()``;
    the connection goes back to the pool once the body has been read.
    ``async with`` (or :meth:`aclose`, or :meth:`close`) drops the
    connection if the body was not read.
    """

    def close(self) -> None:
        """Drop the connection without reading the rest of the body."""
        client, self._client = self._client, None
        if client is not None:
            client._busy.discard(self._stream)
            self._stream.close()


class HTTPClient(AsyncHTTPClient[ClientResponse]):
    """An asyncio HTTP/1.1 client with a keep-alive connection pool.

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

    @staticmethod
    def _is_closed(stream: Stream) -> bool:
        return stream.is_closing

    async def _drop(self, stream: Stream) -> None:
        stream.close()  # no waiting for a TLS close_notify from a peer we leave


async def request(method: str, url: str, **kwargs: Any) -> ClientResponse:
    """One request on a fresh client; the body is read before returning."""
    return await one_request(HTTPClient, method, url, kwargs)


async def get(url: str, **kwargs: Any) -> ClientResponse:
    """``request("GET", url, ...)``."""
    return await request("GET", url, **kwargs)
