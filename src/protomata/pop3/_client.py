"""Pure POP3 client operations, run by any adapter (see ``protomata._core._ops``).

Each operation is a generator over a client :class:`Connection` that
yields :class:`Send`, :class:`Receive` and :class:`StartTLS` requests and
returns the result of one step of a session: :func:`greeting`,
:func:`start_tls` (STLS), :func:`login` (USER/PASS or APOP), :func:`stat`,
:func:`list_messages`, :func:`uidl`, :func:`retrieve`, :func:`delete` and
:func:`quit`.  A ``-ERR`` reply raises :class:`POP3Error`.
"""

from __future__ import annotations

from .._core import NEED_DATA, PAUSED, RemoteProtocolError
from .._core._ops import Operation, Receive, Send, StartTLS
from ._apop import apop_digest
from ._connection import Connection
from ._events import (
    Apop,
    ConnectionClosed,
    Dele,
    Err,
    Greeting,
    List,
    MultilineData,
    MultilineEnd,
    MultilineStart,
    Ok,
    Pass,
    POP3Event,
    Quit,
    Retr,
    ScanListing,
    Stat,
    Stls,
    Uidl,
    UidListing,
    User,
)

__all__ = [
    "POP3Error",
    "delete",
    "greeting",
    "list_messages",
    "login",
    "quit",
    "read_reply",
    "retrieve",
    "start_tls",
    "stat",
    "uidl",
]


class POP3Error(Exception):
    """The server answered ``-ERR`` (``text`` is its text) or went away."""

    def __init__(self, message: str, text: str | None = None) -> None:
        super().__init__(message if text is None else f"{message}: -ERR {text}")
        self.text = text


def read_reply(conn: Connection) -> Operation[POP3Event]:
    """Receive until the next event.

    A closed connection, or a reply the machine cannot parse
    (:class:`RemoteProtocolError`), is a :class:`POP3Error`.
    """
    while True:
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            raise POP3Error(f"bad reply from the server: {exc}") from exc
        if event is NEED_DATA:
            conn.receive_data((yield Receive()))
            continue
        if event is PAUSED or isinstance(event, ConnectionClosed):
            raise POP3Error("connection closed by the server")
        assert isinstance(event, POP3Event)
        return event


def _expect_ok(event: POP3Event, what: str) -> Ok:
    if isinstance(event, Err):
        raise POP3Error(f"{what} failed", event.text)
    if not isinstance(event, Ok):
        raise POP3Error(f"unexpected reply to {what}: {event!r}")
    return event


def greeting(conn: Connection) -> Operation[Greeting]:
    """Read the server greeting (``-ERR`` there is a :class:`POP3Error`)."""
    event = yield from read_reply(conn)
    if isinstance(event, Err):
        raise POP3Error("the server refused the session", event.text)
    assert isinstance(event, Greeting)
    return event


def start_tls(conn: Connection, server_hostname: str | None = None) -> Operation[None]:
    """Send STLS and have the adapter start TLS (RFC 2595)."""
    yield Send(conn.send(Stls()))
    _expect_ok((yield from read_reply(conn)), "STLS")
    yield StartTLS(server_hostname=server_hostname)
    conn.tls_started()


def login(conn: Connection, user: str, password: str, *, apop: bool = False) -> Operation[None]:
    """Log in with USER/PASS, or with APOP when *apop* is true.

    APOP needs a timestamp in the greeting; without one it is a
    :class:`POP3Error`.
    """
    if apop:
        timestamp = conn.greeting_timestamp
        if timestamp is None:
            raise POP3Error("the server greeting has no APOP timestamp")
        yield Send(conn.send(Apop(user, apop_digest(timestamp, password))))
        _expect_ok((yield from read_reply(conn)), "APOP")
        return
    yield Send(conn.send(User(user)))
    _expect_ok((yield from read_reply(conn)), "USER")
    yield Send(conn.send(Pass(password)))
    _expect_ok((yield from read_reply(conn)), "PASS")


def stat(conn: Connection) -> Operation[tuple[int, int]]:
    """STAT: ``(number of messages, total size in octets)``."""
    yield Send(conn.send(Stat()))
    reply = _expect_ok((yield from read_reply(conn)), "STAT")
    parts = reply.text.split()
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise POP3Error(f"malformed STAT reply {reply.text!r}") from None


def list_messages(conn: Connection) -> Operation[list[tuple[int, int]]]:
    """LIST: ``(message number, size)`` of every message not deleted."""
    yield Send(conn.send(List()))
    event = yield from read_reply(conn)
    if isinstance(event, Err):
        raise POP3Error("LIST failed", event.text)
    assert isinstance(event, ScanListing)
    return list(event.entries)


def uidl(conn: Connection) -> Operation[list[tuple[int, str]]]:
    """UIDL: ``(message number, unique id)`` of every message not deleted."""
    yield Send(conn.send(Uidl()))
    event = yield from read_reply(conn)
    if isinstance(event, Err):
        raise POP3Error("UIDL failed", event.text)
    assert isinstance(event, UidListing)
    return list(event.entries)


def retrieve(conn: Connection, msg: int) -> Operation[bytes]:
    """RETR: the whole message *msg*, dot-unstuffed, with its CRLF line ends."""
    yield Send(conn.send(Retr(msg)))
    event = yield from read_reply(conn)
    if isinstance(event, Err):
        raise POP3Error(f"RETR {msg} failed", event.text)
    assert isinstance(event, MultilineStart)
    pieces: list[bytes] = []
    while True:
        event = yield from read_reply(conn)
        if isinstance(event, MultilineEnd):
            return b"".join(pieces)
        assert isinstance(event, MultilineData)
        pieces.append(event.data)


def delete(conn: Connection, msg: int) -> Operation[None]:
    """DELE: mark *msg* deleted (the server removes it at :func:`quit`)."""
    yield Send(conn.send(Dele(msg)))
    _expect_ok((yield from read_reply(conn)), f"DELE {msg}")


def quit(conn: Connection) -> Operation[None]:
    """QUIT: end the session; deletions are committed (``-ERR`` if they could not be)."""
    yield Send(conn.send(Quit()))
    _expect_ok((yield from read_reply(conn)), "QUIT")
