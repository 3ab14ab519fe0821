"""The SMTP (and LMTP) connection, client or server side (RFC 5321, RFC 2033).

Theory of operation
-------------------
Both roles keep the same record of the session: a :class:`State` and a
queue of commands that still owe a reply.  The state moves only when a
reply is matched to its command -- when the server *sends* it or the
client *receives* it -- through one table, :func:`_after_reply`; so both
ends of an in-memory pair always agree.

The server parses lazily and one command at a time: after handing out a
command it returns ``PAUSED`` until the user has sent that command's reply.
Pipelined commands therefore wait in the buffer and are judged against the
state their predecessors' replies produced, in order (RFC 2920).  Malformed
or out-of-sequence commands come out as :class:`BadCommand` events carrying
the 500/501/503 reply to send; only violations that break the framing
(an over-long line, bad bytes in a body) raise :class:`RemoteProtocolError`
and move to ``ERROR``.

The client may queue commands without waiting only when the server offered
PIPELINING and every unanswered command is one RFC 2920 lets others follow
(MAIL, RCPT, RSET, non-final BDAT).

STARTTLS (RFC 3207): once the 220 reply is sent (server) or received
(client), every byte still buffered, or received before
:meth:`Connection.start_tls_done`, is plaintext an attacker could have
injected; it is discarded (and counted in ``discarded_bytes``).
``start_tls_done()`` then forgets the EHLO state, as the RFC requires.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Final

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
from .._core._textproto import END_OF_BLOCK, DotStuffer, DotUnstuffer, ReplyReader, take_line
from ._events import (
    Auth,
    AuthContinuation,
    BadCommand,
    Bdat,
    ConnectionClosed,
    Data,
    DataChunk,
    Ehlo,
    EndOfData,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SMTPEvent,
    StartTLS,
    Vrfy,
    reply_text_problem,
)
from ._extensions import Extensions
from ._syntax import BdatHeader, bad, parse_auth_response, parse_command, parse_reply, write_reply

__all__ = [
    "DEFAULT_MAX_COMMAND_LENGTH",
    "DEFAULT_MAX_LINE_LENGTH",
    "Connection",
    "State",
]

#: RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF.
DEFAULT_MAX_COMMAND_LENGTH: Final = 512
#: RFC 5321 4.5.3.1.6: a text line of the message is at most 1000 octets.
DEFAULT_MAX_LINE_LENGTH: Final = 1000


class State(enum.Enum):
    """Where the SMTP session is (the same for both roles)."""

    #: waiting for the server's greeting
    GREETING = "GREETING"
    #: greeted; EHLO/HELO/LHLO needed (also after STARTTLS)
    NEED_HELLO = "NEED_HELLO"
    #: session open, no mail transaction
    READY = "READY"
    #: MAIL accepted
    MAIL = "MAIL"
    #: at least one RCPT accepted
    RCPT = "RCPT"
    #: DATA got 354: the body is being transferred
    BODY = "BODY"
    #: a BDAT transaction is under way (RFC 3030)
    BDAT = "BDAT"
    #: AUTH got 334: the client answers a challenge
    AUTH = "AUTH"
    #: STARTTLS got 220: waiting for ``start_tls_done()``
    TLS_PENDING = "TLS_PENDING"
    #: QUIT answered, 421 sent/received, or the peer closed
    CLOSED = "CLOSED"
    #: the peer broke the protocol
    ERROR = "ERROR"

    def __repr__(self) -> str:
        return self.value


# Command kinds in the queue of unanswered commands.
_GREETING = "GREETING"
_HELLO = "HELLO"
_MAIL = "MAIL"
_RCPT = "RCPT"
_DATA = "DATA"
_BODY = "BODY"
_BDAT = "BDAT"
_BDAT_LAST = "BDAT_LAST"
_RSET = "RSET"
_QUIT = "QUIT"
_STARTTLS = "STARTTLS"
_AUTH = "AUTH"
_OTHER = "OTHER"

_KIND: dict[type[SMTPEvent], str] = {
    Ehlo: _HELLO,
    Helo: _HELLO,
    Lhlo: _HELLO,
    MailFrom: _MAIL,
    RcptTo: _RCPT,
    Data: _DATA,
    Rset: _RSET,
    Quit: _QUIT,
    StartTLS: _STARTTLS,
    Auth: _AUTH,
    AuthContinuation: _AUTH,
    Noop: _OTHER,
    Help: _OTHER,
    Vrfy: _OTHER,
    Expn: _OTHER,
    BadCommand: _OTHER,
}

#: RFC 2920 3.1: commands after which the client may send more without waiting.
_MAY_BE_FOLLOWED = frozenset({_MAIL, _RCPT, _RSET, _BDAT})
#: Where each command may be given (server judges, client is held to it too).
_ALLOWED: dict[str, frozenset[State]] = {
    _MAIL: frozenset({State.READY}),
    _RCPT: frozenset({State.MAIL, State.RCPT}),
    _DATA: frozenset({State.RCPT}),
    _BDAT: frozenset({State.RCPT, State.BDAT}),
    _AUTH: frozenset({State.READY}),
    _STARTTLS: frozenset({State.NEED_HELLO, State.READY}),
}
_ANY_SESSION_STATE = frozenset({State.NEED_HELLO, State.READY, State.MAIL, State.RCPT, State.BDAT})


_NO_ARG_COMMANDS: dict[type[SMTPEvent], bytes] = {
    Data: b"DATA\r\n",
    Rset: b"RSET\r\n",
    Quit: b"QUIT\r\n",
    StartTLS: b"STARTTLS\r\n",
}


def _write_command(event: SMTPEvent) -> bytes:
    t = type(event)
    if t is MailFrom or t is RcptTo:
        assert isinstance(event, (MailFrom, RcptTo))
        params = "".join(f" {k}={v}" if v is not None else f" {k}" for k, v in event.params)
        verb = "MAIL FROM:" if t is MailFrom else "RCPT TO:"
        return f"{verb}<{event.address}>{params}\r\n".encode()
    if isinstance(event, (Ehlo, Helo, Lhlo)):
        return f"{t.__name__.upper()} {event.domain}\r\n".encode()
    if isinstance(event, (Noop, Help, Vrfy, Expn)):
        arg = f" {event.argument}" if event.argument else ""
        return f"{t.__name__.upper()}{arg}\r\n".encode()
    if isinstance(event, Auth):
        initial = f" {event.initial_response}" if event.initial_response is not None else ""
        return f"AUTH {event.mechanism}{initial}\r\n".encode()
    if isinstance(event, AuthContinuation):
        return f"{event.data}\r\n".encode()
    if isinstance(event, Bdat):
        last = " LAST" if event.last else ""
        return f"BDAT {len(event.chunk)}{last}\r\n".encode() + event.chunk
    return _NO_ARG_COMMANDS[t]


class Connection:
    """One SMTP or LMTP session, seen from one side (``CLIENT`` or ``SERVER``).

    :param our_role: which side we play.
    :param lmtp: speak LMTP (RFC 2033): LHLO instead of EHLO/HELO, and one
        reply per accepted recipient after the message.
    :param max_command_length: the longest command line a server accepts,
        CRLF included (512).  A longer line is read whole and answered by a
        :class:`BadCommand` with 500 while it fits in *max_auth_line_length*;
        beyond that :class:`RemoteProtocolError` (hint 500) is raised.
    :param max_auth_line_length: the longest AUTH command or AUTH response
        line (RFC 4954 4: 12288), and the most a server buffers for one line.
    :param max_line_length: the longest text line of a DATA body on the
        wire (1000); longer lines raise with hint 500.
    :param max_message_size: the most body bytes a server accepts per
        message (DATA or all BDAT chunks together), or None.  A message over
        the limit is read to its end and discarded; in place of
        ``EndOfData`` (or the final ``Bdat``) the server gets a
        :class:`BadCommand` with a 552 reply.  The ``DataChunk`` events
        before it carry exactly the first *max_message_size* body bytes,
        however the body was split into reads.
    :param max_reply_line_length: the longest reply line a client accepts.
    :param max_bdat_chunk_size: the largest single BDAT chunk a server
        buffers; a larger one is read, discarded and answered with 552.
    """

    def __init__(
        self,
        our_role: Role,
        *,
        lmtp: bool = False,
        max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        max_message_size: int | None = None,
        max_reply_line_length: int = 2048,
        max_bdat_chunk_size: int = 16 * 1024 * 1024,
        max_auth_line_length: int = 12288,
    ) -> None:
        if our_role is not CLIENT and our_role is not SERVER:
            raise ValueError(f"expected CLIENT or SERVER, not {our_role!r}")
        self.our_role = our_role
        self.lmtp = lmtp
        self.max_command_length = max_command_length
        self.max_line_length = max_line_length
        self.max_message_size = max_message_size
        self.max_bdat_chunk_size = max_bdat_chunk_size
        self.max_auth_line_length = max_auth_line_length
        #: Session state; see :class:`State`.
        self.state = State.GREETING
        #: Extensions of the last successful EHLO/LHLO reply (sent or received).
        self.extensions = Extensions()
        #: Whether TLS is active (``start_tls_done()`` was called).
        self.tls_active = False
        #: Whether an AUTH exchange succeeded (235) in this session.
        self.authenticated = False
        #: Plaintext bytes thrown away around STARTTLS (see module docs).
        self.discarded_bytes = 0
        self._buf = ReceiveBuffer()
        self._eof = False
        self._pending: deque[str] = deque()
        self._accepted_rcpts = 0
        self._lmtp_left: int | None = None
        self._esmtp = False
        # server: the body reader and BDAT bookkeeping
        self._unstuffer: DotUnstuffer | None = None
        self._bdat: BdatHeader | None = None
        self._bdat_reject: BadCommand | None = None
        self._bdat_received: list[bytes] = []
        self._bdat_remaining = 0
        self._message_size = 0
        self._oversized = False
        # client
        self._stuffer: DotStuffer | None = None
        self._replies = ReplyReader(max_reply_line_length, lf_ok=True, first_digits=b"2345")
        if our_role is CLIENT:
            self._pending.append(_GREETING)

    # -- shared bookkeeping ------------------------------------------------

    @property
    def their_role(self) -> Role:
        """The peer's role."""
        return self.our_role.peer

    @property
    def replies_owed(self) -> int:
        """How many replies the server still owes (sent or to be received)."""
        return len(self._pending)

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Unprocessed received bytes and whether EOF was seen."""
        return bytes(self._buf), self._eof

    def _reset_transaction(self) -> None:
        self._accepted_rcpts = 0
        self._message_size = 0
        self._oversized = False

    def _after_reply(self, kind: str, reply: Reply) -> None:
        """Move the state for *reply* answering a command of *kind*."""
        code = reply.code
        if code == 421 or kind == _QUIT:
            self.state = State.CLOSED
            return
        ok = 200 <= code < 300
        state = self.state
        if kind == _GREETING:
            self.state = State.NEED_HELLO
        elif kind == _HELLO:
            if ok:
                self._reset_transaction()
                self.state = State.READY
                self.extensions = Extensions.from_reply(reply) if self._esmtp else Extensions()
        elif kind == _MAIL:
            if ok and state is State.READY:
                self.state = State.MAIL
        elif kind == _RCPT:
            if ok and state in (State.MAIL, State.RCPT):
                self._accepted_rcpts += 1
                self.state = State.RCPT
        elif kind == _DATA:
            if code == 354 and state is State.RCPT:
                self.state = State.BODY
        elif kind in (_BODY, _BDAT_LAST):
            if self.lmtp:
                # RFC 2033 4.2: one reply per accepted recipient.  Counted at
                # the first reply, when every RCPT reply is known.
                left = self._lmtp_left if self._lmtp_left is not None else self._accepted_rcpts
                if left > 1:
                    self._lmtp_left = left - 1
                    self._pending.appendleft(kind)
                    return
                self._lmtp_left = None
            self._reset_transaction()
            self.state = State.READY
        elif kind == _BDAT:
            if ok and state in (State.RCPT, State.BDAT):
                self.state = State.BDAT
            elif not ok:
                self._reset_transaction()
                self.state = State.READY
        elif kind == _RSET:
            if ok and state in _ANY_SESSION_STATE:
                self._reset_transaction()
                self.state = State.NEED_HELLO if state is State.NEED_HELLO else State.READY
        elif kind == _STARTTLS:
            if code == 220:
                self.state = State.TLS_PENDING
                self.discarded_bytes += len(self._buf)
                self._buf.skip(len(self._buf))
        elif kind == _AUTH:
            if code == 334:
                self.state = State.AUTH
            else:
                self.state = State.READY
                if code == 235:
                    self.authenticated = True

    def _hello_kind(self, event: SMTPEvent) -> None:
        self._esmtp = type(event) is not Helo

    def start_tls_done(self) -> None:
        """Tell the machine the TLS handshake after STARTTLS has completed.

        Discards any bytes received in plaintext since the 220 reply and
        returns to ``NEED_HELLO``: the client must greet again and both
        sides forget the extensions and authentication of the plaintext
        session (RFC 3207 4.2).
        """
        if self.state is not State.TLS_PENDING:
            raise LocalProtocolError(f"start_tls_done() in state {self.state.value}")
        self.discarded_bytes += len(self._buf)
        self._buf.skip(len(self._buf))
        self.state = State.NEED_HELLO
        self.tls_active = True
        self.authenticated = False
        self.extensions = Extensions()
        self._reset_transaction()

    # -- receiving -----------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes received from the peer; ``b""`` means the peer closed."""
        if data:
            if self._eof:
                raise RuntimeError("received data after EOF")
            if self.state is State.TLS_PENDING:
                self.discarded_bytes += len(data)
                return
            self._buf.feed(data)
        else:
            self._eof = True

    def next_event(self) -> SMTPEvent | SentinelType:
        """The next event from the peer, ``NEED_DATA`` or ``PAUSED``.

        The server gets commands, body pieces and :class:`BadCommand`; the
        client gets :class:`Reply` events.  Both get
        :class:`ConnectionClosed` when the peer closed at a clean point.
        """
        if self.state is State.ERROR:
            raise RemoteProtocolError("Can't receive data when peer state is ERROR")
        try:
            if self.our_role is SERVER:
                return self._next_command()
            return self._next_reply()
        except RemoteProtocolError:
            self.state = State.ERROR
            raise

    def _closed(self) -> SMTPEvent:
        if self._buf:
            raise RemoteProtocolError("connection closed in the middle of a line", 500)
        self.state = State.CLOSED
        return _make_event(ConnectionClosed)

    def _next_reply(self) -> SMTPEvent | SentinelType:
        if self.state is State.TLS_PENDING:
            return PAUSED
        if self.state is State.CLOSED and not self._buf:
            return _make_event(ConnectionClosed) if self._eof else PAUSED
        found = self._replies.read(self._buf)
        if found is None:
            if self._eof:
                if self._replies.pending:
                    raise RemoteProtocolError("connection closed in the middle of a reply")
                return self._closed()
            return NEED_DATA
        code, lines = found
        for line in lines:
            # A stray CR or NUL is a broken (or smuggling) server, and a
            # reply carrying one could not be passed on by a proxy.
            if reply_text_problem(line):
                raise RemoteProtocolError(f"control character in reply text {line[:80]!r}")
        reply = parse_reply(code, lines)
        if not self._pending:
            if reply.code != 421:
                raise RemoteProtocolError(f"unexpected reply {reply.code}: no command pending")
            self.state = State.CLOSED
            return reply
        if reply.code == 421:
            self._pending.clear()
        kind = self._pending.popleft() if self._pending else _OTHER
        self._after_reply(kind, reply)
        return reply

    def _next_command(self) -> SMTPEvent | SentinelType:
        state = self.state
        if state is State.TLS_PENDING:
            return PAUSED
        if state is State.CLOSED:
            return _make_event(ConnectionClosed) if self._eof else PAUSED
        if self._pending or state is State.GREETING:
            return PAUSED  # the user owes a reply (or the greeting) first
        if state is State.BODY:
            return self._next_body_piece()
        if self._bdat is not None:
            return self._next_bdat_chunk()
        # AUTH lines may be longer (RFC 4954 4: 12288); others are checked
        # after the verb is known, so an over-long one is a recoverable 500.
        limit = max(self.max_command_length, self.max_auth_line_length)
        line = take_line(self._buf, limit, hint=500, what="command line")
        if line is None:
            return self._closed() if self._eof else NEED_DATA
        if len(line) + 2 > self.max_command_length and not (
            state is State.AUTH or line[:5].upper() == b"AUTH "
        ):
            self._pending.append(_OTHER)
            return bad(line, 500, "5.5.6", "Line too long")
        if state is State.AUTH:
            # Whatever the line, it answers the challenge and ends or
            # continues the exchange.
            response = parse_auth_response(line)
            self._pending.append(_AUTH)
            return response
        event = self._check_sequence(line, parse_command(line, self.lmtp))
        if isinstance(event, BdatHeader):
            return self._start_bdat(event)
        if type(event) is StartTLS:
            # RFC 3207 5: nothing may follow STARTTLS in a pipelined group.
            self.discarded_bytes += len(self._buf)
            self._buf.skip(len(self._buf))
        if type(event) in (Ehlo, Helo, Lhlo):
            self._hello_kind(event)
        self._pending.append(_KIND[type(event)])
        return event

    def _check_sequence(self, line: bytes, event: SMTPEvent | BdatHeader) -> SMTPEvent | BdatHeader:
        kind = _BDAT if isinstance(event, BdatHeader) else _KIND.get(type(event))
        allowed = _ALLOWED.get(kind) if kind is not None else None
        state = self.state
        if allowed is not None and state not in allowed:
            if kind == _MAIL and state is not State.NEED_HELLO:
                text = "Nested MAIL command"
            elif state is State.NEED_HELLO:
                text = "Send HELO/EHLO first" if not self.lmtp else "Send LHLO first"
            elif kind == _STARTTLS and self.tls_active:
                text = "TLS already active"
            else:
                text = "Bad sequence of commands"
            rejected = bad(line, 503, "5.5.1", text)
            return self._bdat_rejection(event, rejected)
        if kind == _STARTTLS and self.tls_active:
            return bad(line, 503, "5.5.1", "TLS already active")
        if kind == _AUTH and self.authenticated:
            return bad(line, 503, "5.5.1", "Already authenticated")
        if isinstance(event, BdatHeader) and not self.extensions.chunking:
            return self._bdat_rejection(event, bad(line, 502, "5.5.1", "CHUNKING not offered"))
        return event

    def _bdat_rejection(
        self, event: SMTPEvent | BdatHeader, rejected: BadCommand
    ) -> SMTPEvent | BdatHeader:
        if isinstance(event, BdatHeader):
            # The chunk follows regardless (RFC 3030 2): read and drop it.
            self._bdat_reject = rejected
        return rejected if not isinstance(event, BdatHeader) else event

    def _start_bdat(self, header: BdatHeader) -> SMTPEvent | SentinelType:
        self._bdat = header
        self._bdat_remaining = header.size
        self._bdat_received = []
        if self._bdat_reject is None:
            self._message_size += header.size
            if (
                self.max_message_size is not None and self._message_size > self.max_message_size
            ) or header.size > self.max_bdat_chunk_size:
                self._oversized = True
        return self._next_bdat_chunk()

    def _next_bdat_chunk(self) -> SMTPEvent | SentinelType:
        header = self._bdat
        assert header is not None
        while self._bdat_remaining:
            piece = self._buf.take_at_most(self._bdat_remaining)
            if piece is None:
                if self._eof:
                    raise RemoteProtocolError("connection closed inside a BDAT chunk", 500)
                return NEED_DATA
            self._bdat_remaining -= len(piece)
            if self._bdat_reject is None and not self._oversized:
                self._bdat_received.append(piece)
        self._bdat = None
        rejected, self._bdat_reject = self._bdat_reject, None
        if rejected is not None:
            self._pending.append(_OTHER)
            return rejected
        if self._oversized:
            self._pending.append(_BDAT)
            return bad(header.line, 552, "5.3.4", "Message size exceeds fixed maximum")
        chunk = b"".join(self._bdat_received)
        self._bdat_received = []
        if header.last:
            self._pending.append(_BDAT_LAST)
        else:
            self._pending.append(_BDAT)
        return _make_event(Bdat, chunk, header.last)

    def _next_body_piece(self) -> SMTPEvent | SentinelType:
        reader = self._unstuffer
        if reader is None:
            reader = self._unstuffer = DotUnstuffer(self.max_line_length, None)
        piece = reader.read(self._buf)
        if piece is None:
            if self._eof:
                raise RemoteProtocolError("connection closed inside the message body", 500)
            return NEED_DATA
        if piece is END_OF_BLOCK:
            self._unstuffer = None
            if self._oversized:
                self._pending.append(_BODY)
                return bad(b"", 552, "5.3.4", "Message size exceeds fixed maximum")
            self._pending.append(_BODY)
            return _make_event(EndOfData)
        assert isinstance(piece, bytes)
        if self._oversized:
            return self._next_body_piece()  # read on to the end, handing nothing out
        size = self._message_size + len(piece)
        limit = self.max_message_size
        if limit is not None and size > limit:
            # Hand out exactly the first *limit* bytes, however the body was
            # split into reads, so the events do not depend on the chunking.
            self._oversized = True
            piece = piece[: limit - self._message_size]
            if not piece:
                return self._next_body_piece()
        self._message_size = size
        return _make_event(DataChunk, piece)

    # -- sending -------------------------------------------------------------

    def send(self, event: SMTPEvent) -> bytes:
        """Validate *event* against the session and return its wire bytes.

        A server sends :class:`Reply` events (the first one is the greeting);
        a client sends commands, :class:`DataChunk`/:class:`EndOfData` after
        a 354 reply, and :class:`Bdat`.  Anything else, or anything out of
        turn, raises :class:`LocalProtocolError` and sends nothing.
        """
        if self.state is State.ERROR:
            raise LocalProtocolError("Can't send data when our state is ERROR")
        if self.our_role is SERVER:
            return self._send_reply(event)
        return self._send_command(event)

    def _send_reply(self, event: SMTPEvent) -> bytes:
        if type(event) is not Reply:
            raise LocalProtocolError(f"a server sends Reply events, not {type(event).__name__}")
        assert isinstance(event, Reply)
        data = write_reply(event)
        if self.state is State.GREETING:
            self._after_reply(_GREETING, event)
            return data
        if self.state is State.CLOSED:
            raise LocalProtocolError("the session is closed")
        if not self._pending:
            if event.code != 421:
                raise LocalProtocolError("no command is waiting for a reply")
            self.state = State.CLOSED
            return data
        if event.code == 421:
            self._pending.clear()
            self.state = State.CLOSED
            return data
        self._after_reply(self._pending.popleft(), event)
        return data

    def _send_command(self, event: SMTPEvent) -> bytes:
        state = self.state
        t = type(event)
        if state is State.CLOSED:
            raise LocalProtocolError("the session is closed")
        if state is State.TLS_PENDING:
            raise LocalProtocolError("call start_tls_done() after the TLS handshake first")
        if t is DataChunk or t is EndOfData:
            if state is not State.BODY:
                raise LocalProtocolError(f"{t.__name__} outside of a DATA body")
            stuffer = self._stuffer
            if stuffer is None:
                stuffer = self._stuffer = DotStuffer()
            if isinstance(event, DataChunk):
                return stuffer.feed(event.data)
            self._stuffer = None
            self._pending.append(_BODY)
            self.state = State.READY  # provisionally; the reply settles it
            return stuffer.finish()
        if state is State.BODY:
            raise LocalProtocolError("finish the DATA body with EndOfData first")
        if t is Reply or t is BadCommand or t is ConnectionClosed:
            raise LocalProtocolError(f"a client does not send {t.__name__}")
        if (t is AuthContinuation) != (state is State.AUTH):
            raise LocalProtocolError(
                "AuthContinuation answers a 334 challenge"
                if state is not State.AUTH
                else "answer the 334 challenge with AuthContinuation"
            )
        if self.lmtp and t in (Ehlo, Helo):
            raise LocalProtocolError("LMTP uses LHLO")
        if not self.lmtp and t is Lhlo:
            raise LocalProtocolError("LHLO is for LMTP only")
        if isinstance(event, Bdat):
            kind = _BDAT
            if event.last:
                kind = _BDAT_LAST
        else:
            kind = _KIND[t]
        if self._pending and (
            not self.extensions.pipelining or any(k not in _MAY_BE_FOLLOWED for k in self._pending)
        ):
            raise LocalProtocolError(f"wait for the reply to the previous command ({kind})")
        if t in (Ehlo, Helo, Lhlo):
            self._hello_kind(event)
        data = _write_command(event)
        self._pending.append(kind)
        return data
