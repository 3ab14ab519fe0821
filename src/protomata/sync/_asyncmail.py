"""The loop-agnostic halves of the asyncio and trio mail servers.

The dialogues are :func:`protomata.smtp._server.serve_session` and
:func:`protomata.pop3._server.serve_session`; these mixins only carry out
their calls.  Every file operation (creating the Maildir, delivering,
listing, reading and deleting messages) runs in a worker thread through the
adapter's ``_to_thread``, so the event loop never waits on the disk.  Each
async adapter combines a mixin with its own ``TCPServer`` and supplies
``_to_thread`` and ``_run`` (its runner); nothing here imports an event
loop.
"""

from __future__ import annotations

import hmac
import inspect
import itertools
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from email.utils import formatdate
from typing import Any

from .._core import SERVER
from .._core._ops import Call
from ..pop3._connection import Connection as POP3Connection
from ..pop3._server import SessionSettings as POP3Settings
from ..pop3._server import serve_session as serve_pop3_session
from ..smtp._connection import Connection as SMTPConnection
from ..smtp._events import Reply
from ..smtp._maildir import maildir_content
from ..smtp._server import Envelope
from ..smtp._server import SessionSettings as SMTPSettings
from ..smtp._server import serve_session as serve_smtp_session
from ._maildir import Maildir, MaildirMailbox
from ._pop3server import DEFAULT_POP3_TIMEOUTS
from ._smtpserver import DEFAULT_MAX_MESSAGE_SIZE, MAX_COMMAND_LENGTH
from ._stream import Timeouts

__all__ = ["AsyncPOP3Service", "AsyncSMTPSink"]

logger = logging.getLogger("protomata.smtp")


def _password_matches(expected: str | None, given: str) -> bool:
    """Constant-time comparison; an unknown user (*expected* None) never matches."""
    wanted = (expected or "").encode("utf-8")
    ok = hmac.compare_digest(wanted, given.encode("utf-8", "surrogateescape"))
    return expected is not None and ok


