"""A blocking SMTP server (a mail sink) and the Maildir writer behind it.

The SMTP dialogue is :func:`protomata.smtp._server.serve_session`; this
module runs it over sockets in a thread per connection and carries out
its calls: the application's handler decides about senders, recipients
and messages, and the default handler stores every message in a Maildir.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
import ssl
from collections.abc import Callable, Mapping
from email.utils import formatdate
from typing import Any

from .._core import SERVER
from .._core._ops import Call
from ..smtp._connection import Connection
from ..smtp._events import Reply
from ..smtp._maildir import maildir_content
from ..smtp._server import Envelope, SessionSettings, serve_session
from ._maildir import Maildir
from ._runner import run
from ._server import TCPServer
from ._stream import SocketStream, Timeouts

__all__ = ["MaildirHandler", "SMTPServer"]

logger = logging.getLogger("protomata.smtp")

#: The default largest message (RFC 1870 SIZE), in bytes.
DEFAULT_MAX_MESSAGE_SIZE = 32 * 1024 * 1024


class MaildirHandler:
    """The default handler: accept every sender and recipient, store each message.

    Each message is stored with ``Return-Path:`` and ``Received:`` trace
    headers and LF line endings.
    """

    def __init__(self, maildir: Maildir) -> None:
        self.maildir = maildir

    def message(self, envelope: Envelope, data: bytes) -> Reply | None:
        """Store the message; None accepts it (250)."""
        content = maildir_content(envelope, data, self.maildir.hostname, formatdate(localtime=True))
        self.maildir.deliver(content)
        return None


class SMTPServer(TCPServer):
    """A blocking SMTP server: one thread per connection.

    :param handler: an object with any of these methods (all optional):
        ``mail_from(address, params)`` and ``rcpt_to(address, params)``
        return a :class:`~protomata.smtp.Reply` to refuse or None to accept;
        ``message(envelope, data)`` stores the message (bytes as received,
        CRLF line endings) and returns None to accept or a Reply to refuse.
        Without a handler, or without its ``message`` method, messages go
        to *maildir*.
    :param maildir: a directory to store messages in (Maildir format).
    :param users: ``{name: password}``; AUTH PLAIN/LOGIN is offered when given
        (after STARTTLS when *tls_context* is set).
    :param tls_context: a server-side context; STARTTLS is offered when given.
    :param max_message_size: the SIZE limit; bigger messages get 552.
    :param hostname: the name the server greets with (default: the host name).
    """

    def __init__(
        self,
        handler: Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        maildir: str | os.PathLike[str] | None = None,
        users: Mapping[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        timeouts: Timeouts | None = None,
        hostname: str | None = None,
        max_connections: int = 1000,
        reuse_port: bool = False,
    ) -> None:
        self.hostname = hostname or socket.gethostname()
        self.maildir = Maildir(maildir, self.hostname) if maildir is not None else None
        message: Callable[[Envelope, bytes], Reply | None] | None = getattr(
            handler, "message", None
        )
        if message is None:
            if self.maildir is None:
                raise ValueError("give a maildir or a handler with a message() method")
            message = MaildirHandler(self.maildir).message
        self.handler = handler
        self._message = message
        self.users = dict(users) if users else {}
        self.starttls_context = tls_context
        self.max_message_size = max_message_size
        self.settings = SessionSettings(
            self.hostname,
            tls_available=tls_context is not None,
            auth_available=bool(self.users),
        )
        super().__init__(
            host,
            port,
            max_connections=max_connections,
            tls_context=None,  # TLS starts with STARTTLS, not on connect
            timeouts=timeouts or Timeouts(300.0),
            reuse_port=reuse_port,
        )

    @property
    def url(self) -> str:
        """``smtp://host:port`` of the listening socket."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port}"

    def authenticate(self, username: str, password: str) -> bool:
        """Whether *username* and *password* match a configured user."""
        expected = self.users.get(username)
        if expected is None:
            return False
        return hmac.compare_digest(expected.encode("utf-8"), password.encode("utf-8"))

    def _on_call(self, call: Call) -> Any:
        name = call.name
        if name == "authenticate":
            return self.authenticate(*call.args)
        method: Callable[..., Any] | None
        if name == "message":
            method = self._message
        elif name in ("mail_from", "rcpt_to"):
            method = getattr(self.handler, name, None)
            if method is None:
                return None
        else:
            raise RuntimeError(f"unknown call {name!r}")
        try:
            return method(*call.args)
        except Exception:
            logger.exception("the SMTP handler's %s() failed", name)
            raise

    def handle_connection(self, stream: SocketStream) -> None:
        """Serve one SMTP session on *stream*."""
        stream.tls_context = self.starttls_context
        conn = Connection(SERVER, max_message_size=self.max_message_size)
        run(serve_session(conn, self.settings, stream.peer), stream, self._on_call)
