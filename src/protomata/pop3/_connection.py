"""The POP3 connection: one state machine for either end of a session.

Theory of operation
-------------------
POP3 is strictly one command, one reply.  Both roles track the same
session state (:class:`State`) and the one command whose reply is owed
(``pending_command``); the state changes when that reply is complete,
sent or received, by the same rules (:meth:`Connection._finish`).

* **Client.**  ``send(command)`` checks the command is allowed now (state,
  USER before PASS, nothing else outstanding) and serializes it.
  ``next_event()`` parses the reply the pending command calls for: a
  single line, a streamed body (RETR, TOP), a parsed listing (LIST, UIDL,
  CAPA) or a SASL challenge.
* **Server.**  ``next_event()`` reads command lines.  A command that is
  unknown, malformed or not allowed in the current state never reaches the
  user: the machine queues ``-ERR`` for it (``data_to_send()``, and
  ``send()`` puts it first) and reads on.  A valid command is returned and
  ``next_event()`` answers ``PAUSED`` until the user has sent its reply
  with ``send()``, which checks the reply fits the command.
* **STLS.**  Once ``+OK`` to STLS is sent or received, every byte already
  buffered is discarded (STARTTLS injection, RFC 2595 / CVE-2011-0411
  style) and the machine is ``PAUSED`` until the adapter has done the
  handshake and calls :meth:`Connection.tls_started`, which discards the
  buffer again.

Limits (all configurable): command lines 512 octets including CRLF (RFC
2449 section 4 allows 255; we give older clients room), AUTH lines 16 KiB
(SASL tokens such as Kerberos tickets exceed 255 octets, RFC 5034 section
4 lifts the limit), reply lines and body lines 64 KiB (RFC 2449 says 512
and RFC 5322 says 1000 for message lines, but real mail has longer lines
and poplib's 2048 cap is a known complaint), LIST/UIDL/CAPA listings 16 MiB.
"""

from __future__ import annotations

from typing import Any

from .._core import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    LocalProtocolError,
    ReceiveBuffer,
    RemoteProtocolError,
    Role,
    SentinelType,
)
from .._core._events import _make_event
from .._core._textproto import END_OF_BLOCK, DotStuffer, DotUnstuffer, take_line
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
    Reply,
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
from ._state import AUTHORIZATION, CLOSED, ERROR, GREETING, TRANSACTION, UPDATE, State
from ._wire import (
    CommandSyntaxError,
    ListingSyntaxError,
    b64decode,
    decode,
    parse_auth_response,
    parse_command,
    parse_listing,
    write_challenge,
    write_command,
    write_listing,
    write_status,
)

__all__ = [
    "DEFAULT_MAX_AUTH_LINE_LENGTH",
    "DEFAULT_MAX_COMMAND_LENGTH",
    "DEFAULT_MAX_LINE_LENGTH",
    "DEFAULT_MAX_LISTING_SIZE",
    "Connection",
]

#: Longest command line, CRLF included (RFC 2449 says 255; see the module notes).
DEFAULT_MAX_COMMAND_LENGTH = 512
#: Longest AUTH command or SASL response line, CRLF included.
DEFAULT_MAX_AUTH_LINE_LENGTH = 16 * 1024
#: Longest reply line or line of a multi-line body, CRLF included.
DEFAULT_MAX_LINE_LENGTH = 64 * 1024
#: Largest LIST, UIDL or CAPA listing (they are buffered whole).
DEFAULT_MAX_LISTING_SIZE = 16 * 1024 * 1024
# Auto-answered -ERR bytes we queue before pausing for data_to_send().
_MAX_QUEUED_OUTPUT = 4096

