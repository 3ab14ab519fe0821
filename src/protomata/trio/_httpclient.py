"""The trio HTTP client: a keep-alive pool over the pure HTTP operations."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import Any

import trio

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

    Read it with ``await`` :meth:`read` or ``async for`` over
    :meth:`iter_bytes`; the connection goes back to the pool once the body
    has been read to its end.
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
            await self.aclose()
            raise
        await self._release()

    async def _read_chunk(self) -> bytes | None:
        try:
            return await run(read_body_chunk(self._conn), self._stream)
        except TimeoutError as exc:
            raise HTTPError(f"{self.url}: timed out reading the body") from exc
        except (OSError, trio.BrokenResourceError) as exc:
            raise HTTPError(f"{self.url}: {exc}") from exc

    async def read(self) -> bytes:
        """The whole body."""
        if self._content is None:
            if self._client is None:
                raise RuntimeError("response body was already consumed or closed")
            chunks: list[bytes] = []
            try:
                while (chunk := await self._read_chunk()) is not None:
                    chunks.append(chunk)
            except BaseException:
                await self.aclose()
                raise
            self._content = b"".join(chunks)
            await self._release()
        return self._content

    async def text(self, encoding: str = "utf-8") -> str:
        """The whole body decoded (undecodable bytes replaced)."""
        return (await self.read()).decode(encoding, errors="replace")

    async def _release(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client._release(self._origin, self._conn, self._stream)

    async def aclose(self) -> None:
        """Drop the connection without reading the rest of the body."""
        client, self._client = self._client, None
        if client is not None:
            client._busy.discard(self._stream)
            await self._stream.aclose()

    async def __aenter__(self) -> ClientResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.url}>"


class HTTPClient:
    """A trio HTTP/1.1 client with a keep-alive connection pool.

    :param timeout: seconds for connecting and for each read and write.
    :param verify: verify TLS certificates and host names (default).  Pass
        ``False`` only for testing; or pass an :class:`ssl.SSLContext`.
    :param follow_redirects: follow 301/302/303/307/308 responses.
    :param max_redirects: how many redirects to follow before giving up.
    :param max_idle_per_origin: idle connections kept per origin.
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
        self._busy: set[Stream] = set()  # connections with a response being read

    async def _connect(self, origin: Origin) -> tuple[Connection, Stream, bool]:
        """A connection to *origin*: (machine, stream, taken from the pool)."""
        idle = self._idle.get(origin)
        if idle:
            return (*idle.pop(), True)
        try:
            stream = await connect_tcp(
                origin.host,
                origin.port,
                timeouts=self.timeouts,
                tls_context=self.tls_context,
                tls=origin.tls,
            )
        except ssl.SSLError as exc:
            raise HTTPError(f"TLS failed with {origin.host}:{origin.port}: {exc}") from exc
        except TimeoutError as exc:
            raise HTTPError(f"timed out connecting to {origin.host}:{origin.port}") from exc
        except OSError as exc:
            raise HTTPError(f"cannot connect to {origin.host}:{origin.port}: {exc}") from exc
        return Connection(CLIENT), stream, False

    async def _release(self, origin: Origin, conn: Connection, stream: Stream) -> None:
        self._busy.discard(stream)
        idle = self._idle.setdefault(origin, [])
        if finish_cycle(conn) and len(idle) < self.max_idle_per_origin and not stream.closed:
            idle.append((conn, stream))
        else:
            await stream.aclose()

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
        on_call = _chunk_source(content) if prepared.streaming else _no_body
        op_args = (prepared.request, prepared.body, prepared.streaming)
        retried = False
        while True:
            conn, stream, reused = await self._connect(prepared.origin)
            try:
                event = await run(exchange(conn, *op_args), stream, on_call)
            except (ProtocolFailure, OSError) as exc:
                await stream.aclose()
                if should_retry(exc, reused=reused, retried=retried, streaming=prepared.streaming):
                    retried = True
                    continue
                if isinstance(exc, ProtocolFailure):
                    raise
                raise transport_error(prepared, exc) from exc
            except BaseException:
                await stream.aclose()
                raise
            self._busy.add(stream)
            return ClientResponse(
                self, prepared.origin, conn=conn, stream=stream, url=prepared.url, event=event
            )

    async def get(self, url: str, **kwargs: Any) -> ClientResponse:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **kwargs)

    async def aclose(self) -> None:
        """Close every pooled connection, and those of responses still unread."""
        idle, self._idle = self._idle, {}
        busy, self._busy = self._busy, set()
        for streams in idle.values():
            for _, stream in streams:
                await stream.aclose()
        for stream in busy:
            await stream.aclose()

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _no_body(call: Call) -> None:
    return None


def _chunk_source(content: Any) -> Any:
    """The ``next_chunk`` call handler for a sync or async iterable body."""
    if hasattr(content, "__aiter__"):
        chunks = content.__aiter__()

        async def next_async(call: Call) -> bytes | None:
            try:
                return bytes(await chunks.__anext__())
            except StopAsyncIteration:
                return None

        return next_async
    sync_chunks: Iterator[bytes] = iter(content)
    return lambda call: next(sync_chunks, None)


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
