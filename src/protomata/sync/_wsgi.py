"""Run a WSGI (PEP 3333) application on the blocking HTTP server.

The environ, ``start_response`` rules and ``wsgi.input`` come from the
pure :mod:`protomata.http._wsgi`; this module moves the body pieces
between the application and the connection.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from ..http._wsgi import InputStream, StartResponse, WSGIError, build_environ
from ._httpserver import ServerRequest
from ._stream import client_certificate

__all__ = ["WSGIApp", "wsgi_handler"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Callable[[bytes], None]]], Iterable[bytes]]


def wsgi_handler(app: WSGIApp, *, errors: Any = None) -> Callable[[ServerRequest], None]:
    """A handler for :class:`~protomata.sync.HTTPServer` that runs the WSGI *app*.

    The request body is read as the application reads ``wsgi.input``; the
    response is streamed as the application's iterable yields it (a
    one-piece list gets a Content-Length, anything else is sent chunked
    unless the application set Content-Length), and the iterable's
    ``close()`` is always called.  *errors* is ``wsgi.errors`` (stderr by
    default).
    """

    def handle(request: ServerRequest) -> None:
        body = request.iter_body()
        environ = build_environ(
            request.request,
            server=request.server,
            client=request.client,
            scheme=request.scheme,
            wsgi_input=InputStream(lambda: next(body, None)),
            errors=errors if errors is not None else sys.stderr,
        )
        tls = request._stream.tls_object
        if tls is not None:
            environ["HTTPS"] = "on"
            pem, name = client_certificate(tls)
            if pem is not None:  # the names Apache's mod_ssl gives them
                environ["SSL_CLIENT_CERT"] = pem
                environ["SSL_CLIENT_S_DN"] = name
        start = StartResponse(lambda data: _write(request, start, data))
        result = app(environ, start)
        try:
            if isinstance(result, (list, tuple)) and len(result) <= 1 and not start.sent:
                # The whole body is known: give it a Content-Length.
                data = b"".join(_checked(piece) for piece in result)
                status, _, fields = start.head()
                if not any(name.lower() == b"content-length" for name, _ in fields):
                    fields = [*fields, (b"Content-Length", b"%d" % len(data))]
                request.start_response(status, fields)
                start.mark_sent()
                request.send(data)
            else:
                for piece in result:
                    if _checked(piece):
                        _write(request, start, piece)
                _send_head(request, start)
            request.end_response()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    return handle


def _checked(piece: Any) -> bytes:
    if not isinstance(piece, bytes):
        raise WSGIError(f"a WSGI application must yield bytes, not {type(piece).__name__}")
    return piece


def _send_head(request: ServerRequest, start: StartResponse) -> None:
    if not start.sent:
        status, _, fields = start.head()
        request.start_response(status, fields)
        start.mark_sent()


def _write(request: ServerRequest, start: StartResponse, data: bytes) -> None:
    _send_head(request, start)
    if data:
        request.send(_checked(data))
