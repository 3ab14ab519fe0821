"""The blocking adapter: protomata's machines over plain sockets and threads.

Everything protocol-specific comes from the pure packages; this adapter
moves bytes, does TLS, applies timeouts and runs one thread per connection.
"""

from ..http._operations import (
    HTTPError,
    ProtocolFailure,
    ResponseSpec,
    ServerSettings,
    TooManyRedirects,
)
from ._httpclient import ClientResponse, HTTPClient, get, request
from ._httpserver import HTTPServer, ServerRequest, http_date, iter_spec
from ._mailclients import SendResult, SMTPClient, SMTPError, SMTPRecipientsRefused
from ._maildir import Maildir, MaildirMailbox
from ._pop3client import POP3Client, POP3Error
from ._pop3server import POP3Server
from ._runner import run
from ._server import TCPServer, listen_tcp
from ._smtpserver import MaildirHandler, SMTPServer
from ._static import static_handler
from ._stream import SocketStream, Timeouts, connect_tcp
from ._wsgi import wsgi_handler

__all__ = [
    "ClientResponse",
    "HTTPClient",
    "HTTPError",
    "HTTPServer",
    "Maildir",
    "MaildirHandler",
    "MaildirMailbox",
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
    "SocketStream",
    "TCPServer",
    "Timeouts",
    "TooManyRedirects",
    "connect_tcp",
    "get",
    "http_date",
    "iter_spec",
    "listen_tcp",
    "request",
    "run",
    "static_handler",
    "wsgi_handler",
]
