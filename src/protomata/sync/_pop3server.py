"""A blocking POP3 server for a Maildir (the session logic is :mod:`protomata.pop3._server`).

This adapter only does the file and socket work: listing ``new/`` and
``cur/``, reading a message (bare LF line ends become CRLF), unlinking the
messages a session deleted at QUIT, the per-user mailbox lock, and TLS.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import os
import socket
import ssl
import threading
import time
from typing import Any

from .._core._ops import Call
from ..pop3 import SERVER
from ..pop3._connection import Connection
from ..pop3._server import SessionSettings, serve_session
from ._maildir import MaildirMailbox
from ._runner import run
from ._server import TCPServer
from ._stream import SocketStream, Timeouts

__all__ = ["POP3Server"]

#: RFC 1939 section 3: the autologout timer is at least 10 minutes.
DEFAULT_POP3_TIMEOUTS = Timeouts(600.0, idle=600.0)


class POP3Server(TCPServer):
    """Serve the Maildir *maildir* over POP3 to the users of *users* (name -> password).

    Every user reads the same Maildir; one session at a time holds it (a
    second login answers ``-ERR [IN-USE]``).  With *tls_context* the server
    offers STLS (RFC 2595); the connection starts in plaintext.  Deleted
    messages are removed only when the client ends the session with QUIT.
    Messages are sent in their wire form (:func:`~protomata.pop3._server.to_crlf`),
    and LIST sizes are those of the wire form.
    """

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
        super().__init__(
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
        self.settings = SessionSettings(greeting=greeting, tls=tls_context is not None)
        self._locked: set[str] = set()
        self._lock_guard = threading.Lock()
        self._counter = itertools.count()
        self._hostname = socket.gethostname() or "localhost"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"pop://{host}:{self.port}/"

    def _timestamp(self) -> str:
        return f"<{os.getpid()}.{next(self._counter)}.{time.time_ns()}@{self._hostname}>"

    def handle_connection(self, stream: SocketStream) -> None:
        """Run one POP3 session over *stream*."""
        stream.tls_context = self.stls_context
        maildir = MaildirMailbox(self.maildir)
        held: list[str] = []

        def open_mailbox(user: str) -> list[tuple[str, int]] | None:
            with self._lock_guard:
                if self.maildir in self._locked:
                    return None
                self._locked.add(self.maildir)
            held.append(self.maildir)
            return maildir.messages()

        def on_call(call: Call) -> Any:
            name, args = call.name, call.args
            if name == "timestamp":
                return self._timestamp()
            if name == "authenticate":
                user, password = args
                expected = self.users.get(user)
                given = password.encode("utf-8", "surrogateescape")
                wanted = (expected or "").encode("utf-8")
                return expected is not None and hmac.compare_digest(given, wanted)
            if name == "apop_secret":
                return self.users.get(args[0])
            if name == "open_mailbox":
                return open_mailbox(args[0])
            if name == "read_message":
                return maildir.read(args[0])
            if name == "delete":
                return maildir.delete(list(args[0]))
            raise RuntimeError(f"unknown POP3 call {name!r}")

        try:
            run(serve_session(Connection(SERVER), self.settings), stream, on_call)
        finally:
            with self._lock_guard:
                for name in held:
                    self._locked.discard(name)
            with contextlib.suppress(OSError):
                stream.close()
