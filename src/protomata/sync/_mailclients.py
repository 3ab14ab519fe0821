"""The blocking SMTP/LMTP client, :class:`SMTPClient`, and the TLS context helper.

The conversation is the pure operations of :mod:`protomata.smtp._operations`.
:class:`SMTPClientBase` holds everything about a client session that is not
I/O -- settings and their validation, the machine, which operation each
method runs; :class:`SMTPClient` runs it on blocking sockets and
:class:`AsyncSMTPClientBase` is the whole async client, which the asyncio
and trio adapters only give their ``connect_tcp``, runner and close.
"""

from __future__ import annotations

import abc
import contextlib
import ssl
import types
from collections.abc import Awaitable, Callable, Iterable
from email.message import Message
from typing import Any, TypeVar

from .._core import CLIENT
from .._core._ops import Operation
from ..smtp._connection import Connection as SMTPConnection
from ..smtp._connection import State
from ..smtp._events import Reply
from ..smtp._extensions import Extensions
from ..smtp._operations import (
    STARTTLS_POLICIES,
    SendResult,
    SMTPError,
    SMTPRecipientsRefused,
    authenticate,
    mail_transaction,
    noop,
    open_session,
    prepare_message,
    quit,
    rset,
)
from ._asynchttp import client_tls_context
from ._runner import run
from ._stream import SocketStream, Timeouts, connect_tcp

__all__ = [
    "AsyncSMTPClientBase",
    "SMTPClient",
    "SMTPClientBase",
    "SMTPError",
    "SMTPRecipientsRefused",
    "SendResult",
    "tls_context",
]


tls_context = client_tls_context


