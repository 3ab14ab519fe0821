"""The blocking POP3 client, :class:`POP3Client`.

The conversation is the pure operations of :mod:`protomata.pop3._client`;
this class only connects, does TLS and runs them with :func:`protomata.sync.run`.
"""

from __future__ import annotations

import ssl
from types import TracebackType

from .._core import CLIENT
from ..pop3 import _client as pop3_ops
from ..pop3._client import POP3Error
from ..pop3._connection import Connection as POP3Connection
from ._mailclients import tls_context
from ._runner import run
from ._stream import SocketStream, Timeouts, connect_tcp

__all__ = ["POP3Client", "POP3Error"]


class POP3Client:
    """A blocking POP3 session (connects and reads the greeting at once).

    :param tls: start TLS on connect (implicit TLS, "POP3S", port 995).
    :param stls: upgrade with STLS before logging in (RFC 2595).
    :param verify: verify the server certificate and host name (default);
        ``False`` only for testing; or an :class:`ssl.SSLContext` to use.

    Use it as a context manager or call :meth:`quit` (commits deletions)
    or :meth:`close` (drops them).  ``-ERR`` replies raise :class:`POP3Error`.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: bool = False,
        stls: bool = False,
        verify: bool | ssl.SSLContext = True,
        timeout: float = 60.0,
    ) -> None:
        if tls and stls:
            raise ValueError("choose implicit TLS or STLS, not both")
        if port is None:
            port = 995 if tls else 110
        self.conn = POP3Connection(CLIENT)
        self.stream: SocketStream = connect_tcp(
            host,
            port,
            timeouts=Timeouts(timeout, connect=timeout, write=timeout),
            tls_context=tls_context(verify),
            tls=tls,
        )
        try:
            self.greeting = run(pop3_ops.greeting(self.conn), self.stream).text
            if stls:
                run(pop3_ops.start_tls(self.conn), self.stream)
        except BaseException:
            self.stream.close()
            raise

    def login(self, user: str, password: str, *, apop: bool = False) -> None:
        """Log in with USER/PASS (or APOP)."""
        run(pop3_ops.login(self.conn, user, password, apop=apop), self.stream)

    def stat(self) -> tuple[int, int]:
        """``(number of messages, total size)``."""
        return run(pop3_ops.stat(self.conn), self.stream)

    def list_messages(self) -> list[tuple[int, int]]:
        """``(number, size)`` of each message."""
        return run(pop3_ops.list_messages(self.conn), self.stream)

    def uidl(self) -> list[tuple[int, str]]:
        """``(number, unique id)`` of each message."""
        return run(pop3_ops.uidl(self.conn), self.stream)

    def retrieve(self, msg: int) -> bytes:
        """Message *msg* with CRLF line ends."""
        return run(pop3_ops.retrieve(self.conn, msg), self.stream)

    def delete(self, msg: int) -> None:
        """Mark message *msg* deleted; it goes at :meth:`quit`."""
        run(pop3_ops.delete(self.conn, msg), self.stream)

    def quit(self) -> None:
        """End the session, committing deletions, and close the connection."""
        try:
            run(pop3_ops.quit(self.conn), self.stream)
        finally:
            self.stream.close()

    def close(self) -> None:
        """Close the connection without QUIT (the server keeps every message)."""
        self.stream.close()

    def __enter__(self) -> POP3Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.quit()
        else:
            self.close()
