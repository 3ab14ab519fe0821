"""The loop-agnostic half of the asyncio and trio ASGI servers.

The scope, message validation and lifespan conversation are pure
(:mod:`protomata.http._asgi`); this mixin holds the server's ASGI settings
and builds each request's scope.  Each async adapter combines it with its
``HTTPServer`` and supplies how the app is driven (``_handle``) and the
lifespan tasks; nothing here imports an event loop.
"""

from __future__ import annotations

import abc
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..http._asgi import Lifespan, ResponseTranslator, http_scope
from ..http._operations import ResponseSpec, ServerSettings
from ._asynchttpserver import AsyncServerRequest
from ._stream import Timeouts, client_certificate

#: TLS protocol names (``SSLSocket.version()``) as the ASGI TLS extension numbers them
_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(tls: Any) -> dict[str, Any]:
    """The ASGI ``tls`` scope extension for the TLS connection *tls*.

    The client's certificate (when the server asked for one and it was
    verified) is the whole chain as far as Python's ssl module shows it: the
    client's own certificate, in PEM.  The server's certificate and the
    cipher suite number are not available from the ssl module, so they are
    None, as the extension allows.
    """
    pem, name = client_certificate(tls)
    return {
        "server_cert": None,
        "client_cert_chain": [pem] if pem is not None else [],
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(tls.version() or ""),
        "cipher_suite": None,
    }


__all__ = ["ASGIApp", "AsyncASGIService", "Message"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AsyncASGIService(abc.ABC):
    """Serve the ASGI 3 application *app* over HTTP/1.1.

    *lifespan* is ``"auto"`` (run the lifespan protocol; if the app raises
    on the lifespan scope, go on without it), ``"on"`` (a failure stops
    the server from starting) or ``"off"``.  A ``lifespan.startup.failed``
    always stops it.  An app exception before the response starts is
    answered with 500; after it started, the connection is closed.  Other
    keyword arguments are those of the adapter's ``HTTPServer``.
    """

    port: int  # set by the adapter's TCPServer

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        lifespan: str = "auto",
        root_path: str = "",
        settings: ServerSettings | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 1000,
        tls_context: ssl.SSLContext | None = None,
        access_log: Callable[[str], None] | bool | None = None,
        reuse_port: bool = False,
        grace: float = 10.0,
        lifespan_timeout: float = 60.0,
    ) -> None:
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {lifespan!r}")
        super().__init__(  # type: ignore[call-arg]  # the adapter's HTTPServer
            self._handle,
            host,
            port,
            settings=settings,
            timeouts=timeouts,
            max_connections=max_connections,
            tls_context=tls_context,
            access_log=access_log,
            reuse_port=reuse_port,
            grace=grace,
        )
        self.app = app
        self.lifespan_mode = lifespan
        self.lifespan_timeout = lifespan_timeout
        self.root_path = root_path
        self.scheme = "https" if tls_context is not None else "http"
        #: the lifespan ``state`` (None when the app does not do lifespan)
        self.state: dict[str, Any] | None = None
        self._lifespan: Lifespan | None = None
        self._server_addr: tuple[str, int | None] = (host, self.port)
        self._init_lifespan()

    def _init_lifespan(self) -> None:  # noqa: B027 (an optional hook)
        """Set up the adapter's lifespan bookkeeping (a hook)."""

    @abc.abstractmethod
    async def _handle(self, request: Any) -> ResponseSpec | None:
        """Run the app for one request (the adapter's part)."""

    def _start_exchange(
        self, request: AsyncServerRequest
    ) -> tuple[dict[str, Any], ResponseTranslator, bool]:
        """The scope of *request*, a translator for the app's response
        messages, and whether the request has no body to read."""
        exchange = request._exchange
        scope = http_scope(
            exchange.request,
            request.client,
            self._server_addr,
            self.scheme,
            root_path=self.root_path,
            state=self.state,
        )
        tls = request._stream.tls_object
        if tls is not None:
            scope["extensions"] = {"tls": tls_extension(tls)}
        info = exchange.request.headers.info
        return scope, ResponseTranslator(), not info.chunked and not info.content_length