class SMTPClientBase:
    """Settings and operations of an SMTP (or LMTP) client session, without I/O.

    :param host: the server to connect to; *port* defaults to 25 (SMTP)
        or 24 (LMTP); use 465 with *tls*, 587 with *starttls*.
    :param tls: start TLS on connect (implicit TLS, "SMTPS").
    :param starttls: ``"never"`` (the default), ``"if-offered"`` or
        ``"required"``; not used with *tls*.
    :param verify: verify the server certificate and host name (default);
        ``False`` only for testing; or an :class:`ssl.SSLContext` to use.
    :param timeout: seconds allowed for connecting and for each read and write.
    :param local_hostname: the name given in EHLO/HELO/LHLO.
    :param username: log in right after connecting, with *password*
        (PLAIN, LOGIN or CRAM-MD5) or *token* (XOAUTH2); see ``login()``.
    :param lmtp: speak LMTP (RFC 2033): LHLO, and a result per recipient
        after the message.
    :param chunking: send messages with BDAT when the server offers
        CHUNKING (RFC 3030); DATA otherwise.
    :param server_hostname: the name the certificate must be valid for
        (default: *host*).
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: bool = False,
        starttls: str = "never",
        verify: bool | ssl.SSLContext = True,
        timeout: float = 60.0,
        local_hostname: str = "localhost",
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        lmtp: bool = False,
        chunking: bool = True,
        server_hostname: str | None = None,
    ) -> None:
        if starttls not in STARTTLS_POLICIES:
            raise ValueError(f"starttls must be never, if-offered or required, not {starttls!r}")
        if username is None and (password is not None or token is not None):
            raise ValueError("a password or token needs a username")
        if username is not None and (password is None) == (token is None):
            raise ValueError("give a username with a password or with a token, not both")
        if tls and starttls == "required":
            raise ValueError("tls=True already encrypts: starttls='required' does not apply")
        self.host = host
        self.port = port if port is not None else (24 if lmtp else 25)
        self.tls = tls
        self.starttls = "never" if tls else starttls
        self.tls_context = tls_context(verify)
        self.timeouts = Timeouts(timeout, connect=timeout, write=timeout)
        self.local_hostname = local_hostname
        self.lmtp = lmtp
        self.chunking = chunking
        self.server_hostname = server_hostname
        self._credentials = (username, password, token) if username is not None else None
        #: The session's machine while connected, else None.
        self.connection: SMTPConnection | None = None

    @property
    def extensions(self) -> Extensions:
        """What the server offered in its last EHLO/LHLO reply (empty when not connected)."""
        return self.connection.extensions if self.connection is not None else Extensions()

    def _session(self) -> SMTPConnection:
        conn = self.connection
        if conn is None:
            raise RuntimeError("not connected: use connect() or the client as a context manager")
        return conn

    def _open_ops(self) -> Iterable[Operation[object]]:
        """The operations that open a session on a fresh connection (run in order)."""
        conn = self.connection = SMTPConnection(CLIENT, lmtp=self.lmtp)
        yield open_session(
            conn,
            local_hostname=self.local_hostname,
            starttls=self.starttls,
            server_hostname=self.server_hostname,
        )
        if self._credentials is not None:
            username, password, token = self._credentials
            assert username is not None
            yield authenticate(conn, username, password, token=token)

    def _login_op(
        self, username: str, password: str | None, mechanism: str | None, token: str | None
    ) -> Operation[Reply]:
        return authenticate(self._session(), username, password, mechanism=mechanism, token=token)

    def _send_op(
        self,
        message: bytes | bytearray | memoryview | Message,
        from_addr: str | None,
        to_addrs: str | Iterable[str] | None,
        *,
        ret: str | None,
        envid: str | None,
        notify: str | Iterable[str] | None,
        orcpt: bool,
    ) -> Operation[SendResult]:
        data, sender, recipients = prepare_message(message, from_addr, to_addrs)
        return mail_transaction(
            self._session(),
            sender,
            recipients,
            data,
            ret=ret,
            envid=envid,
            notify=notify,
            orcpt=orcpt,
            chunking=self.chunking,
        )

    def _noop_op(self) -> Operation[Reply]:
        return noop(self._session())

    def _rset_op(self) -> Operation[Reply]:
        return rset(self._session())

    def _quit_op(self) -> Operation[Reply | None]:
        return quit(self._session())

    def _broken(self, exc: BaseException) -> bool:
        """Whether *exc*, raised by an operation, leaves the session unusable."""
        conn = self.connection
        if not isinstance(exc, SMTPError) or conn is None:
            return True
        return conn.state in (State.CLOSED, State.ERROR)


class SMTPClient(SMTPClientBase):
    """A blocking SMTP (or LMTP) client: one session, any number of messages.

    ::

        with SMTPClient("mail.example", 587, starttls="required") as client:
            client.login("me", "secret")
            result = client.send_message(msg)
            print(result.accepted, result.refused)

    The session opens in :meth:`connect` (or on entering the ``with``
    block, or at the first :meth:`send_message`): greeting, EHLO, STARTTLS
    as configured, and AUTH when a username was given.  Any failure that
    breaks the session (a transport error, a protocol error, the server
    closing) closes the connection; the next call opens a new one.
    Settings are those of :class:`SMTPClientBase`.
    """

    _stream: SocketStream | None = None

    def connect(self) -> None:
        """Connect and open the session (closing any previous one first)."""
        self.close()
        stream = self._stream = connect_tcp(
            self.host,
            self.port,
            timeouts=self.timeouts,
            tls_context=self.tls_context,
            tls=self.tls,
            server_hostname=self.server_hostname,
        )
        try:
            for op in self._open_ops():
                run(op, stream)
        except BaseException as exc:
            if not self._broken(exc):
                self._quit_quietly()
            self.close()
            raise

    def _run(self, op: Operation[object]) -> object:
        stream = self._stream
        assert stream is not None
        try:
            return run(op, stream)
        except BaseException as exc:
            if self._broken(exc):
                self.close()
            raise

    def _ensure(self) -> None:
        if self._stream is None:
            self.connect()

    def login(
        self,
        username: str,
        password: str | None = None,
        *,
        mechanism: str | None = None,
        token: str | None = None,
    ) -> Reply:
        """Authenticate (see :func:`~protomata.smtp._operations.authenticate`); the 235 reply."""
        self._ensure()
        reply = self._run(self._login_op(username, password, mechanism, token))
        assert isinstance(reply, Reply)
        return reply

    def send_message(
        self,
        message: bytes | bytearray | memoryview | Message,
        from_addr: str | None = None,
        to_addrs: str | Iterable[str] | None = None,
        *,
        ret: str | None = None,
        envid: str | None = None,
        notify: str | Iterable[str] | None = None,
        orcpt: bool = False,
    ) -> SendResult:
        """Send *message* in one mail transaction; what became of each recipient.

        *message* is bytes (sent as is, with CRLF line endings) or an
        :class:`email.message.Message`, which also gives the sender and
        recipients not passed (see ``prepare_message``).  8BITMIME, SMTPUTF8
        and SIZE are used as the message needs; *ret*, *envid*, *notify* and
        *orcpt* are DSN requests, sent when the server offers DSN.  Refused
        recipients are in the result, not raised; :class:`SMTPError` means
        the transaction failed as a whole (MAIL or the message refused, or
        the message needs an extension the server lacks).
        """
        if self._stream is None:
            prepare_message(message, from_addr, to_addrs)  # bad arguments: before connecting
            self.connect()
        op = self._send_op(
            message, from_addr, to_addrs, ret=ret, envid=envid, notify=notify, orcpt=orcpt
        )
        result = self._run(op)
        assert isinstance(result, SendResult)
        return result

    def noop(self) -> Reply:
        """NOOP: check the session is alive; the 250 reply."""
        self._ensure()
        reply = self._run(self._noop_op())
        assert isinstance(reply, Reply)
        return reply

    def rset(self) -> Reply:
        """RSET: abandon a transaction; the 250 reply."""
        self._ensure()
        reply = self._run(self._rset_op())
        assert isinstance(reply, Reply)
        return reply

    def quit(self) -> Reply | None:
        """Say QUIT and close; the server's reply (None if not connected or none came)."""
        if self._stream is None:
            return None
        try:
            reply = self._run(self._quit_op())
        finally:
            self.close()
        assert reply is None or isinstance(reply, Reply)
        return reply

    def _quit_quietly(self) -> None:
        conn, stream = self.connection, self._stream
        if conn is None or stream is None or conn.state in (State.CLOSED, State.ERROR):
            return
        with contextlib.suppress(Exception):
            run(quit(conn), stream)

    def close(self) -> None:
        """Close the connection without QUIT (nothing happens if not connected)."""
        stream, self._stream = self._stream, None
        self.connection = None
        if stream is not None:
            stream.close()

    def __enter__(self) -> SMTPClient:
        self._ensure()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        # After an error that left the session intact, still say goodbye.
        self._quit_quietly()
        self.close()