_AUTH_STATES = frozenset({AUTHORIZATION})
_TRANSACTION_STATES = frozenset({TRANSACTION})
_BOTH_STATES = frozenset({AUTHORIZATION, TRANSACTION})
#: Where each command is allowed (RFC 1939, 2449, 2595, 5034, 6856).
ALLOWED_STATES: dict[type[Command], frozenset[State]] = {
    User: _AUTH_STATES,
    Pass: _AUTH_STATES,
    Apop: _AUTH_STATES,
    Auth: _AUTH_STATES,
    Stls: _AUTH_STATES,
    Utf8: _AUTH_STATES,
    Stat: _TRANSACTION_STATES,
    List: _TRANSACTION_STATES,
    Retr: _TRANSACTION_STATES,
    Dele: _TRANSACTION_STATES,
    Noop: _TRANSACTION_STATES,
    Rset: _TRANSACTION_STATES,
    Top: _TRANSACTION_STATES,
    Uidl: _TRANSACTION_STATES,
    Capa: _BOTH_STATES,
    Quit: _BOTH_STATES,
}
#: Commands whose successful reply is multi-line, and which event carries it.
_LISTING_REPLY: dict[type[Command], type] = {
    List: ScanListing,
    Uidl: UidListing,
    Capa: Capabilities,
}
_LOGIN = (Pass, Apop, Auth)
_CONNECTION_CLOSED = _make_event(ConnectionClosed)
_MULTILINE_END = _make_event(MultilineEnd)


def _multiline_kind(command: Command) -> type | None:
    """MultilineStart for RETR/TOP, the listing type for LIST/UIDL/CAPA, else None."""
    ctype = type(command)
    if ctype is Retr or ctype is Top:
        return MultilineStart
    if ctype is Capa or getattr(command, "msg", 0) is None:
        return _LISTING_REPLY[ctype]
    return None