class AsyncSMTPSink:
    """An async SMTP server (a mail sink): one task per connection.

    :param handler: an object with any of these methods (all optional, plain
        or ``async``): ``mail_from(address, params)`` and
        ``rcpt_to(address, params)`` return a :class:`~protomata.smtp.Reply`
        to refuse or None to accept; ``message(envelope, data)`` stores the
        message (bytes as received, CRLF line endings) and returns None to
        accept or a Reply to refuse.  Plain methods run on the event loop and
        must not block.  Without a handler, or without its ``message``
        method, messages go to *maildir*.  Over LMTP ``message`` may also
        answer per recipient (see :func:`protomata.smtp._server.serve_session`).
        A handler with ``authenticate_xoauth2(user, token) -> bool`` (plain
        or async) gets AUTH XOAUTH2 offered.
    :param maildir: a directory to store messages in (Maildir format; created
        when the server starts, in a worker thread).
    :param users: ``{name: password}``; AUTH PLAIN, LOGIN and CRAM-MD5 are
        offered when given (after STARTTLS when *tls_context* is set).
    :param tls_context: a server-side context; STARTTLS is offered when given.
    :param max_message_size: the SIZE limit; bigger messages get 552.
    :param hostname: the name the server greets with (default: the host name).
    :param lmtp: speak LMTP (RFC 2033) instead of SMTP.

    A subclass overriding :meth:`on_startup` must await ``super().on_startup()``.
    """

    # Supplied by the adapter class that mixes this in.
    host: str
    port: int
    _to_thread: Callable[..., Awaitable[Any]]
    _run: Callable[..., Awaitable[Any]]

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
        grace: float = 10.0,
        lmtp: bool = False,
    ) -> None:
        self.lmtp = lmtp
        self.hostname = hostname or socket.gethostname()
        self.maildir_path = os.fspath(maildir) if maildir is not None else None
        #: the :class:`~protomata.sync._maildir.Maildir`, once the server started
        self.maildir: Maildir | None = None
        message: Callable[[Envelope, bytes], Any] | None = getattr(handler, "message", None)
        if message is None:
            if self.maildir_path is None:
                raise ValueError("give a maildir or a handler with a message() method")
            message = self._store
        self.handler = handler
        self._message = message
        self._date_second = -1
        self._date_text = ""
        self.users = dict(users) if users else {}
        self.starttls_context = tls_context
        self.max_message_size = max_message_size
        self.settings = SMTPSettings(
            self.hostname,
            tls_available=tls_context is not None,
            auth_available=bool(self.users),
            cram_md5=bool(self.users),
            xoauth2=callable(getattr(handler, "authenticate_xoauth2", None)),
        )
        super().__init__(  # type: ignore[call-arg]  # the adapter's TCPServer
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

    async def on_startup(self) -> None:
        """Create the Maildir (in a worker thread) before accepting connections."""
        if self.maildir_path is not None and self.maildir is None:
            self.maildir = await self._to_thread(Maildir, self.maildir_path, self.hostname)

    def authenticate(self, username: str, password: str) -> bool:
        """Whether *username* and *password* match a configured user."""
        return _password_matches(self.users.get(username), password)

    async def _store(self, envelope: Envelope, data: bytes) -> Reply | None:
        """The default ``message``: deliver to the Maildir with trace headers."""
        maildir = self.maildir
        if maildir is None:
            raise RuntimeError("the server has not started")
        content = maildir_content(envelope, data, maildir.hostname, self._received_date())
        await self._to_thread(maildir.deliver, content)
        return None

    def _received_date(self) -> str:
        """The date for ``Received:``, formatted once per second."""
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date_text = now, formatdate(now, localtime=True)
        return self._date_text

    async def _invoke(self, name: str, method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        try:
            result = method(*args)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            logger.exception("the SMTP handler's %s() failed", name)
            raise
        return result

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
        return self._invoke(name, method, call.args)

    async def handle_connection(self, stream: Any) -> None:
        """Serve one SMTP session on *stream*."""
        stream.tls_context = self.starttls_context
        conn = SMTPConnection(
            SERVER,
            lmtp=self.lmtp,
            max_message_size=self.max_message_size,
            max_command_length=MAX_COMMAND_LENGTH,
        )
        await self._run(serve_smtp_session(conn, self.settings, stream.peer), stream, self._on_call)


class AsyncPOP3Service:
    """Serve the Maildir *maildir* over POP3 to the users of *users* (name -> password).

    Every user reads the same Maildir; one session at a time holds it (a
    second login answers ``-ERR [IN-USE]``).  With *tls_context* the server
    offers STLS (RFC 2595); the connection starts in plaintext.  Deleted
    messages are removed only when the client ends the session with QUIT.
    Listing, reading and deleting run in worker threads.
    """

    # Supplied by the adapter class that mixes this in.
    host: str
    port: int
    _to_thread: Callable[..., Awaitable[Any]]
    _run: Callable[..., Awaitable[Any]]

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        maildir: str | os.PathLike[str],
        users: dict[str, str],
        tls_context: ssl.SSLContext | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 100,
        greeting: str = "protomata POP3 server ready",
        reuse_port: bool = False,
        grace: float = 10.0,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]  # the adapter's TCPServer
            host,
            port,
            max_connections=max_connections,
            timeouts=timeouts or DEFAULT_POP3_TIMEOUTS,
            reuse_port=reuse_port,
            grace=grace,
        )
        self.maildir = os.fspath(maildir)
        self.users = dict(users)
        self.stls_context = tls_context
        self.settings = POP3Settings(greeting=greeting, tls=tls_context is not None)
        self._locked: set[str] = set()  # only touched on the event loop: no lock needed
        self._counter = itertools.count()
        self._hostname = socket.gethostname() or "localhost"

    @property
    def url(self) -> str:
        """``pop://host:port/`` of the listening socket."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"pop://{host}:{self.port}/"

    def _timestamp(self) -> str:
        return f"<{os.getpid()}.{next(self._counter)}.{time.time_ns()}@{self._hostname}>"

    async def handle_connection(self, stream: Any) -> None:
        """Run one POP3 session over *stream*."""
        stream.tls_context = self.stls_context
        mailbox = MaildirMailbox(self.maildir)
        held: list[str] = []

        async def open_mailbox(user: str) -> list[tuple[str, int]] | None:
            if self.maildir in self._locked:
                return None
            self._locked.add(self.maildir)
            held.append(self.maildir)
            listing: list[tuple[str, int]] = await self._to_thread(mailbox.messages)
            return listing

        def on_call(call: Call) -> Any:
            name, args = call.name, call.args
            if name == "timestamp":
                return self._timestamp()
            if name == "authenticate":
                return _password_matches(self.users.get(args[0]), args[1])
            if name == "apop_secret":
                return self.users.get(args[0])
            if name == "open_mailbox":
                return open_mailbox(args[0])
            if name == "read_message":
                return self._to_thread(mailbox.read, args[0])
            if name == "delete":
                return self._to_thread(mailbox.delete, list(args[0]))
            raise RuntimeError(f"unknown POP3 call {name!r}")

        try:
            await self._run(
                serve_pop3_session(POP3Connection(SERVER), self.settings), stream, on_call
            )
        finally:
            for name in held:
                self._locked.discard(name)
