"""I/O requests: how pure protocol operations ask an adapter to do I/O.

Theory of operation
-------------------
A high-level operation (send a request and read the response head, serve
one HTTP connection, deliver a mail ...) is written once, as a generator
that *yields* the I/O it needs and receives the result::

    def fetch_head(conn):
        yield Send(conn.send(request))
        while (event := conn.next_event()) is NEED_DATA:
            conn.receive_data((yield Receive()))
        return event

Each adapter (``protomata.sync``, ``protomata.asyncio``, ``protomata.trio``)
has one small *runner* that executes such generators over its own kind of
stream.  The protocol logic therefore exists once, whatever the adapter.

Failures of the transport -- a timeout, a reset connection -- are thrown
into the generator at the ``yield`` that asked for the I/O, so protocol
code can react (answer 408, say) or let them propagate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

__all__ = [
    "Call",
    "Close",
    "FileRange",
    "IORequest",
    "Operation",
    "Receive",
    "Send",
    "ServerShutdown",
    "StartTLS",
    "TimeoutKind",
    "drive_calls",
    "drive_calls_async",
]

T = TypeVar("T")


class IORequest:
    """Base class of everything an operation may yield."""

    __slots__ = ()

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        names: tuple[str, ...] = self.__slots__
        return all(getattr(self, n) == getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]


class ServerShutdown(Exception):
    """Thrown into a server operation waiting in an idle :class:`Receive`
    when its server shuts down gracefully.

    The operation may say goodbye in the protocol's own way (SMTP's
    ``421 4.3.2``, say) and return; if it lets the exception escape, the
    adapter just closes the connection.  Adapters throw it only at a
    ``Receive`` with ``timeout=TimeoutKind.IDLE``: work in flight finishes first.
    """


class TimeoutKind:
    """Names of the timeouts an adapter applies to a :class:`Receive`.

    Operations say *what* they are waiting for; the adapter maps that to the
    durations its user configured.
    """

    #: waiting for the next message on an idle keep-alive connection
    IDLE = "idle"
    #: reading a message head (a slow-loris peer is cut off here)
    HEAD = "head"
    #: reading a message body or a reply
    READ = "read"


class Send(IORequest):
    """Write all of *data* (bytes, or a list of byte strings) to the peer."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | list[bytes]) -> None:
        self.data = data


class Receive(IORequest):
    """Read some bytes (at most *max_bytes*); the result is ``b""`` at EOF."""

    __slots__ = ("max_bytes", "timeout")

    def __init__(self, max_bytes: int = 65536, timeout: str = TimeoutKind.READ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout


class StartTLS(IORequest):
    """Upgrade the connection to TLS (client side unless *server_side*).

    The adapter performs the handshake with the TLS settings it was given;
    *server_hostname* overrides the name checked against the certificate.
    """

    __slots__ = ("server_hostname", "server_side")

    def __init__(self, server_hostname: str | None = None, server_side: bool = False) -> None:
        self.server_hostname = server_hostname
        self.server_side = server_side


class Close(IORequest):
    """Close the connection (after flushing what was sent)."""

    __slots__ = ()


class Call(IORequest):
    """Hand a value to the adapter's application callback; its result comes back.

    Servers use this to run the user's handler (which may be a plain or an
    async function) between the protocol steps that surround it.
    """

    __slots__ = ("args", "name")

    def __init__(self, name: str, *args: Any) -> None:
        self.name = name
        self.args = args


class FileRange:
    """*count* bytes of an already open *file* from *offset*, as a body piece.

    Put in a :class:`~protomata.http.Data` event, the machine frames and
    counts it by ``len()`` and passes the object through uncopied (see
    ``Connection.send_with_data_passthrough``), so the adapter that writes
    the resulting pieces can send it with ``sendfile`` straight from the
    file.  *file* is opaque here (the adapter opened it).
    """

    __slots__ = ("count", "file", "offset")

    def __init__(self, file: Any, offset: int, count: int) -> None:
        self.file = file
        self.offset = offset
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"FileRange(offset={self.offset}, count={self.count})"


#: The type of a pure operation returning ``T``.
Operation = Generator[IORequest, Any, T]


def drive_calls(op: Operation[T], on_call: Callable[[Call], Any]) -> T:
    """Run an operation that only yields :class:`Call` requests (no I/O)."""
    value: Any = None
    while True:
        try:
            request = op.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if type(request) is not Call:
            raise TypeError(f"drive_calls cannot carry out {request!r}")
        value = on_call(request)


async def drive_calls_async(op: Operation[T], on_call: Callable[[Call], Awaitable[Any]]) -> T:
    """:func:`drive_calls` for an asynchronous *on_call*."""
    value: Any = None
    while True:
        try:
            request = op.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if type(request) is not Call:
            raise TypeError(f"drive_calls_async cannot carry out {request!r}")
        value = await on_call(request)