class Connection:
    """One POP3 session seen from one side (``CLIENT`` or ``SERVER``).

    :param our_role: which side we play.
    :param max_command_length: longest command line the server accepts
        (CRLF included); AUTH commands and SASL responses get
        *max_auth_line_length* instead.
    :param max_line_length: longest reply line or body line the client
        accepts (CRLF included).
    :param max_listing_size: largest LIST/UIDL/CAPA listing the client buffers.

    Too long lines raise :class:`RemoteProtocolError`, as does anything else
    malformed the peer sends to a client; afterwards ``state`` is ERROR.
    """

    def __init__(
        self,
        our_role: Role,
        *,
        max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH,
        max_auth_line_length: int = DEFAULT_MAX_AUTH_LINE_LENGTH,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        max_listing_size: int = DEFAULT_MAX_LISTING_SIZE,
    ) -> None:
        if our_role is not CLIENT and our_role is not SERVER:
            raise ValueError(f"expected CLIENT or SERVER, not {our_role!r}")
        self.our_role: Role = our_role
        self.their_role: Role = our_role.peer
        self.max_command_length = max_command_length
        self.max_auth_line_length = max_auth_line_length
        self.max_line_length = max_line_length
        self.max_listing_size = max_listing_size
        self._state: State = GREETING
        self._buf = ReceiveBuffer()
        self._eof = False
        self._outgoing: list[bytes] = []
        self._queued = 0
        #: The command whose reply is owed, if any.
        self.pending_command: Command | None = None
        # A SASL exchange is waiting for the client's response line.
        self._awaiting_sasl_response = False
        # The body or listing being sent or received (after its +OK line).
        self._stuffer: DotStuffer | None = None
        self._unstuffer: DotUnstuffer | None = None
        self._listing: tuple[type, str, list[bytes]] | None = None
        self._user_accepted = False
        #: The APOP timestamp of the greeting (``<...>``), once greeted.
        self.greeting_timestamp: str | None = None
        #: Whether ``+OK`` to STLS was exchanged and the handshake is awaited.
        self.awaiting_tls = False
        #: Whether :meth:`tls_started` was called.
        self.tls_active = False
        #: Whether the UTF8 command succeeded (RFC 6856).
        self.utf8 = False

    # -- public state ------------------------------------------------------

    @property
    def state(self) -> State:
        """The session state: GREETING, AUTHORIZATION, TRANSACTION, UPDATE, CLOSED or ERROR."""
        return self._state

    def is_allowed(self, command: Command) -> bool:
        """Whether *command* may be sent (client) or accepted (server) now."""
        ctype = type(command)
        if ctype is AuthContinuation or ctype is AuthCancel:
            return self._awaiting_sasl_response
        if self._awaiting_sasl_response or self.awaiting_tls:
            return False
        if self._state not in ALLOWED_STATES.get(ctype, ()):
            return False
        if ctype is Pass:
            return self._user_accepted
        if ctype is Stls:
            return not self.tls_active
        return True

    def tls_started(self) -> None:
        """Tell the machine the TLS handshake after STLS has completed.

        Bytes received before this call (they came in plaintext, after the
        STLS exchange) are discarded.  The session stays in AUTHORIZATION;
        a client should ask for CAPA again (RFC 2595 section 4).
        """
        if not self.awaiting_tls:
            raise LocalProtocolError("tls_started() without a successful STLS")
        self._buf.skip(len(self._buf))
        self.awaiting_tls = False
        self.tls_active = True
        self._user_accepted = False

    # -- receiving -----------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed (EOF)."""
        if data:
            if self._eof:
                raise RuntimeError("received close, then received more data?")
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> POP3Event | SentinelType:
        """Parse and return the next event from the peer, or a sentinel.

        ``NEED_DATA``: feed more bytes.  ``PAUSED``: the peer must wait for us
        (a server owes a reply; the STLS handshake is due; a server has
        queued enough automatic ``-ERR`` replies that ``data_to_send()``
        should be called).  Raises :class:`RemoteProtocolError` when the
        peer broke the protocol; the state is then ERROR.
        """
        if self._state is ERROR:
            raise RemoteProtocolError("can't receive data when the peer state is ERROR")
        try:
            if self.our_role is CLIENT:
                return self._next_reply()
            return self._next_command()
        except (RemoteProtocolError, LocalProtocolError) as exc:
            self._state = ERROR
            if isinstance(exc, LocalProtocolError):
                exc._reraise_as_remote_protocol_error()
            raise

    def _at_eof(self) -> POP3Event | SentinelType:
        """What to return when no complete line is buffered."""
        if not self._eof:
            return NEED_DATA
        if self._buf or (self.pending_command is not None and self.our_role is CLIENT):
            raise RemoteProtocolError("peer closed the connection in the middle of a reply")
        self._state = CLOSED
        return _CONNECTION_CLOSED

    def _line(self, limit: int, what: str) -> bytes | None:
        return take_line(self._buf, limit, hint=400, what=what)

    # -- client side ---------------------------------------------------------

    def _next_reply(self) -> POP3Event | SentinelType:
        if self.awaiting_tls:
            return PAUSED
        if self._unstuffer is not None:
            return self._read_block()
        if self._state is CLOSED:
            self._buf.skip(len(self._buf))
            return _CONNECTION_CLOSED if self._eof else NEED_DATA
        pending = self.pending_command
        if pending is None and self._state is not GREETING:
            if self._buf:
                raise RemoteProtocolError("the server sent data without a command")
            return self._at_eof()
        if self._awaiting_sasl_response:
            # We owe the server an AuthContinuation; it has nothing to say.
            if self._buf:
                raise RemoteProtocolError("the server sent data during a SASL exchange")
            return self._at_eof() if self._eof else PAUSED
        line = self._line(self.max_line_length, "reply line")
        if line is None:
            return self._at_eof()
        if b"\n" in line or b"\r" in line or b"\x00" in line:
            raise RemoteProtocolError("stray CR, LF or NUL in a reply line")
        if line.startswith(b"+OK") and (len(line) == 3 or line[3:4] == b" "):
            ok = True
            text = decode(line[4:])
        elif line.startswith(b"-ERR") and (len(line) == 4 or line[4:5] == b" "):
            ok = False
            text = decode(line[5:])
        elif (line == b"+" or line.startswith(b"+ ")) and type(pending) in (
            Auth,
            AuthContinuation,
            AuthCancel,
        ):
            data = b64decode(line[2:].strip(b" "))
            if data is None:
                raise RemoteProtocolError("invalid base64 in a SASL challenge")
            self._awaiting_sasl_response = True
            return _make_event(AuthChallenge, data)
        else:
            raise RemoteProtocolError(f"malformed reply line {line[:80]!r}")
        if self._state is GREETING:
            if ok:
                event = _make_event(Greeting, text)
                self._state = AUTHORIZATION
                self.greeting_timestamp = event.timestamp
                return event
            self._state = CLOSED
            return _make_event(Err, text)
        assert pending is not None
        kind = _multiline_kind(pending) if ok else None
        if kind is MultilineStart:
            self._unstuffer = DotUnstuffer(self.max_line_length, None, line_hint=400)
            return _make_event(MultilineStart, text)
        if kind is not None:
            self._unstuffer = DotUnstuffer(
                self.max_line_length, self.max_listing_size, line_hint=400, size_hint=400
            )
            self._listing = (kind, text, [])
            return self._read_block()
        self._finish(pending, ok)
        return _make_event(Ok, text) if ok else _make_event(Err, text)

    def _read_block(self) -> POP3Event | SentinelType:
        unstuffer = self._unstuffer
        assert unstuffer is not None
        while True:
            chunk = unstuffer.read(self._buf)
            if chunk is None:
                return self._at_eof()
            listing = self._listing
            if chunk is END_OF_BLOCK:
                self._unstuffer = None
                pending = self.pending_command
                assert pending is not None
                self._finish(pending, True)
                if listing is None:
                    return _MULTILINE_END
                self._listing = None
                kind, text, pieces = listing
                try:
                    return parse_listing(kind, text, b"".join(pieces))
                except ListingSyntaxError as exc:
                    raise RemoteProtocolError(str(exc)) from None
            assert isinstance(chunk, bytes)
            if listing is None:
                return _make_event(MultilineData, chunk)
            listing[2].append(chunk)

    # -- server side -----------------------------------------------------------

    def _reject(self, reason: str) -> None:
        reply = write_status(False, reason)
        self._outgoing.append(reply)
        self._queued += len(reply)

    def _next_command(self) -> POP3Event | SentinelType:
        buf = self._buf
        while True:
            if self._state is CLOSED:
                buf.skip(len(buf))
                return _CONNECTION_CLOSED if self._eof else NEED_DATA
            if self.pending_command is not None or self._state is GREETING or self.awaiting_tls:
                return PAUSED
            if self._queued >= _MAX_QUEUED_OUTPUT:
                return PAUSED
            if self._awaiting_sasl_response:
                line = self._line(self.max_auth_line_length, "SASL response line")
                if line is None:
                    return self._at_eof()
                event = parse_auth_response(line)
                self._awaiting_sasl_response = False
                if event is None:
                    # RFC 5034 section 4: a bad response fails the AUTH command.
                    self._reject("invalid base64 in the SASL response")
                    self._auth_command = None
                    self.pending_command = None
                    continue
                self.pending_command = self._auth_command
                return event
            limit = self.max_command_length
            if buf.peek(5).upper() == b"AUTH ":
                limit = self.max_auth_line_length
            line = self._line(limit, "command line")
            if line is None:
                return self._at_eof()
            try:
                command = parse_command(line)
            except CommandSyntaxError as exc:
                self._user_accepted = False
                self._reject(str(exc))
                continue
            if not self.is_allowed(command):
                self._user_accepted = False
                self._reject(f"{command.keyword} is not allowed now")
                continue
            self.pending_command = command
            if type(command) is Quit and self._state is TRANSACTION:
                # RFC 1939 section 6: QUIT in TRANSACTION enters UPDATE until answered.
                self._state = UPDATE
            return command

    _auth_command: Command | None = None

    def data_to_send(self) -> bytes:
        """Take the replies the server machine queued on its own (``-ERR``)."""
        out = b"".join(self._outgoing)
        self._outgoing.clear()
        self._queued = 0
        return out

    # -- sending ---------------------------------------------------------------

    def send(self, event: Command | Reply) -> bytes:
        """Serialize *event* (a command for a client, a reply for a server).

        Raises :class:`LocalProtocolError` if the event is not allowed now;
        then nothing is emitted and nothing changes.
        """
        if self.our_role is CLIENT:
            return self._send_command(event)
        data = self._send_reply(event)
        if self._outgoing:
            data = self.data_to_send() + data
        return data

    def _send_command(self, event: Any) -> bytes:
        if not isinstance(event, Command):
            raise LocalProtocolError(f"a client sends commands, not {type(event).__name__}")
        if self._state is ERROR:
            raise LocalProtocolError("can't send when the state is ERROR")
        if self._state is GREETING or self._state is CLOSED:
            raise LocalProtocolError(f"can't send commands in state {self._state}")
        ctype = type(event)
        if ctype is AuthContinuation or ctype is AuthCancel:
            if not self._awaiting_sasl_response:
                raise LocalProtocolError("no SASL challenge to answer")
            self._awaiting_sasl_response = False
            self.pending_command = event
            return write_command(event)
        if self.pending_command is not None:
            raise LocalProtocolError(
                f"{self.pending_command.keyword or 'AUTH'} is still waiting for its reply"
            )
        if not self.is_allowed(event):
            raise LocalProtocolError(f"{event.keyword} is not allowed in state {self._state}")
        self.pending_command = event
        return write_command(event)

    def _send_reply(self, event: Any) -> bytes:
        etype = type(event)
        state = self._state
        if state is ERROR:
            # One last -ERR may tell the peer why we are closing.
            if etype is Err:
                return write_status(False, event.text)
            raise LocalProtocolError("can't send when the state is ERROR")
        if state is GREETING:
            if etype is Greeting:
                self._state = AUTHORIZATION
                self.greeting_timestamp = event.timestamp
                return write_status(True, event.text)
            if etype is Err:
                self._state = CLOSED
                return write_status(False, event.text)
            raise LocalProtocolError("the server must greet first")
        stuffer = self._stuffer
        if stuffer is not None:
            if etype is MultilineData:
                return stuffer.feed(event.data)
            if etype is MultilineEnd:
                self._stuffer = None
                pending = self.pending_command
                assert pending is not None
                self._finish(pending, True)
                return stuffer.finish()
            raise LocalProtocolError(f"can't send {etype.__name__} inside a multi-line reply")
        pending = self.pending_command
        if pending is None or self._awaiting_sasl_response:
            raise LocalProtocolError(f"no command is waiting for a reply ({etype.__name__})")
        if etype is Err:
            self._finish(pending, False)
            return write_status(False, event.text)
        if etype is AuthChallenge:
            if type(pending) is not Auth:
                raise LocalProtocolError("AuthChallenge only answers AUTH")
            self._auth_command = pending
            self.pending_command = None
            self._awaiting_sasl_response = True
            return write_challenge(event)
        kind = _multiline_kind(pending)
        if etype is (Ok if kind is None else kind):
            if etype is MultilineStart:
                self._stuffer = DotStuffer()
                return write_status(True, event.text)
            self._finish(pending, True)
            if etype is Ok:
                return write_status(True, event.text)
            return write_listing(event)
        expected = "Ok" if kind is None else kind.__name__
        raise LocalProtocolError(
            f"{pending.keyword or 'AUTH'} is answered with Err or {expected}, not {etype.__name__}"
        )

    # -- the shared transitions -----------------------------------------------

    def _finish(self, command: Command, ok: bool) -> None:
        """Apply the complete reply to *command* (sent or received)."""
        self.pending_command = None
        ctype = type(command)
        if ctype is AuthContinuation or ctype is AuthCancel:
            ctype = Auth
        self._auth_command = None
        self._awaiting_sasl_response = False
        self._user_accepted = ctype is User and ok
        if ctype is Quit:
            self._state = CLOSED
        elif not ok:
            return
        elif ctype in _LOGIN:
            self._state = TRANSACTION
        elif ctype is Stls:
            # STARTTLS injection defence: nothing sent in plaintext after
            # STLS may be read as if it had come over TLS.
            self.awaiting_tls = True
            self._buf.skip(len(self._buf))
        elif ctype is Utf8:
            self.utf8 = True
