"""The loop-agnostic half of the asyncio and trio HTTP clients.

The conversation is :mod:`protomata.http._operations`; these classes keep
the connection pool and turn transport failures into :class:`HTTPError`.
Each async adapter subclasses them and supplies its runner, its
``connect_tcp``, how to drop a connection and which exceptions its streams
raise; nothing here imports an event loop.
"""

from __future__ import annotations

import abc
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Generic, TypeVar

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
from ._stream import Timeouts

__all__ = [
    "AsyncClientResponse",
    "AsyncHTTPClient",
    "Content",
    "chunk_source",
    "client_tls_context",
    "connect_error",
    "one_request",
]

Content = bytes | Iterable[bytes] | AsyncIterable[bytes] | None

R = TypeVar("R", bound="AsyncClientResponse")
C = TypeVar("C", bound="AsyncHTTPClient[Any]")


def client_tls_context(verify: bool | ssl.SSLContext = True) -> ssl.SSLContext:
    """A client TLS context: verifying (the default), *verify* itself, or not verifying."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect_error(origin: Origin, exc: BaseException) -> HTTPError:
    """The :class:`HTTPError` for a failure to connect to *origin*."""
    where = f"{origin.host}:{origin.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return HTTPError(f"TLS certificate verification failed for {where}: {exc}")
    if isinstance(exc, ssl.SSLError):
        return HTTPError(f"TLS failed with {where}: {exc}")
    if isinstance(exc, ConnectionRefusedError):
        return HTTPError(f"cannot connect to {where}: connection refused")
    if isinstance(exc, TimeoutError):
        return HTTPError(f"cannot connect to {where}: timed out")
    return HTTPError(f"cannot connect to {where}: {exc}")


class AsyncClientResponse:
    """A response whose body is read on demand.

    Read it with ``await`` :meth:`read` or ``async for`` over
    :meth:`iter_bytes`; the connection goes back to the pool once the body
    has been read to its end.  ``async with`` (or :meth:`aclose`) drops the
    connection if the body was not read.
    """

    def __init__(
        self,
        client: AsyncHTTPClient[Any],
        origin: Origin,
        *,
        conn: Connection,
        stream: Any,
        url: str,
        event: Response,
    ) -> None:
        self.url = url
        self.status: int = event.status_code
        self.reason: bytes = event.reason
        self.http_version: bytes = event.http_version
        self.headers: Headers = event.headers
        self._client: AsyncHTTPClient[Any] | None = client
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
        client = self._client
        if client is None:
            raise RuntimeError("response body was already consumed or closed")
        try:
            while (chunk := await self._read_chunk(client)) is not None:
                yield chunk
        except BaseException:
            await self.aclose()
            raise
        await self._release()

    async def _read_chunk(self, client: AsyncHTTPClient[Any]) -> bytes | None:
        try:
            chunk: bytes | None = await client._run(read_body_chunk(self._conn), self._stream)
            return chunk
        except TimeoutError as exc:
            raise HTTPError(f"{self.url}: timed out reading the response body") from exc
        except client._transport_errors as exc:
            raise HTTPError(f"{self.url}: connection failed reading the body: {exc}") from exc

    async def read(self) -> bytes:
        """The whole body."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.iter_bytes()])
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
            await client._drop(self._stream)

    async def __aenter__(self: R) -> R:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.url}>"


