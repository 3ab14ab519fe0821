"""A blocking SMTP server (a mail sink) and the Maildir writer behind it.

The SMTP dialogue is :func:`protomata.smtp._server.serve_session`; this
module runs it over sockets in a thread per connection and carries out
its calls: the application's handler decides about senders, recipients
and messages, and the default handler stores every message in a Maildir.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from ..smtp._events import Reply
from ..smtp._maildir import maildir_content
from ..smtp._server import Envelope
from ._maildir import Maildir
from ._mailservice import SMTPServiceBase
from ._runner import run
from ._server import TCPServer
from ._stream import SocketStream

__all__ = ["MaildirHandler", "SMTPServer"]

logger = logging.getLogger("protomata.smtp")


class MaildirHandler:
    """A handler that accepts every sender and recipient and stores each message
    (what the servers do without a ``message`` method, as a handler to wrap).

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


class SMTPServer(SMTPServiceBase, TCPServer):
    __doc__ = SMTPServiceBase.__doc__

    #: the Maildir messages go to (None with a handler that stores them)
    maildir: Maildir | None = None

    def _setup(self) -> None:
        if self.maildir_path is not None:
            self.maildir = Maildir(self.maildir_path, self.hostname)

    def _store(self, envelope: Envelope, data: bytes) -> Reply | None:
        maildir = self.maildir
        assert maildir is not None
        maildir.deliver(maildir_content(envelope, data, maildir.hostname, self._received_date()))
        return None

    def _invoke(self, name: str, method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        try:
            result = method(*args)
            if inspect.isawaitable(result):
                # A coroutine is truthy: taken as an answer it would, say,
                # accept any password.  The blocking server cannot await it.
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError(f"the blocking SMTPServer needs a plain {name}(), not async")
            return result
        except Exception:
            logger.exception("the SMTP handler's %s() failed", name)
            raise

    def handle_connection(self, stream: SocketStream) -> None:
        """Serve one SMTP (or LMTP) session on *stream*."""
        run(self._session(stream), stream, self._on_call)