_AsyncClient = TypeVar("_AsyncClient", bound="AsyncSMTPClientBase")


class AsyncSMTPClientBase(SMTPClientBase, abc.ABC):
    """An async SMTP (or LMTP) client: one session, any number of messages.

    ::

        async with SMTPClient("mail.example", 587, starttls="required") as client:
            await client.login("me", "secret")
            result = await client.send_message(msg)

    The methods are those of :class:`protomata.sync.SMTPClient`, awaited;
    the settings those of :class:`~protomata.sync._mailclients.SMTPClientBase`.
    A failure that breaks the session closes the connection; the next call
    opens a new one.
    """

    # Supplied by the adapter's subclass.
    _connect_tcp: Callable[..., Awaitable[Any]]
    _runner: Callable[..., Awaitable[Any]]

    _stream: Any = None

    @abc.abstractmethod
    async def _drop(self, stream: Any) -> None:
        """Close *stream* at once (the adapter's part)."""

    async def connect(self) -> None:
        """Connect and open the session (closing any previous one first)."""
        await self.aclose()
        stream = self._stream = await self._connect_tcp(
            self.host,
            self.port,
            timeouts=self.timeouts,
            tls_context=self.tls_context,
            tls=self.tls,
            server_hostname=self.server_hostname,
        )
        try:
            for op in self._open_ops():
                await self._runner(op, stream)
        except BaseException as exc:
            if not self._broken(exc):
                await self._quit_quietly()
            await self.aclose()
            raise

    async def _run(self, op: Operation[object]) -> object:
        stream = self._stream
        assert stream is not None
        try:
            return await self._runner(op, stream)
        except BaseException as exc:
            if self._broken(exc):
                await self.aclose()
            raise

    async def _ensure(self) -> None:
        if self._stream is None:
            await self.connect()

    async def login(
        self,
        username: str,
        password: str | None = None,
        *,
        mechanism: str | None = None,
        token: str | None = None,
    ) -> Reply:
        """Authenticate (PLAIN, LOGIN, CRAM-MD5 or XOAUTH2); the 235 reply."""
        await self._ensure()
        reply = await self._run(self._login_op(username, password, mechanism, token))
        assert isinstance(reply, Reply)
        return reply

    async def send_message(
        self,
        message: bytes | bytearray | memoryview | Message,
        from_addr: str | None = None,
        to_addrs: str | Iterable[str] | None = None,
        *,
        ret: str | None = None,
        envid: str | None = None,
        notify: str | Iterable[str] | None = None,
        orcpt: bool = False,
    ) -> SendResult:
        """Send *message* in one mail transaction (see ``protomata.sync.SMTPClient``)."""
        if self._stream is None:
            prepare_message(message, from_addr, to_addrs)  # bad arguments: before connecting
            await self.connect()
        op = self._send_op(
            message, from_addr, to_addrs, ret=ret, envid=envid, notify=notify, orcpt=orcpt
        )
        result = await self._run(op)
        assert isinstance(result, SendResult)
        return result

    async def noop(self) -> Reply:
        """NOOP: check the session is alive; the 250 reply."""
        await self._ensure()
        reply = await self._run(self._noop_op())
        assert isinstance(reply, Reply)
        return reply

    async def rset(self) -> Reply:
        """RSET: abandon a transaction; the 250 reply."""
        await self._ensure()
        reply = await self._run(self._rset_op())
        assert isinstance(reply, Reply)
        return reply

    async def quit(self) -> Reply | None:
        """Say QUIT and close; the server's reply (None if not connected or none came)."""
        if self._stream is None:
            return None
        try:
            reply = await self._run(self._quit_op())
        finally:
            await self.aclose()
        assert reply is None or isinstance(reply, Reply)
        return reply

    async def _quit_quietly(self) -> None:
        conn, stream = self.connection, self._stream
        if conn is None or stream is None or conn.state in (State.CLOSED, State.ERROR):
            return
        with contextlib.suppress(Exception):
            await self._runner(quit(conn), stream)

    async def aclose(self) -> None:
        """Close the connection without QUIT (nothing happens if not connected)."""
        stream, self._stream = self._stream, None
        self.connection = None
        if stream is not None:
            await self._drop(stream)

    async def __aenter__(self: _AsyncClient) -> _AsyncClient:
        await self._ensure()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        # After an error that left the session intact, still say goodbye
        # (but not when cancelled).
        if exc is None or isinstance(exc, Exception):
            await self._quit_quietly()
        await self.aclose()