class AsyncHTTPClient(Generic[R], abc.ABC):
    """An HTTP/1.1 client with a keep-alive connection pool.

    :param timeout: seconds for connecting and for each read and write.
    :param verify: verify TLS certificates and host names (default).  Pass
        ``False`` only for testing; or pass an :class:`ssl.SSLContext`.
    :param follow_redirects: follow 301/302/303/307/308 responses.
    :param max_redirects: how many redirects to follow before giving up.
    :param max_idle_per_origin: idle connections kept per origin.
    """

    # Supplied by the adapter's subclass.
    _response_class: type[R]
    #: the adapter's runner of pure operations
    _run: Callable[..., Awaitable[Any]]
    #: the adapter's ``connect_tcp``
    _connect_tcp: Callable[..., Awaitable[Any]]
    #: what the adapter's streams raise when the connection fails
    _transport_errors: tuple[type[Exception], ...] = (OSError,)

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
        self.tls_context = client_tls_context(verify)
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.max_idle_per_origin = max_idle_per_origin
        self._idle: dict[Origin, list[tuple[Connection, Any]]] = {}
        self._busy: set[Any] = set()  # connections with a response being read

    @staticmethod
    @abc.abstractmethod
    def _is_closed(stream: Any) -> bool:
        """Whether *stream* can no longer carry a request."""

    @abc.abstractmethod
    async def _drop(self, stream: Any) -> None:
        """Close *stream* without caring about what is left on it."""

    async def _connect(self, origin: Origin) -> tuple[Connection, Any, bool]:
        """A connection to *origin*: (machine, stream, taken from the pool)."""
        idle = self._idle.get(origin)
        while idle:
            conn, stream = idle.pop()
            if not self._is_closed(stream):
                return conn, stream, True
            await self._drop(stream)
        try:
            stream = await self._connect_tcp(
                origin.host,
                origin.port,
                timeouts=self.timeouts,
                tls_context=self.tls_context,
                tls=origin.tls,
            )
        except (TimeoutError, ssl.SSLError) as exc:
            raise connect_error(origin, exc) from exc
        except self._transport_errors as exc:
            raise connect_error(origin, exc) from exc
        return Connection(CLIENT), stream, False

    async def _release(self, origin: Origin, conn: Connection, stream: Any) -> None:
        self._busy.discard(stream)
        idle = self._idle.setdefault(origin, [])
        reusable = finish_cycle(conn) and not self._is_closed(stream)
        if reusable and len(idle) < self.max_idle_per_origin:
            idle.append((conn, stream))
        else:
            await self._drop(stream)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Iterable[tuple[Any, Any]] = (),
        content: Content = None,
    ) -> R:
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

    async def _send_once(self, prepared: PreparedRequest, content: Content) -> R:
        on_call = chunk_source(content if prepared.streaming else None)
        failures: tuple[type[Exception], ...] = (ProtocolFailure, *self._transport_errors)
        retried = False
        while True:
            conn, stream, reused = await self._connect(prepared.origin)
            op = exchange(conn, prepared.request, prepared.body, prepared.streaming)
            try:
                event = await self._run(op, stream, on_call)
            except failures as exc:
                await self._drop(stream)
                if should_retry(exc, reused=reused, retried=retried, streaming=prepared.streaming):
                    retried = True
                    continue
                if isinstance(exc, ProtocolFailure):
                    raise
                raise transport_error(prepared, exc) from exc
            except BaseException:
                await self._drop(stream)
                raise
            self._busy.add(stream)
            return self._response_class(
                self, prepared.origin, conn=conn, stream=stream, url=prepared.url, event=event
            )

    async def get(self, url: str, **kwargs: Any) -> R:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **kwargs)

    async def aclose(self) -> None:
        """Close every pooled connection, and those of responses still unread."""
        idle, self._idle = self._idle, {}
        busy, self._busy = self._busy, set()
        for streams in idle.values():
            for _, stream in streams:
                await self._drop(stream)
        for stream in busy:
            await self._drop(stream)

    async def __aenter__(self: C) -> C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def chunk_source(content: Any) -> Callable[[Call], Any]:
    """The ``next_chunk`` call handler for a streamed request body (or None)."""
    if content is None:
        return lambda call: None
    if hasattr(content, "__aiter__"):
        iterator = content.__aiter__()

        async def next_async(call: Call) -> bytes | None:
            try:
                return bytes(await iterator.__anext__())
            except StopAsyncIteration:
                return None

        return next_async
    sync_iterator = iter(content)
    return lambda call: next(sync_iterator, None)


async def one_request(
    client_class: type[AsyncHTTPClient[R]], method: str, url: str, kwargs: dict[str, Any]
) -> R:
    """One request on a fresh client of *client_class*, its body read before returning.

    *kwargs* holds the client's own arguments (``timeout``, ``verify``,
    ``follow_redirects``, ``max_redirects``) and those of its ``request()``.
    """
    names = ("timeout", "verify", "follow_redirects", "max_redirects")
    client_args = {name: kwargs.pop(name) for name in names if name in kwargs}
    async with client_class(**client_args) as client:
        response = await client.request(method, url, **kwargs)
        await response.read()
        return response
