"""Pure POP3 client operations, run by any adapter (see ``protomata._core._ops``).

Each operation is a generator over a client :class:`Connection` that
yields :class:`Send`, :class:`Receive` and :class:`StartTLS` requests and
returns the result of one step of a session:

* session: :func:`greeting`, :func:`capabilities` (CAPA), :func:`start_tls`
  (STLS), :func:`utf8`, :func:`noop`, :func:`rset`, :func:`quit`;
* login: :func:`login` (USER/PASS or APOP), :func:`authenticate` (SASL
  PLAIN, LOGIN, CRAM-MD5, XOAUTH2) and :func:`sasl` for any other
  mechanism;
* the maildrop: :func:`stat`, :func:`list_messages`, :func:`message_size`,
  :func:`uidl`, :func:`message_uid`, :func:`delete`;
* messages, whole: :func:`retrieve`, :func:`top`; or streamed:
  :func:`retrieve_chunks` yields ``Call("chunk", data)`` per piece, and
  :func:`begin_body` + :func:`read_body` let a caller pull the pieces.

A ``-ERR`` reply, a reply the machine cannot parse and a connection that
is closed or reset are all :class:`POP3Error`.  Timeouts stay
:class:`TimeoutError`; TLS failures stay :class:`ssl.SSLError` (both are
raised by the adapter).

:class:`ClientSession` bundles these operations with the little state a
session client needs (the greeting, a body left half read), so that the
blocking and async ``POP3Client`` classes only run its operations.
"""

from __future__ import annotations

from collections.abc import Callable

from .._core import CLIENT, NEED_DATA, PAUSED, RemoteProtocolError
from .._core._ops import Call, Operation, Receive, Send, StartTLS
from .._core._sasl import cram_md5_response, plain_response, xoauth2_response
from ._apop import apop_digest
from ._connection import DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_LISTING_SIZE, Connection
from ._events import (
    Apop,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthContinuation,
    Capa,
    Capabilities,
    Command,
    ConnectionClosed,
    Dele,
    Err,
    Greeting,
    List,
    MultilineData,
    MultilineEnd,
    MultilineStart,
    Noop,
    Ok,
    Pass,
    POP3Event,
    Quit,
    Retr,
    Rset,
    ScanListing,
    Stat,
    Stls,
    Top,
    Uidl,
    UidListing,
    User,
    Utf8,
)
from ._state import CLOSED, ERROR

__all__ = [
    "SASL_MECHANISMS",
    "ClientSession",
    "POP3Error",
    "SASLResponder",
    "authenticate",
    "begin_body",
    "capabilities",
    "delete",
    "greeting",
    "list_messages",
    "login",
    "message_size",
    "message_uid",
    "noop",
    "quit",
    "read_body",
    "read_reply",
    "retrieve",
    "retrieve_chunks",
    "rset",
    "sasl",
    "start_tls",
    "stat",
    "top",
    "uidl",
    "utf8",
]

#: The SASL mechanisms :func:`authenticate` knows.
SASL_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")

#: Answers one SASL challenge (raw bytes) with raw bytes, or None to cancel.
SASLResponder = Callable[[bytes], "bytes | None"]


class POP3Error(Exception):
    """The server answered ``-ERR`` (``text`` is its text) or went away."""

    def __init__(self, message: str, text: str | None = None) -> None:
        super().__init__(message if text is None else f"{message}: -ERR {text}")
        self.text = text


# -- reading and writing ---------------------------------------------------------


def _send(conn: Connection, command: Command) -> Operation[None]:
    if conn.state is ERROR or conn.state is CLOSED:
        # The reason was raised before (a bad reply, a lost connection, QUIT).
        raise POP3Error(f"the session is over (state {conn.state.name}): start a new one")
    data = conn.send(command)
    try:
        yield Send(data)
    except ConnectionError as exc:
        raise POP3Error(f"connection lost: {exc}") from exc


