"""The POP3 clients: the blocking :class:`POP3Client` and the async base class.

The conversation is :class:`protomata.pop3._client.ClientSession` (pure
operations); these classes only connect, do TLS and run its operations,
with :func:`protomata.sync.run` here.  :class:`AsyncPOP3ClientBase` is
the same client for any event loop: ``protomata.asyncio`` and
``protomata.trio`` each subclass it with their own runner and connector.
"""

from __future__ import annotations

import inspect
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Protocol, TypeVar

from .._core._ops import Call, Operation
from ..pop3._client import ClientSession, POP3Error
from ..pop3._connection import DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_LISTING_SIZE
from ..pop3._connection import Connection as POP3Connection
from ..pop3._events import Capabilities
from ._mailclients import tls_context
from ._runner import run
from ._stream import SocketStream, Timeouts, connect_tcp

__all__ = ["AsyncPOP3ClientBase", "POP3Client", "POP3Error"]

T = TypeVar("T")
_Client = TypeVar("_Client", bound="AsyncPOP3ClientBase")


class _Writable(Protocol):
    def write(self, data: bytes, /) -> Any: ...


def _settings(tls: bool, stls: bool, port: int | None) -> int:
    """Check the TLS choice; the port (995 with implicit TLS, else 110 by default)."""
    if tls and stls:
        raise ValueError("choose implicit TLS or STLS, not both")
    if port is None:
        return 995 if tls else 110
    return port


