"""The asyncio HTTP client: a keep-alive pool over the pure HTTP operations."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import Any

from .._core._ops import Call
from ..http import CLIENT, Connection, Headers, Response
from ..http._operations import (
    HTTPError,
    Origin,
    PreparedRequest,
    ProtocolFailure,
    TooManyRedirects,
    exchange,
    finish_cycle,
    next_hop,
    prepare_request,
    read_body_chunk,
    should_retry,
    transport_error,
)
from ._runner import run
from ._stream import Stream, Timeouts, connect_tcp

__all__ = ["ClientResponse", "HTTPClient", "HTTPError", "get", "request"]

Content = bytes | Iterable[bytes] | AsyncIterable[bytes] | None


class ClientResponse:
    """A response whose body is read on demand.

    Read it with ``await read()`` or ``async for chunk in iter_bytes()``;
    the connection goes back to the pool once the body has been read.
    """

    def __init__(
        self,
        client: HTTPClient,
        origin: Origin,
        *,
        conn: Connection,
        stream: Stream,
        url: str,
        event: Response,
    ) -> None:
        self.url = url
        self.status: int = event.status_code
        self.reason: bytes = event.reason
        self.http_version: bytes = event.http_version
        self.headers: Headers = event.headers
        self._client: HTTPClient | None = client
        self._origin = origin
        self._conn = conn
        self._stream = stream
        self._content: bytes | None = None
        self._event = event

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield the body piece by piece as it arrives."""
        if self._content is not None:
            yield self._content
            return
        if self._client is None:
            raise RuntimeError("response body was already consumed or closed")
        try:
            while (chunk := await self._read_chunk()) is not None:
                yield chunk
        except BaseException:
            self.close()
            raise
        self._release()

    async def _read_chunk(self) -> bytes | None:
        try:
            return await run(read_body_chunk(self._conn), self._stream)
        except TimeoutError as exc:
            raise HTTPError(f"{self.url}: timed out reading the response body") from exc
        except OSError as exc:
            raise HTTPError(f"{self.url}: connection failed reading the body: {exc}") from exc

    async def read(self) -> bytes:
        """The whole body."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.iter_bytes()])
        return self._content

    async def text(self, encoding: str = "utf-8") -> str:
        """The whole body decoded (undecodable bytes replaced)."""
        return (await self.read()).decode(encoding, errors="replace")

    def _release(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client._release(self._origin, self._conn, self._stream)

    def close(self) -> None:
        """Drop the connection without reading the rest of the body."""
        if self._client is not None:
            self._client = None
            self._stream.close()

    async def aclose(self) -> None:
        """Like :meth:`close` (for ``async with``)."""
        self.close()

    async def __aenter__(self) -> ClientResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.url}>"


class HTTPClient:
    """An asyncio HTTP/1.1 client with a keep-alive connection pool.

    :param timeout: seconds for connecting and for each read and write.
    :param verify: verify TLS certificates and host names (default).  Pass
        ``False`` only for testing; or pass an :class:`ssl.SSLContext`.
    :param follow_redirects: follow 301/302/303/307/308 responses.
    :param max_redirects: how many redirects to follow before giving up.
    """

    def __init__(
        self,
        *,
        timeout: float | None = 30.0,
        verify: bool | ssl.SSLContext = True,
        follow_redirects: bool = False,
        max_redirects: int = 20,
        max_idle_per_origin: int = 8,
    ) -> None:
        self.timeouts = Timeouts(timeout, connect=timeout, write=timeout)
        if isinstance(verify, ssl.SSLContext):
            self.tls_context = verify
        else:
            self.tls_context = ssl.create_default_context()
            if not verify:
                self.tls_context.check_hostname = False
                self.tls_context.verify_mode = ssl.CERT_NONE
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.max_idle_per_origin = max_idle_per_origin
        self._idle: dict[Origin, list[tuple[Connection, Stream]]] = {}

    async def _connect(self, origin: Origin) -> tuple[Connection, Stream, bool]:
        """A connection to *origin*: (machine, stream, taken from the pool)."""
        idle = self._idle.get(origin)
        while idle:
            conn, stream = idle.pop()
            if not stream.is_closing:
                return conn, stream, True
        where = f"{origin.host}:{origin.port}"
        try:
            stream = await connect_tcp(
                origin.host,
                origin.port,
                timeouts=self.timeouts,
                tls_context=self.tls_context,
                tls=origin.tls,
            )
        except ssl.SSLCertVerificationError as exc:
            raise HTTPError(f"TLS certificate verification failed for {where}: {exc}") from exc
        except ssl.SSLError as exc:
            raise HTTPError(f"TLS failed with {where}: {exc}") from exc
        except ConnectionRefusedError as exc:
            raise HTTPError(f"cannot connect to {where}: connection refused") from exc
        except TimeoutError as exc:
            raise HTTPError(f"cannot connect to {where}: timed out") from exc
        except OSError as exc:
            raise HTTPError(f"cannot connect to {where}: {exc}") from exc
        return Connection(CLIENT), stream, False

    def _release(self, origin: Origin, conn: Connection, stream: Stream) -> None:
        idle = self._idle.setdefault(origin, [])
        if finish_cycle(conn) and len(idle) < self.max_idle_per_origin and not stream.is_closing:
            idle.append((conn, stream))
        else:
            stream.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Iterable[tuple[Any, Any]] = (),
        content: Content = None,
    ) -> ClientResponse:
        """Send a request; return the response with its body unread.

        *content* is the body: bytes (sent with Content-Length) or a sync or
        async iterable of bytes (sent chunked).
        """
        method_b = method.encode("ascii").upper()
        for _ in range(self.max_redirects + 1):
            prepared = prepare_request(method_b, url, headers, content)
            response = await self._send_once(prepared, content)
            hop = next_hop(prepared, content, response._event, self.follow_redirects)
            if hop is None:
                return response
            await response.read()  # so the connection can be reused
            url, method_b, content = hop
        raise TooManyRedirects(f"more than {self.max_redirects} redirects")

    async def _send_once(self, prepared: PreparedRequest, content: Content) -> ClientResponse:
        on_call = _chunk_source(content if prepared.streaming else None)
        op_args = (prepared.request, prepared.body, prepared.streaming)
        retried = False
        while True:
            conn, stream, reused = await self._connect(prepared.origin)
            try:
                event = await run(exchange(conn, *op_args), stream, on_call)
            except (ProtocolFailure, OSError) as exc:
                stream.close()
                if should_retry(exc, reused=reused, retried=retried, streaming=prepared.streaming):
                    retried = True
                    continue
                if isinstance(exc, ProtocolFailure):
                    raise
                raise transport_error(prepared, exc) from exc
            except BaseException:
                stream.close()
                raise
            return ClientResponse(
                self, prepared.origin, conn=conn, stream=stream, url=prepared.url, event=event
            )

    async def get(self, url: str, **kwargs: Any) -> ClientResponse:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **kwargs)

    async def aclose(self) -> None:
        """Close every pooled connection."""
        for idle in self._idle.values():
            for _, stream in idle:
                stream.close()
        self._idle.clear()

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _chunk_source(content: Any) -> Any:
    """The ``next_chunk`` call handler for a streamed request body."""
    if content is None:
        return lambda call: None
    if hasattr(content, "__aiter__"):
        iterator = content.__aiter__()

        async def next_async(call: Call) -> bytes | None:
            try:
                return await iterator.__anext__()  # type: ignore[no-any-return]
            except StopAsyncIteration:
                return None

        return next_async
    sync_iterator = iter(content)
    return lambda call: next(sync_iterator, None)


async def request(method: str, url: str, **kwargs: Any) -> ClientResponse:
    """One request on a fresh client; the body is read before returning."""
    client_args = {
        k: kwargs.pop(k) for k in ("timeout", "verify", "follow_redirects") if k in kwargs
    }
    async with HTTPClient(**client_args) as client:
        response = await client.request(method, url, **kwargs)
        await response.read()
        return response


async def get(url: str, **kwargs: Any) -> ClientResponse:
    """``request("GET", url, ...)``."""
    return await request("GET", url, **kwargs)