def read_reply(conn: Connection) -> Operation[POP3Event]:
    """Receive until the next event.

    A closed or reset connection, or a reply the machine cannot parse
    (:class:`RemoteProtocolError`), is a :class:`POP3Error`.
    """
    while True:
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            raise POP3Error(f"bad reply from the server: {exc}") from exc
        if event is NEED_DATA:
            try:
                data = yield Receive()
            except ConnectionError as exc:
                raise POP3Error(f"connection lost: {exc}") from exc
            conn.receive_data(data)
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


def _command(conn: Connection, command: Command, what: str) -> Operation[Ok]:
    """Send a single-line command; its ``+OK`` reply (``-ERR``: POP3Error)."""
    yield from _send(conn, command)
    return _expect_ok((yield from read_reply(conn)), what)


# -- session ---------------------------------------------------------------------


def greeting(conn: Connection) -> Operation[Greeting]:
    """Read the server greeting (``-ERR`` there is a :class:`POP3Error`)."""
    event = yield from read_reply(conn)
    if isinstance(event, Err):
        raise POP3Error("the server refused the session", event.text)
    assert isinstance(event, Greeting)
    return event


def capabilities(conn: Connection) -> Operation[Capabilities]:
    """CAPA (RFC 2449): the parsed capability list.

    A server without CAPA answers ``-ERR``; that gives an empty
    :class:`Capabilities` (test with ``"TOP" in caps``, ``caps.arguments("SASL")``).
    """
    yield from _send(conn, Capa())
    event = yield from read_reply(conn)
    if isinstance(event, Err):
        return Capabilities((), event.text)
    if not isinstance(event, Capabilities):
        raise POP3Error(f"unexpected reply to CAPA: {event!r}")
    return event


def start_tls(conn: Connection, server_hostname: str | None = None) -> Operation[None]:
    """Send STLS and have the adapter start TLS (RFC 2595)."""
    yield from _command(conn, Stls(), "STLS")
    yield StartTLS(server_hostname=server_hostname)
    conn.tls_started()


def utf8(conn: Connection) -> Operation[None]:
    """UTF8 (RFC 6856): switch the session to UTF-8 (before logging in)."""
    yield from _command(conn, Utf8(), "UTF8")


def noop(conn: Connection) -> Operation[None]:
    """NOOP: keep the session alive."""
    yield from _command(conn, Noop(), "NOOP")


def rset(conn: Connection) -> Operation[None]:
    """RSET: unmark every message marked deleted in this session."""
    yield from _command(conn, Rset(), "RSET")


def quit(conn: Connection) -> Operation[None]:
    """QUIT: end the session; deletions are committed (``-ERR`` if they could not be)."""
    yield from _command(conn, Quit(), "QUIT")


# -- login -----------------------------------------------------------------------


def login(conn: Connection, user: str, password: str, *, apop: bool = False) -> Operation[None]:
    """Log in with USER/PASS, or with APOP when *apop* is true.

    APOP needs a timestamp in the greeting; without one it is a
    :class:`POP3Error`.
    """
    if apop:
        timestamp = conn.greeting_timestamp
        if timestamp is None:
            raise POP3Error("the server greeting has no APOP timestamp")
        yield from _command(conn, Apop(user, apop_digest(timestamp, password)), "APOP")
        return
    yield from _command(conn, User(user), "USER")
    yield from _command(conn, Pass(password), "PASS")


def sasl(
    conn: Connection,
    mechanism: str,
    respond: SASLResponder,
    initial_response: bytes | None = None,
) -> Operation[None]:
    """AUTH *mechanism* (RFC 5034), answering each challenge with *respond*.

    *initial_response* goes on the AUTH line (``None``: none).  When
    *respond* returns None the exchange is cancelled (``*``) and the
    server's ``-ERR`` raises :class:`POP3Error`, as does any ``-ERR``.
    """
    yield from _send(conn, Auth(mechanism, initial_response))
    while True:
        event = yield from read_reply(conn)
        if not isinstance(event, AuthChallenge):
            _expect_ok(event, f"AUTH {mechanism}")
            return
        answer = respond(event.data)
        yield from _send(conn, AuthCancel() if answer is None else AuthContinuation(answer))


def _answers(*answers: bytes) -> SASLResponder:
    """A responder giving *answers* in turn, then cancelling."""
    pending = list(answers)

    def respond(challenge: bytes) -> bytes | None:
        return pending.pop(0) if pending else None

    return respond