class _POP3ClientBase:
    """The settings and the machine every POP3 client has, whatever its I/O."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: bool = False,
        stls: bool = False,
        verify: bool | ssl.SSLContext = True,
        timeout: float = 60.0,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        max_listing_size: int = DEFAULT_MAX_LISTING_SIZE,
    ) -> None:
        self.host = host
        self.port = _settings(tls, stls, port)
        self.tls = tls
        self.stls = stls
        self.tls_context = tls_context(verify)
        self.timeouts = Timeouts(timeout, connect=timeout, write=timeout)
        self.session = ClientSession(
            max_line_length=max_line_length, max_listing_size=max_listing_size
        )
        #: The greeting text, once connected.
        self.greeting = ""
        self._start()

    def _start(self) -> None:
        """What the constructor does last: the blocking client connects."""

    @property
    def conn(self) -> POP3Connection:
        """The client protocol machine."""
        return self.session.conn


class POP3Client(_POP3ClientBase):
    """A blocking POP3 session (connects and reads the greeting at once).

    :param tls: start TLS on connect (implicit TLS, "POP3S", port 995).
    :param stls: upgrade with STLS before logging in (RFC 2595).
    :param verify: verify the server certificate and host name (default);
        ``False`` only for testing; or an :class:`ssl.SSLContext` to use.
    :param timeout: seconds for connecting and for each read and write.
    :param max_line_length: longest reply or message line accepted
        (CRLF included); longer is a :class:`POP3Error`.
    :param max_listing_size: largest LIST/UIDL/CAPA reply accepted.

    Use it as a context manager (QUIT on success, a plain close after an
    error) or call :meth:`quit` (commits deletions) or :meth:`close`
    (drops them).  ``-ERR`` replies, malformed replies and a lost
    connection raise :class:`POP3Error`; timeouts :class:`TimeoutError`.
    """

    stream: SocketStream

    def _start(self) -> None:
        self.stream = connect_tcp(
            self.host, self.port, timeouts=self.timeouts, tls_context=self.tls_context, tls=self.tls
        )
        try:
            self.greeting = run(self.session.open(self.stls), self.stream)
        except BaseException:
            self.stream.close()
            raise

    def _run(self, op: Operation[T]) -> T:
        return run(op, self.stream)

    def capa(self) -> Capabilities:
        """CAPA: the server's capabilities (empty if it has no CAPA)."""
        return self._run(self.session.capabilities())

    def utf8(self) -> None:
        """UTF8 (RFC 6856): switch to UTF-8 mode (before logging in)."""
        self._run(self.session.utf8())

    def login(self, user: str, password: str, *, apop: bool = False) -> None:
        """Log in with USER/PASS (or APOP)."""
        self._run(self.session.login(user, password, apop))

    def auth(
        self,
        mechanism: str,
        username: str,
        password: str,
        *,
        authzid: str = "",
        initial_response: bool = True,
    ) -> None:
        """Log in with SASL: PLAIN, LOGIN, CRAM-MD5 or XOAUTH2 (*password*: the token)."""
        self._run(
            self.session.authenticate(
                mechanism,
                username,
                password,
                authzid=authzid,
                initial_response=initial_response,
            )
        )

    def stat(self) -> tuple[int, int]:
        """``(number of messages, total size)``."""
        return self._run(self.session.stat())

    def list_messages(self) -> list[tuple[int, int]]:
        """``(number, size)`` of each message."""
        return self._run(self.session.list_messages())

    def message_size(self, msg: int) -> int:
        """The size of message *msg* (``LIST msg``)."""
        return self._run(self.session.message_size(msg))

    def uidl(self) -> list[tuple[int, str]]:
        """``(number, unique id)`` of each message."""
        return self._run(self.session.uidl())

    def message_uid(self, msg: int) -> str:
        """The unique id of message *msg* (``UIDL msg``)."""
        return self._run(self.session.message_uid(msg))

    def retrieve(self, msg: int) -> bytes:
        """Message *msg* with CRLF line ends."""
        return self._run(self.session.retrieve(msg))

    def top(self, msg: int, lines: int) -> bytes:
        """The header of message *msg* and the first *lines* body lines."""
        return self._run(self.session.top(msg, lines))

    def iter_retrieve(self, msg: int, *, lines: int | None = None) -> Iterator[bytes]:
        """Message *msg* (or its TOP *lines*) in pieces, as they arrive.

        Breaking out early is allowed: the rest is read and dropped before
        the next command.
        """
        self._run(self.session.begin_body(msg, lines))
        while (chunk := self._run(self.session.read_body())) is not None:
            yield chunk

    def retrieve_to(self, msg: int, file: _Writable, *, lines: int | None = None) -> int:
        """Write message *msg* (or its TOP *lines*) to *file* piece by piece; its size."""

        def on_call(call: Call) -> None:
            file.write(call.args[0])

        return run(self.session.retrieve_chunks(msg, lines), self.stream, on_call)

    def delete(self, msg: int) -> None:
        """Mark message *msg* deleted; it goes at :meth:`quit`."""
        self._run(self.session.delete(msg))

    def noop(self) -> None:
        """NOOP."""
        self._run(self.session.noop())

    def rset(self) -> None:
        """RSET: unmark the messages marked deleted."""
        self._run(self.session.rset())

    def quit(self) -> None:
        """End the session, committing deletions, and close the connection."""
        try:
            self._run(self.session.quit())
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
        if exc_type is None and self.session.usable:
            self.quit()
        else:
            self.close()


