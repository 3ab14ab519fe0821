"""What the blocking and the async mail servers share: settings, call routing.

The SMTP and POP3 dialogues are pure (:mod:`protomata.smtp._server`,
:mod:`protomata.pop3._server`); a server answers their calls.  These bases
hold everything about that which does not depend on the kind of I/O --
the options and their checks, the session settings, which call goes to
which method, implicit TLS -- and leave to the blocking and async servers
only how a call is carried out (directly, or awaited in a worker thread).
"""

from __future__ import annotations

import abc
import hmac
import itertools
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate
from typing import Any

from .._core import SERVER
from .._core._ops import Call, Operation
from ..pop3._connection import Connection as POP3Connection
from ..pop3._server import SessionSettings as POP3Settings
from ..pop3._server import serve_session as serve_pop3_session
from ..smtp._connection import Connection as SMTPConnection
from ..smtp._server import SessionSettings as SMTPSettings
from ..smtp._server import serve_session as serve_smtp_session
from ._maildir import MaildirMailbox
from ._stream import Timeouts

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_POP3_TIMEOUTS",
    "MAX_COMMAND_LENGTH",
    "POP3ServiceBase",
    "SMTPServiceBase",
    "password_matches",
]

logger = logging.getLogger("protomata.smtp")

#: The default largest message (RFC 1870 SIZE), in bytes.
DEFAULT_MAX_MESSAGE_SIZE = 32 * 1024 * 1024
#: The longest command line the servers accept.  RFC 5321's 512 grows with
#: each offered extension's parameters (SIZE +26, BODY +14, SMTPUTF8 +10,
#: AUTH= +500, DSN's RET/ENVID +100 on MAIL and NOTIFY/ORCPT +500 on RCPT):
#: at least 1162; the rest is slack.
MAX_COMMAND_LENGTH = 2048
#: RFC 1939 section 3: the autologout timer is at least 10 minutes.
DEFAULT_POP3_TIMEOUTS = Timeouts(600.0, idle=600.0)


def password_matches(expected: str | None, given: str) -> bool:
    """Constant-time comparison; an unknown user (*expected* None) never matches."""
    wanted = (expected or "").encode("utf-8")
    ok = hmac.compare_digest(wanted, given.encode("utf-8", "surrogateescape"))
    return expected is not None and ok


def _tls_split(
    tls_context: ssl.SSLContext | None, implicit_tls: bool
) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """(context for the listener, context for STARTTLS/STLS) of the options."""
    if implicit_tls and tls_context is None:
        raise ValueError("implicit_tls needs a tls_context")
    return (tls_context, None) if implicit_tls else (None, tls_context)


