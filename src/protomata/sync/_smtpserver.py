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
#: The longest command line the servers accept.  RFC 5321's 512 grows with
#: each offered extension's parameters (SIZE +26, BODY +14, SMTPUTF8 +10,
#: AUTH= +500, DSN's RET/ENVID +100 on MAIL and NOTIFY/ORCPT +500 on RCPT):
#: at least 1162; the rest is slack.
MAX_COMMAND_LENGTH = 2048


class MaildirHandler:
    """The default handler: accept every sender and recipient, store each message.

    Each message is stored once, with ``Return-Path:`` and ``Received:``
    trace headers and LF line endings; over LMTP every recipient is then
    answered 250.  DSN parameters are stored in the envelope only: this
    sink generates no delivery status notifications itself.
    """

    def __init__(self, maildir: Maildir) -> None:
        self.maildir = maildir

    def message(self, envelope: Envelope, data: bytes) -> Reply | None:
        """Store the message; None accepts it (250)."""
        content = maildir_content(envelope, data, self.maildir.hostname, formatdate(localtime=True))
        self.maildir.deliver(content)
        return None


class SMTPServer(TCPServer):
    """A blocking SMTP (or LMTP) server: one thread per connection.

    :param handler: an object with any of these methods (all optional):
        ``mail_from(address, params)`` and ``rcpt_to(address, params)``
        return a :class:`~protomata.smtp.Reply` to refuse or None to accept;
        ``message(envelope, data)`` stores the message (bytes as received,
        CRLF line endings) and returns None to accept or a Reply to refuse.
        Without a handler, or without its ``message`` method, messages go
        to *maildir*.  Over LMTP ``message`` may also answer per recipient
        (see :func:`protomata.smtp._server.serve_session`).  A handler with
        ``authenticate_xoauth2(user, token) -> bool`` gets AUTH XOAUTH2
        offered.
    :param maildir: a directory to store messages in (Maildir format).
    :param users: ``{name: password}``; AUTH PLAIN, LOGIN and CRAM-MD5 are
        offered when given (after STARTTLS when *tls_context* is set).
    :param tls_context: a server-side context; STARTTLS is offered when given.
    :param max_message_size: the SIZE limit; bigger messages get 552.
    :param hostname: the name the server greets with (default: the host name).
    :param lmtp: speak LMTP (RFC 2033) instead of SMTP.
    :param grace: how long :meth:`shutdown` lets transactions in flight
        finish; idle sessions are told ``421 4.3.2`` at once.
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
        lmtp: bool = False,
        grace: float = 10.0,
    ) -> None:
        self.lmtp = lmtp
        self.hostname = hostname or socket.gethostname()
        self.maildir = Maildir(maildir, self.hostname) if maildir is not None else None
        # Returns None or a Reply (or, over LMTP, one per recipient).
        message: Callable[[Envelope, bytes], Any] | None = getattr(handler, "message", None)
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
            cram_md5=bool(self.users),
            xoauth2=callable(getattr(handler, "authenticate_xoauth2", None)),
        )
        super().__init__(
            host,
            port,
            max_connections=max_connections,
            tls_context=None,  # TLS starts with STARTTLS, not on connect
            timeouts=timeouts or Timeouts(300.0),
            reuse_port=reuse_port,
            grace=grace,
        )

    @property
    def url(self) -> str:
        """``smtp://host:port`` (``lmtp://`` for LMTP) of the listening socket."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'lmtp' if self.lmtp else 'smtp'}://{host}:{self.port}"

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
        if name == "password":
            return self.users.get(call.args[0])
        method: Callable[..., Any] | None
        if name == "message":
            method = self._message
        elif name in ("mail_from", "rcpt_to", "authenticate_xoauth2"):
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
        """Serve one SMTP (or LMTP) session on *stream*."""
        stream.tls_context = self.starttls_context
        conn = Connection(
            SERVER,
            lmtp=self.lmtp,
            max_message_size=self.max_message_size,
            max_command_length=MAX_COMMAND_LENGTH,
        )
        run(serve_session(conn, self.settings, stream.peer), stream, self._on_call)