class AsyncPOP3ClientBase(_POP3ClientBase):
    """The async POP3 client for any event loop (see ``protomata.asyncio.POP3Client``).

    Subclasses set :attr:`_connect_tcp` (the adapter's ``connect_tcp``) and
    :attr:`_runner` (its ``run``); everything else is shared.  The
    parameters are those of the blocking :class:`POP3Client`; connecting
    and reading the greeting happen in :meth:`connect` (``async with``
    calls it).
    """

    _connect_tcp: Callable[..., Awaitable[Any]]
    _runner: Callable[..., Awaitable[Any]]
    stream: Any = None

    async def connect(self) -> None:
        """Connect, read the greeting and do STLS if asked."""
        if self.stream is not None:
            raise RuntimeError("already connected")
        self.stream = await type(self)._connect_tcp(
            self.host, self.port, timeouts=self.timeouts, tls_context=self.tls_context, tls=self.tls
        )
        try:
            self.greeting = await self._run(self.session.open(self.stls))
        except BaseException:
            await self.close()
            raise

    async def _run(self, op: Operation[T], on_call: Any = None) -> T:
        if self.stream is None:
            raise RuntimeError("not connected: use async with, or await connect()")
        runner = type(self)._runner
        if on_call is None:
            result: T = await runner(op, self.stream)
        else:
            result = await runner(op, self.stream, on_call)
        return result

    async def capa(self) -> Capabilities:
        """CAPA: the server's capabilities (empty if it has no CAPA)."""
        return await self._run(self.session.capabilities())

    async def utf8(self) -> None:
        """UTF8 (RFC 6856): switch to UTF-8 mode (before logging in)."""
        await self._run(self.session.utf8())

    async def login(self, user: str, password: str, *, apop: bool = False) -> None:
        """Log in with USER/PASS (or APOP)."""
        await self._run(self.session.login(user, password, apop))

    async def auth(
        self,
        mechanism: str,
        username: str,
        password: str,
        *,
        authzid: str = "",
        initial_response: bool = True,
    ) -> None:
        """Log in with SASL: PLAIN, LOGIN, CRAM-MD5 or XOAUTH2 (*password*: the token)."""
        await self._run(
            self.session.authenticate(
                mechanism,
                username,
                password,
                authzid=authzid,
                initial_response=initial_response,
            )
        )

    async def stat(self) -> tuple[int, int]:
        """``(number of messages, total size)``."""
        return await self._run(self.session.stat())

    async def list_messages(self) -> list[tuple[int, int]]:
        """``(number, size)`` of each message."""
        return await self._run(self.session.list_messages())

    async def message_size(self, msg: int) -> int:
        """The size of message *msg* (``LIST msg``)."""
        return await self._run(self.session.message_size(msg))

    async def uidl(self) -> list[tuple[int, str]]:
        """``(number, unique id)`` of each message."""
        return await self._run(self.session.uidl())

    async def message_uid(self, msg: int) -> str:
        """The unique id of message *msg* (``UIDL msg``)."""
        return await self._run(self.session.message_uid(msg))

    async def retrieve(self, msg: int) -> bytes:
        """Message *msg* with CRLF line ends."""
        return await self._run(self.session.retrieve(msg))

    async def top(self, msg: int, lines: int) -> bytes:
        """The header of message *msg* and the first *lines* body lines."""
        return await self._run(self.session.top(msg, lines))

    def iter_retrieve(self, msg: int, *, lines: int | None = None) -> AsyncIterator[bytes]:
        """Message *msg* (or its TOP *lines*) in pieces as they arrive: ``async for``.

        Breaking out early is allowed: the rest is read and dropped before
        the next command.
        """
        return _BodyIterator(self, msg, lines)

    async def retrieve_to(self, msg: int, file: _Writable, *, lines: int | None = None) -> int:
        """Write message *msg* (or its TOP *lines*) to *file* piece by piece; its size.

        ``file.write`` may be a plain or an async method (``trio.open_file``,
        ``anyio``); a plain one runs in the event loop, so keep it quick.
        """

        async def on_call(call: Call) -> None:
            written = file.write(call.args[0])
            if inspect.isawaitable(written):
                await written

        return await self._run(self.session.retrieve_chunks(msg, lines), on_call)

    async def delete(self, msg: int) -> None:
        """Mark message *msg* deleted; it goes at :meth:`quit`."""
        await self._run(self.session.delete(msg))

    async def noop(self) -> None:
        """NOOP."""
        await self._run(self.session.noop())

    async def rset(self) -> None:
        """RSET: unmark the messages marked deleted."""
        await self._run(self.session.rset())

    async def quit(self) -> None:
        """End the session, committing deletions, and close the connection."""
        try:
            await self._run(self.session.quit())
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection without QUIT (the server keeps every message)."""
        stream, self.stream = self.stream, None
        if stream is not None:
            await stream.aclose()

    async def __aenter__(self: _Client) -> _Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self.session.usable:
            await self.quit()
        else:
            await self.close()


class _BodyIterator(AsyncIterator[bytes]):
    """The pieces of one message body, read on demand (no async generator to finalize)."""

    def __init__(self, client: AsyncPOP3ClientBase, msg: int, lines: int | None) -> None:
        self.client = client
        self.msg = msg
        self.lines = lines
        self.started = False

    async def __anext__(self) -> bytes:
        session = self.client.session
        if not self.started:
            self.started = True
            await self.client._run(session.begin_body(self.msg, self.lines))
        chunk = await self.client._run(session.read_body())
        if chunk is None:
            raise StopAsyncIteration
        return chunk