def authenticate(
    conn: Connection,
    mechanism: str,
    username: str,
    password: str,
    *,
    authzid: str = "",
    initial_response: bool = True,
) -> Operation[None]:
    """Log in with SASL: PLAIN, LOGIN, CRAM-MD5 or XOAUTH2 (:data:`SASL_MECHANISMS`).

    For XOAUTH2 *password* is the OAuth 2.0 access token.  With
    *initial_response* (the default) PLAIN and XOAUTH2 send their data on
    the AUTH line, saving a round trip (RFC 5034 section 4); *authzid* is
    PLAIN's authorization identity.  Refusal is a :class:`POP3Error`;
    an unknown mechanism a :class:`ValueError`.
    """
    mech = mechanism.upper()
    user = username.encode("utf-8")
    secret = password.encode("utf-8")
    if mech == "PLAIN":
        data = plain_response(username, password, authzid)
    elif mech == "XOAUTH2":
        data = xoauth2_response(username, password)
    elif mech == "LOGIN":
        yield from sasl(conn, mech, _answers(user, secret))
        return
    elif mech == "CRAM-MD5":
        answered = False

        def respond(challenge: bytes) -> bytes | None:
            nonlocal answered
            if answered:  # one challenge, one answer; a second one is cancelled
                return None
            answered = True
            return cram_md5_response(username, password, challenge)

        yield from sasl(conn, mech, respond)
        return
    else:
        raise ValueError(f"unsupported SASL mechanism {mechanism!r} (use sasl() for it)")
    if initial_response:
        # XOAUTH2 failures come as a challenge with a JSON error: answer it
        # with an empty response so the server sends its -ERR.
        yield from sasl(conn, mech, _answers(b"") if mech == "XOAUTH2" else _answers(), data)
    else:
        yield from sasl(conn, mech, _answers(data, b"") if mech == "XOAUTH2" else _answers(data))


# -- the maildrop ----------------------------------------------------------------


def _numbers(text: str, count: int, what: str) -> list[str]:
    parts = text.split()
    if len(parts) < count:
        raise POP3Error(f"malformed {what} reply {text!r}")
    return parts[:count]