def _url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class SMTPServiceBase(abc.ABC):
    """An SMTP (or LMTP) server, by default a sink that stores mail in a Maildir.

    The blocking server runs a thread per connection and calls the handler
    there; the asyncio and trio servers run a task per connection and do
    all file work in worker threads, except that they write the Maildir
    from a child process (their ``delivery_process`` attribute).

    :param handler: an object with any of these methods (all optional; for
        the async servers plain or ``async``, and plain ones must not
        block): ``mail_from(address, params)`` and ``rcpt_to(address,
        params)`` return a :class:`~protomata.smtp.Reply` to refuse or None
        to accept; ``message(envelope, data)`` stores the message (bytes as
        received, CRLF line endings) and returns None to accept or a Reply
        to refuse (over LMTP also one per recipient, see
        :func:`protomata.smtp._server.serve_session`);
        ``authenticate(username, password) -> bool`` checks passwords
        itself (a database, PAM ...) and gets AUTH PLAIN and LOGIN offered;
        ``authenticate_xoauth2(user, token) -> bool`` gets AUTH XOAUTH2
        offered.  Without a handler, or without its ``message`` method,
        messages go to *maildir*.
    :param maildir: a directory to store messages in (Maildir format,
        created if missing).
    :param users: ``{name: password}``; AUTH PLAIN, LOGIN and CRAM-MD5 are
        offered when given (after STARTTLS when *tls_context* is set).
    :param auth_required: refuse mail from clients that have not logged in
        (``530 5.7.0``), as a submission server does; needs *users* or a
        handler's ``authenticate``.
    :param tls_context: a server-side context: STARTTLS is offered, or with
        *implicit_tls* every connection starts with TLS (SMTPS, port 465).
    :param max_message_size: the SIZE limit; bigger messages get 552.
    :param hostname: the name the server greets with (default: the host name).
    :param lmtp: speak LMTP (RFC 2033) instead of SMTP.
    :param grace: how long a shutdown lets transactions in flight finish;
        idle sessions are told ``421 4.3.2`` at once.
    """

    # Set by the adapter's TCPServer.
    host: str
    port: int

    def __init__(
        self,
        handler: Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        maildir: str | os.PathLike[str] | None = None,
        users: Mapping[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        timeouts: Timeouts | None = None,
        hostname: str | None = None,
        max_connections: int = 1000,
        reuse_port: bool = False,
        lmtp: bool = False,
        grace: float = 10.0,
        auth_required: bool = False,
    ) -> None:
        listener_tls, self.starttls_context = _tls_split(tls_context, implicit_tls)
        self.implicit_tls = implicit_tls
        self.lmtp = lmtp
        self.hostname = hostname or socket.gethostname()
        self.maildir_path = os.fspath(maildir) if maildir is not None else None
        self.handler = handler
        message: Callable[..., Any] | None = getattr(handler, "message", None)
        if message is None:
            if self.maildir_path is None:
                raise ValueError("give a maildir or a handler with a message() method")
            message = self._store
        self._message = message
        self._date: tuple[int, str] = (-1, "")
        self.users = dict(users) if users else {}
        self.max_message_size = max_message_size
        self._check_password: Callable[..., Any] | None = getattr(handler, "authenticate", None)
        password_auth = bool(self.users) or callable(self._check_password)
        if auth_required and not password_auth:
            raise ValueError("auth_required needs users or a handler with authenticate()")
        self.settings = SMTPSettings(
            self.hostname,
            tls_available=self.starttls_context is not None,
            auth_available=password_auth,
            cram_md5=bool(self.users) and self._check_password is None,
            xoauth2=callable(getattr(handler, "authenticate_xoauth2", None)),
            auth_required=auth_required,
        )
        super().__init__(  # type: ignore[call-arg]  # the adapter's TCPServer
            host,
            port,
            max_connections=max_connections,
            tls_context=listener_tls,
            timeouts=timeouts or Timeouts(300.0),
            reuse_port=reuse_port,
            grace=grace,
        )
        self._setup()

    def _setup(self) -> None:  # noqa: B027 (an optional hook)
        """The adapter's last step of construction (a hook)."""

    @property
    def url(self) -> str:
        """``smtp://host:port`` (``smtps://``, ``lmtp://``) of the listening socket."""
        scheme = "lmtp" if self.lmtp else "smtps" if self.implicit_tls else "smtp"
        return _url(scheme, self.host, self.port)

    def authenticate(self, username: str, password: str) -> bool:
        """Whether *username* and *password* match a configured user."""
        return password_matches(self.users.get(username), password)

    def _received_date(self) -> str:
        """The date for ``Received:``, formatted once per second."""
        now = int(time.time())
        if now != self._date[0]:
            self._date = (now, formatdate(now, localtime=True))
        return self._date[1]

    @abc.abstractmethod
    def _store(self, envelope: Any, data: bytes) -> Any:
        """The default ``message``: into the Maildir (the adapter's part)."""

    @abc.abstractmethod
    def _invoke(self, name: str, method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Call the handler's *method* (the adapter's part)."""

    def _on_call(self, call: Call) -> Any:
        name = call.name
        if name == "authenticate":
            if self._check_password is not None:
                return self._invoke(name, self._check_password, call.args)
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

    def _session(self, stream: Any) -> Operation[None]:
        """The pure SMTP session for one accepted connection on *stream*."""
        stream.tls_context = self.starttls_context
        conn = SMTPConnection(
            SERVER,
            lmtp=self.lmtp,
            max_message_size=self.max_message_size,
            max_command_length=MAX_COMMAND_LENGTH,
        )
        conn.tls_active = self.implicit_tls
        return serve_smtp_session(conn, self.settings, stream.peer)


class POP3ServiceBase(abc.ABC):
    """Serve the Maildir *maildir* over POP3 to the users of *users* (name -> password).

    Every user reads the same Maildir; one session at a time holds it (a
    second login answers ``-ERR [IN-USE]``).  With *tls_context* the server
    offers STLS (RFC 2595), or with *implicit_tls* every connection starts
    with TLS (POP3S, port 995).  Deleted messages are removed only when the
    client ends the session with QUIT.  Messages are sent in their wire
    form (:func:`~protomata.pop3._server.to_crlf`), and LIST sizes are
    those of the wire form.  Users log in with USER/PASS, APOP or SASL
    (PLAIN, LOGIN, CRAM-MD5); with *authenticate_xoauth2*, a function
    ``(user, token) -> bool`` that checks OAuth 2.0 bearer tokens, SASL
    XOAUTH2 is offered too.
    """

    # Set by the adapter's TCPServer.
    host: str
    port: int

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        maildir: str | os.PathLike[str],
        users: Mapping[str, str],
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        timeouts: Timeouts | None = None,
        max_connections: int = 100,
        greeting: str = "protomata POP3 server ready",
        reuse_port: bool = False,
        grace: float = 10.0,
        authenticate_xoauth2: Callable[[str, str], Any] | None = None,
    ) -> None:
        listener_tls, self.stls_context = _tls_split(tls_context, implicit_tls)
        self.implicit_tls = implicit_tls
        super().__init__(  # type: ignore[call-arg]  # the adapter's TCPServer
            host,
            port,
            max_connections=max_connections,
            tls_context=listener_tls,
            timeouts=timeouts or DEFAULT_POP3_TIMEOUTS,
            reuse_port=reuse_port,
            grace=grace,
        )
        self.maildir = os.fspath(maildir)
        self.users = dict(users)
        #: checks AUTH XOAUTH2 tokens: ``(user, token) -> bool`` (async servers
        #: may give a coroutine function); None: XOAUTH2 is not offered
        self.authenticate_xoauth2 = authenticate_xoauth2
        sasl = POP3Settings.sasl + (("XOAUTH2",) if authenticate_xoauth2 is not None else ())
        self.settings = POP3Settings(
            greeting=greeting, tls=self.stls_context is not None, sasl=sasl
        )
        self._locked: set[str] = set()
        self._counter = itertools.count()
        self._hostname = socket.gethostname() or "localhost"
        self._setup()

    def _setup(self) -> None:  # noqa: B027 (an optional hook)
        """The adapter's last step of construction (a hook)."""

    @property
    def url(self) -> str:
        """``pop://host:port/`` (``pops://`` with implicit TLS) of the listening socket."""
        return _url("pops" if self.implicit_tls else "pop", self.host, self.port) + "/"

    def _timestamp(self) -> str:
        return f"<{os.getpid()}.{next(self._counter)}.{time.time_ns()}@{self._hostname}>"

    @abc.abstractmethod
    def _file_work(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run *func* on the Maildir (the adapter's part: at once, or in a thread)."""

    def _take_mailbox(self, maildir: str) -> bool:
        """Take the mailbox lock of *maildir*; False when another session holds it."""
        if maildir in self._locked:
            return False
        self._locked.add(maildir)
        return True

    def _release_mailbox(self, maildir: str) -> None:
        self._locked.discard(maildir)

    def _session(self, stream: Any) -> tuple[Operation[None], Callable[[Call], Any], list[str]]:
        """The pure POP3 session for *stream*, its call handler, and the
        mailbox locks it holds (to release when it ends)."""
        stream.tls_context = self.stls_context
        mailbox = MaildirMailbox(self.maildir)
        held: list[str] = []

        def on_call(call: Call) -> Any:
            name, args = call.name, call.args
            if name == "timestamp":
                return self._timestamp()
            if name == "authenticate":
                return password_matches(self.users.get(args[0]), args[1])
            if name == "apop_secret":
                return self.users.get(args[0])
            if name == "authenticate_xoauth2" and self.authenticate_xoauth2 is not None:
                return self.authenticate_xoauth2(*args)
            if name == "open_mailbox":
                if not self._take_mailbox(self.maildir):
                    return None
                held.append(self.maildir)
                return self._file_work(mailbox.messages)
            if name == "read_message":
                return self._file_work(mailbox.read, args[0])
            if name == "delete":
                return self._file_work(mailbox.delete, list(args[0]))
            if name == "close_mailbox":
                while held:
                    self._release_mailbox(held.pop())
                return None
            raise RuntimeError(f"unknown POP3 call {name!r}")

        conn = POP3Connection(SERVER)
        conn.tls_active = self.implicit_tls
        return serve_pop3_session(conn, self.settings), on_call, held
