"""A blocking POP3 server for a Maildir (the session logic is :mod:`protomata.pop3._server`).

This adapter only does the file and socket work: listing ``new/`` and
``cur/``, reading a message (bare LF line ends become CRLF), unlinking the
messages a session deleted at QUIT, the per-user mailbox lock, and TLS.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from ._mailservice import POP3ServiceBase
from ._runner import run
from ._server import TCPServer
from ._stream import SocketStream

__all__ = ["POP3Server"]


class POP3Server(POP3ServiceBase, TCPServer):
    __doc__ = POP3ServiceBase.__doc__

    def _setup(self) -> None:
        self._lock_guard = threading.Lock()

    def _file_work(self, func: Callable[..., Any], *args: Any) -> Any:
        return func(*args)

    def _take_mailbox(self, maildir: str) -> bool:
        with self._lock_guard:
            return super()._take_mailbox(maildir)

    def _release_mailbox(self, maildir: str) -> None:
        with self._lock_guard:
            super()._release_mailbox(maildir)

    def handle_connection(self, stream: SocketStream) -> None:
        """Run one POP3 session over *stream*."""
        session, on_call, held = self._session(stream)
        try:
            run(session, stream, on_call)
        finally:
            for name in held:
                self._release_mailbox(name)
            with contextlib.suppress(OSError):
                stream.close()
