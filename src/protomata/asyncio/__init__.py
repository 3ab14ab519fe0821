"""The asyncio adapter: protomata's machines over asyncio transports.

Everything protocol-specific comes from the pure packages; this adapter
moves bytes, does TLS, applies timeouts and runs one task per connection.
It mirrors :mod:`protomata.sync` name for name, with async methods, and
adds an ASGI 3 server and UDP endpoints.
"""

from ..http._operations import (
    HTTPError,
    ProtocolFailure,
    ResponseSpec,
    ServerSettings,
    TooManyRedirects,
)
from ..sync._server import listen_tcp
from ._asgi import ASGIApp, ASGIServer, serve_asgi
from ._httpclient import ClientResponse, HTTPClient, get, request
from ._httpserver import HTTPServer, ServerRequest, http_date, iter_spec
from ._mailservers import POP3Server, SMTPServer
from ._pop3client import POP3Client, POP3Error
from ._runner import run
from ._server import TCPServer
from ._smtpclient import SendResult, SMTPClient, SMTPError, SMTPRecipientsRefused
from ._static import static_handler
from ._stream import Stream, Timeouts, connect_tcp
from ._udp import DatagramEndpoint, open_udp

__all__ = [
    "ASGIApp",
    "ASGIServer",
    "ClientResponse",
    "DatagramEndpoint",
    "HTTPClient",
    "HTTPError",
    "HTTPServer",
    "POP3Client",
    "POP3Error",
    "POP3Server",
    "ProtocolFailure",
    "ResponseSpec",
    "SMTPClient",
    "SMTPError",
    "SMTPRecipientsRefused",
    "SMTPServer",
    "SendResult",
    "ServerRequest",
    "ServerSettings",
    "Stream",
    "TCPServer",
    "Timeouts",
    "TooManyRedirects",
    "connect_tcp",
    "get",
    "http_date",
    "iter_spec",
    "listen_tcp",
    "open_udp",
    "request",
    "run",
    "serve_asgi",
    "static_handler",
]