def _int(text: str, what: str, reply: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise POP3Error(f"malformed {what} reply {reply!r}")
    return int(text)


def stat(conn: Connection) -> Operation[tuple[int, int]]:
    """STAT: ``(number of messages, total size in octets)``."""
    reply = yield from _command(conn, Stat(), "STAT")
    count, size = _numbers(reply.text, 2, "STAT")
    return _int(count, "STAT", reply.text), _int(size, "STAT", reply.text)


def list_messages(conn: Connection) -> Operation[list[tuple[int, int]]]:
    """LIST: ``(message number, size)`` of every message not deleted."""
    yield from _send(conn, List())
    event = yield from read_reply(conn)
    if isinstance(event, Err):
        raise POP3Error("LIST failed", event.text)
    if not isinstance(event, ScanListing):
        raise POP3Error(f"unexpected reply to LIST: {event!r}")
    return list(event.entries)


def message_size(conn: Connection, msg: int) -> Operation[int]:
    """``LIST msg``: the size of message *msg* in octets."""
    reply = yield from _command(conn, List(msg), f"LIST {msg}")
    number, size = _numbers(reply.text, 2, "LIST")
    if _int(number, "LIST", reply.text) != msg:
        raise POP3Error(f"LIST {msg} answered for another message: {reply.text!r}")
    return _int(size, "LIST", reply.text)


def uidl(conn: Connection) -> Operation[list[tuple[int, str]]]:
    """UIDL: ``(message number, unique id)`` of every message not deleted."""
    yield from _send(conn, Uidl())
    event = yield from read_reply(conn)
    if isinstance(event, Err):
        raise POP3Error("UIDL failed", event.text)
    if not isinstance(event, UidListing):
        raise POP3Error(f"unexpected reply to UIDL: {event!r}")
    return list(event.entries)


def message_uid(conn: Connection, msg: int) -> Operation[str]:
    """``UIDL msg``: the unique id of message *msg*."""
    reply = yield from _command(conn, Uidl(msg), f"UIDL {msg}")
    number, uid = _numbers(reply.text, 2, "UIDL")
    if _int(number, "UIDL", reply.text) != msg:
        raise POP3Error(f"UIDL {msg} answered for another message: {reply.text!r}")
    return uid


def delete(conn: Connection, msg: int) -> Operation[None]:
    """DELE: mark *msg* deleted (the server removes it at :func:`quit`)."""
    yield from _command(conn, Dele(msg), f"DELE {msg}")


# -- messages --------------------------------------------------------------------


def begin_body(conn: Connection, msg: int, lines: int | None = None) -> Operation[str]:
    """Send ``RETR msg`` (or ``TOP msg lines``) and read its ``+OK`` line.

    Returns the ``+OK`` text; read the body with :func:`read_body` until it
    returns None.  No other command may be sent in between.
    """
    command: Retr | Top = Retr(msg) if lines is None else Top(msg, lines)
    yield from _send(conn, command)
    event = yield from read_reply(conn)
    what = f"RETR {msg}" if lines is None else f"TOP {msg} {lines}"
    if isinstance(event, Err):
        raise POP3Error(f"{what} failed", event.text)
    if not isinstance(event, MultilineStart):
        raise POP3Error(f"unexpected reply to {what}: {event!r}")
    return event.text


def read_body(conn: Connection) -> Operation[bytes | None]:
    """The next piece of the body begun by :func:`begin_body`; None at its end.

    Pieces are dot-unstuffed with CRLF line ends kept and split anywhere;
    each is at most what one receive brought (so memory stays bounded).
    """
    event = yield from read_reply(conn)
    if isinstance(event, MultilineData):
        return event.data
    if isinstance(event, MultilineEnd):
        return None
    raise POP3Error(f"unexpected event in a message body: {event!r}")


def retrieve_chunks(conn: Connection, msg: int, lines: int | None = None) -> Operation[int]:
    """RETR (or TOP with *lines*) streamed: ``Call("chunk", data)`` per body piece.

    The adapter's call handler receives each piece as it arrives, so a
    message of any size is never held whole.  Returns the body size.
    """
    yield from begin_body(conn, msg, lines)
    size = 0
    while (chunk := (yield from read_body(conn))) is not None:
        size += len(chunk)
        yield Call("chunk", chunk)
    return size


def _whole_body(conn: Connection, msg: int, lines: int | None) -> Operation[bytes]:
    yield from begin_body(conn, msg, lines)
    pieces: list[bytes] = []
    while (chunk := (yield from read_body(conn))) is not None:
        pieces.append(chunk)
    return b"".join(pieces)


def retrieve(conn: Connection, msg: int) -> Operation[bytes]:
    """RETR: the whole message *msg*, dot-unstuffed, with its CRLF line ends."""
    return (yield from _whole_body(conn, msg, None))


def top(conn: Connection, msg: int, lines: int) -> Operation[bytes]:
    """TOP: the header of message *msg* and the first *lines* lines of its body."""
    return (yield from _whole_body(conn, msg, lines))


# -- the session behind every POP3Client ------------------------------------------------


class ClientSession:
    """A client session's protocol side, shared by the blocking and async clients.

    It owns the client :class:`Connection` and hands out the operations
    above, each bound to it.  The one piece of state beyond the machine: a
    message body whose reading was abandoned half way (a loop broken out
    of) is read to its end, and dropped, before the next command.

    :param max_line_length: the longest reply or message line accepted,
        CRLF included (default 64 KiB; POP3 has no fixed limit).
    :param max_listing_size: the largest LIST/UIDL/CAPA reply accepted.
    """

    def __init__(
        self,
        *,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        max_listing_size: int = DEFAULT_MAX_LISTING_SIZE,
    ) -> None:
        self.conn = Connection(
            CLIENT, max_line_length=max_line_length, max_listing_size=max_listing_size
        )
        #: The server greeting's text (set by :meth:`open`).
        self.greeting = ""
        self._body_open = False

    @property
    def usable(self) -> bool:
        """Whether commands can still be sent (no failure, no QUIT, no EOF so far)."""
        return self.conn.state is not ERROR and self.conn.state is not CLOSED

    def _settle(self) -> Operation[None]:
        while self._body_open:
            yield from self.read_body()

    def open(self, stls: bool = False, server_hostname: str | None = None) -> Operation[str]:
        """Read the greeting, then upgrade with STLS if *stls*; the greeting text."""
        self.greeting = (yield from greeting(self.conn)).text
        if stls:
            yield from start_tls(self.conn, server_hostname)
        return self.greeting

    def capabilities(self) -> Operation[Capabilities]:
        """See :func:`capabilities`."""
        yield from self._settle()
        return (yield from capabilities(self.conn))

    def utf8(self) -> Operation[None]:
        """See :func:`utf8`."""
        yield from self._settle()
        yield from utf8(self.conn)

    def login(self, user: str, password: str, apop: bool = False) -> Operation[None]:
        """See :func:`login`."""
        yield from self._settle()
        yield from login(self.conn, user, password, apop=apop)

    def authenticate(
        self,
        mechanism: str,
        username: str,
        password: str,
        *,
        authzid: str = "",
        initial_response: bool = True,
    ) -> Operation[None]:
        """See :func:`authenticate`."""
        yield from self._settle()
        yield from authenticate(
            self.conn,
            mechanism,
            username,
            password,
            authzid=authzid,
            initial_response=initial_response,
        )

    def stat(self) -> Operation[tuple[int, int]]:
        """See :func:`stat`."""
        yield from self._settle()
        return (yield from stat(self.conn))

    def list_messages(self) -> Operation[list[tuple[int, int]]]:
        """See :func:`list_messages`."""
        yield from self._settle()
        return (yield from list_messages(self.conn))

    def message_size(self, msg: int) -> Operation[int]:
        """See :func:`message_size`."""
        yield from self._settle()
        return (yield from message_size(self.conn, msg))

    def uidl(self) -> Operation[list[tuple[int, str]]]:
        """See :func:`uidl`."""
        yield from self._settle()
        return (yield from uidl(self.conn))

    def message_uid(self, msg: int) -> Operation[str]:
        """See :func:`message_uid`."""
        yield from self._settle()
        return (yield from message_uid(self.conn, msg))

    def retrieve(self, msg: int) -> Operation[bytes]:
        """See :func:`retrieve`."""
        yield from self._settle()
        return (yield from retrieve(self.conn, msg))

    def top(self, msg: int, lines: int) -> Operation[bytes]:
        """See :func:`top`."""
        yield from self._settle()
        return (yield from top(self.conn, msg, lines))

    def retrieve_chunks(self, msg: int, lines: int | None = None) -> Operation[int]:
        """See :func:`retrieve_chunks`."""
        yield from self.begin_body(msg, lines)
        size = 0
        while (chunk := (yield from self.read_body())) is not None:
            size += len(chunk)
            yield Call("chunk", chunk)
        return size

    def begin_body(self, msg: int, lines: int | None = None) -> Operation[str]:
        """See :func:`begin_body`; then call :meth:`read_body` until it returns None."""
        yield from self._settle()
        text = yield from begin_body(self.conn, msg, lines)
        self._body_open = True
        return text

    def read_body(self) -> Operation[bytes | None]:
        """See :func:`read_body` (None once the body is over, and after)."""
        if not self._body_open:
            return None
        try:
            chunk = yield from read_body(self.conn)
        except POP3Error:
            self._body_open = False  # the session is over: nothing left to drain
            raise
        if chunk is None:
            self._body_open = False
        return chunk

    def delete(self, msg: int) -> Operation[None]:
        """See :func:`delete`."""
        yield from self._settle()
        yield from delete(self.conn, msg)

    def noop(self) -> Operation[None]:
        """See :func:`noop`."""
        yield from self._settle()
        yield from noop(self.conn)

    def rset(self) -> Operation[None]:
        """See :func:`rset`."""
        yield from self._settle()
        yield from rset(self.conn)

    def quit(self) -> Operation[None]:
        """See :func:`quit`."""
        yield from self._settle()
        yield from quit(self.conn)
