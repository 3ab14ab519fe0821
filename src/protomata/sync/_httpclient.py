"""The blocking HTTP client: a keep-alive pool over the pure HTTP operations."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator
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
from ._asynchttp import client_tls_context, connect_error
from ._runner import run
from ._stream import SocketStream, Timeouts, connect_tcp

__all__ = ["ClientResponse", "HTTPClient", "HTTPError", "get", "request"]

Content = bytes | Iterable[bytes] | None


class ClientResponse:
    """A response whose body is read on demand.

    Read it with :meth:`read` or iterate :meth:`iter_bytes`; the connection
    goes back to the pool once the body has been read to its end.
    """

    def __init__(
        self,
        client: HTTPClient,
        origin: Origin,
        *,
        conn: Connection,
        stream: SocketStream,
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

    def iter_bytes(self) -> Iterator[bytes]:
        """Yield the body piece by piece as it arrives."""
        if self._content is not None:
            yield self._content
            return
        if self._client is None:
            raise RuntimeError("response body was already consumed or closed")
        try:
            while (chunk := run(read_body_chunk(self._conn), self._stream)) is not None:
                yield chunk
        except TimeoutError as exc:
            self.close()
            raise HTTPError(f"{self.url}: timed out reading the body") from exc
        except OSError as exc:
            self.close()
            raise HTTPError(f"{self.url}: connection lost reading the body: {exc}") from exc
        except BaseException:
            self.close()
            raise
        self._release()

    def read(self) -> bytes:
        """The whole body."""
        if self._content is None:
            self._content = b"".join(self.iter_bytes())
        return self._content

    def text(self, encoding: str = "utf-8") -> str:
        return self.read().decode(encoding, errors="replace")

    def _release(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client._release(self._origin, self._conn, self._stream)

    def close(self) -> None:
        """Drop the connection without reading the rest of the body."""
        if self._client is not None:
            self._client = None
            self._stream.close()

    def __enter__(self) -> ClientResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.url}>"


class HTTPClient:
    """A blocking HTTP/1.1 client with a keep-alive connection pool.

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
        self.tls_context = client_tls_context(verify)
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.max_idle_per_origin = max_idle_per_origin
        self._idle: dict[Origin, list[tuple[Connection, SocketStream]]] = {}

    def _connect(self, origin: Origin) -> tuple[Connection, SocketStream, bool]:
        """A connection to *origin*: (machine, stream, taken from the pool)."""
        idle = self._idle.get(origin)
        if idle:
            return (*idle.pop(), True)
        try:
            stream = connect_tcp(
                origin.host,
                origin.port,
                timeouts=self.timeouts,
                tls_context=self.tls_context,
                tls=origin.tls,
            )
        except (ssl.SSLError, OSError) as exc:
            raise connect_error(origin, exc) from exc
        return Connection(CLIENT), stream, False

    def _release(self, origin: Origin, conn: Connection, stream: SocketStream) -> None:
        idle = self._idle.setdefault(origin, [])
        if finish_cycle(conn) and len(idle) < self.max_idle_per_origin:
            idle.append((conn, stream))
        else:
            stream.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Iterable[tuple[Any, Any]] = (),
        content: Content = None,
    ) -> ClientResponse:
        """Send a request; return the response with its body unread.

        *content* is the body: bytes (sent with Content-Length) or an
        iterable of bytes (sent chunked).
        """
        method_b = method.encode("ascii").upper()
        for _ in range(self.max_redirects + 1):
            prepared = prepare_request(method_b, url, headers, content)
            response = self._send_once(prepared, content)
            hop = next_hop(prepared, content, response._event, self.follow_redirects)
            if hop is None:
                return response
            response.read()  # so the connection can be reused
            url, method_b, content = hop
        raise TooManyRedirects(f"more than {self.max_redirects} redirects")

    def _send_once(self, prepared: PreparedRequest, content: Content) -> ClientResponse:
        chunks: Iterator[bytes] = iter(content) if prepared.streaming else iter(())  # type: ignore[arg-type]

        def on_call(call: Call) -> bytes | None:
            return next(chunks, None)  # "next_chunk"

        op_args = (prepared.request, prepared.body, prepared.streaming)
        retried = False
        while True:
            conn, stream, reused = self._connect(prepared.origin)
            try:
                event = run(exchange(conn, *op_args), stream, on_call)
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

    def get(self, url: str, **kwargs: Any) -> ClientResponse:
        return self.request("GET", url, **kwargs)

    def close(self) -> None:
        """Close every pooled connection."""
        for idle in self._idle.values():
            for _, stream in idle:
                stream.close()
        self._idle.clear()

    def __enter__(self) -> HTTPClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def request(method: str, url: str, **kwargs: Any) -> ClientResponse:
    """One request on a fresh client; the body is read before returning."""
    client_args = {
        k: kwargs.pop(k) for k in ("timeout", "verify", "follow_redirects") if k in kwargs
    }
    with HTTPClient(**client_args) as client:
        response = client.request(method, url, **kwargs)
        response.read()
        return response


def get(url: str, **kwargs: Any) -> ClientResponse:
    """``request("GET", url, ...)``."""
    return request("GET", url, **kwargs)
