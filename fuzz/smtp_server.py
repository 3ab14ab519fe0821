"""Fuzz harness: protomata.smtp.Connection playing the SERVER (SMTP or LMTP).

Input layout
------------
``<bytes from the client> <split sizes, last first> <k> <flags>`` (see
``fuzz/_harness.py``); ``flags`` picks the server's configuration and
answers (``_F_*`` below).  ``encode_input`` builds such a file.

What counts as a crash
----------------------
Any exception other than ``RemoteProtocolError`` escaping the machine, and
any broken invariant (``AssertionError``):

* after a remote error the state is ERROR and stays so (the next
  ``next_event()`` raises again); the error's hint is a 4xx/5xx reply code;
* ``NEED_DATA`` never leaves more buffered than the longest line the
  configuration allows, and never comes after EOF; ``PAUSED`` only while a
  reply is owed or the session is over (else it would be a livelock);
* a ``DataChunk`` is never empty, the body is never longer than
  ``max_message_size``, the number of events is bounded by the input size;
* every reply a ``BadCommand`` carries can be sent;
* what we accepted we can send: a parsed command, rebuilt with the public
  (validating) constructor and written by our client code, parses back equal;
* chunking invariance: the same bytes in one piece give the same events,
  replies and errors, up to a STARTTLS (the bytes pipelined after it are
  discarded by design, so what comes after depends on the split).

The server answers like a permissive one: EHLO lists PIPELINING, CHUNKING,
STARTTLS and AUTH (``_F_EXTENSIONS``), 354 to DATA, one reply per accepted
recipient after an LMTP message, 334/235 to AUTH (``_F_AUTH``), 220 and a
completed "handshake" to STARTTLS (``_F_TLS``), 550 to recipients and 451
to senders that start with ``x`` (``_F_REJECT``), 421 after six commands
(``_F_421``).

Run ``python fuzz/smtp_server.py CORPUS_DIR [libFuzzer flags]`` to fuzz with
atheris, or ``python fuzz/smtp_server.py --replay FILE_OR_DIR ...`` to run
inputs once without atheris.
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness
from _harness import decode_input, encode_input

with _harness.instrumented(__name__):
    from protomata.smtp import (
        NEED_DATA,
        PAUSED,
        SERVER,
        Auth,
        AuthContinuation,
        BadCommand,
        Bdat,
        Connection,
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
        RemoteProtocolError,
        Reply,
        Rset,
        StartTLS,
        State,
        Vrfy,
    )
    from protomata.smtp._connection import _write_command
    from protomata.smtp._syntax import parse_command

__all__ = ["TestOneInput", "check_one_input", "decode_input", "encode_input", "main"]

_F_LMTP = 0x01  # speak LMTP (LHLO, one reply per recipient)
_F_SMALL = 0x02  # small limits, to reach the limit checks quickly
_F_EXTENSIONS = 0x04  # EHLO offers PIPELINING, CHUNKING, STARTTLS, AUTH, SIZE
_F_TLS = 0x08  # accept STARTTLS (220, then start_tls_done()); else 454
_F_REJECT = 0x10  # 550 to recipients, 451 to senders starting with "x"
_F_AUTH = 0x20  # 334 to AUTH without initial response, 235 to responses; else 504
_F_BODY_FAIL = 0x40  # 554 to every message
_F_421 = 0x80  # 421 (and the end of the session) after six commands

_SMALL_LIMITS = {
    "max_command_length": 64,
    "max_auth_line_length": 200,
    "max_line_length": 80,
    "max_message_size": 300,
    "max_bdat_chunk_size": 100,
}
_EXTENSIONS = ["mx.example", "PIPELINING", "CHUNKING", "STARTTLS", "AUTH PLAIN LOGIN", "SIZE"]

# Commands rebuilt through their public constructors for the round-trip check.
_REBUILD: dict[type, Any] = {
    Ehlo: lambda e: Ehlo(e.domain),
    Helo: lambda e: Helo(e.domain),
    Lhlo: lambda e: Lhlo(e.domain),
    MailFrom: lambda e: MailFrom(e.address, e.params),
    RcptTo: lambda e: RcptTo(e.address, e.params),
    Noop: lambda e: Noop(e.argument),
    Help: lambda e: Help(e.argument),
    Vrfy: lambda e: Vrfy(e.argument),
    Expn: lambda e: Expn(e.argument),
    Auth: lambda e: Auth(e.mechanism, e.initial_response),
    Data: lambda e: Data(),
    Rset: lambda e: Rset(),
    Quit: lambda e: Quit(),
    StartTLS: lambda e: StartTLS(),
}


def _check_command_round_trip(event: Any, lmtp: bool) -> None:
    rebuild = _REBUILD.get(type(event))
    if rebuild is None:
        return
    wire = _write_command(rebuild(event))
    assert wire.endswith(b"\r\n") and wire.count(b"\r\n") == 1, wire
    again = parse_command(wire[:-2], lmtp)
    assert again == event, f"round trip: {event!r} -> {wire!r} -> {again!r}"


class ServerSession(_harness.Session):
    """One connection's worth of server behaviour, recorded as a transcript."""

    def __init__(self, flags: int, stream_size: int) -> None:
        self.flags = flags
        self.lmtp = bool(flags & _F_LMTP)
        limits: dict[str, Any] = dict(_SMALL_LIMITS) if flags & _F_SMALL else {}
        self.conn = Connection(SERVER, lmtp=self.lmtp, **limits)
        conn = self.conn
        self.max_buffered = max(conn.max_command_length, conn.max_auth_line_length)
        self.transcript: list[tuple[Any, ...]] = []
        self.stopped = False
        self.eof = False
        self.event_budget = 4 * stream_size + 50
        self.commands = 0
        self.body_size = 0
        self.send(Reply(220, "mx.example ESMTP fuzz"))

    def record(self, *item: Any) -> None:
        if item[0] == "body" and self.transcript and self.transcript[-1][0] == "body":
            self.transcript[-1] = ("body", self.transcript[-1][1] + item[1])
        else:
            self.transcript.append(item)

    def send(self, reply: Reply) -> None:
        self.record("sent", self.conn.send(reply))

    # -- answering -------------------------------------------------------------

    def replies_for(self, event: Any) -> list[Reply]:
        flags = self.flags
        etype = type(event)
        if etype is BadCommand:
            return [event.reply]
        if etype is Ehlo or etype is Lhlo:
            return [Reply(250, _EXTENSIONS if flags & _F_EXTENSIONS else "mx.example")]
        if etype is MailFrom:
            if flags & _F_REJECT and event.address.startswith("x"):
                return [Reply(451, "try later", "4.3.0")]
            return [Reply(250, "sender ok", "2.1.0")]
        if etype is RcptTo:
            if flags & _F_REJECT and event.address.startswith("x"):
                return [Reply(550, "no such user", "5.1.1")]
            return [Reply(250, "recipient ok", "2.1.5")]
        if etype is Data:
            return [Reply(354, "go ahead")]
        if etype is EndOfData or (etype is Bdat and event.last):
            if flags & _F_BODY_FAIL:
                return [Reply(554, "rejected", "5.6.0")]
            return [Reply(250, "queued", "2.0.0")]
        if etype is Quit:
            return [Reply(221, "bye", "2.0.0")]
        if etype is StartTLS:
            if flags & _F_TLS:
                return [Reply(220, "go ahead", "2.0.0")]
            return [Reply(454, "TLS not available", "4.7.0")]
        if etype is Auth:
            if not flags & _F_AUTH:
                return [Reply(504, "mechanism not supported", "5.5.4")]
            if event.initial_response is None:
                return [Reply(334, "")]
            return [Reply(235, "ok", "2.7.0")]
        if etype is AuthContinuation:
            if event.data == "*":
                return [Reply(501, "cancelled", "5.0.0")]
            return [Reply(235, "ok", "2.7.0")]
        if etype is Help:
            return [Reply(214, ["commands:", "EHLO MAIL RCPT DATA"])]
        if etype is Vrfy:
            return [Reply(252, "cannot verify", "2.5.0")]
        return [Reply(250, "ok", "2.0.0")]

    def answer(self, event: Any) -> None:
        conn = self.conn
        self.commands += 1
        if self.flags & _F_421 and self.commands >= 6:
            self.send(Reply(421, "shutting down", "4.3.2"))
            assert conn.state is State.CLOSED and conn.replies_owed == 0
            return
        replies = self.replies_for(event)
        for reply in replies:
            self.send(reply)
        # LMTP: one reply per accepted recipient after the message.
        extra = 0
        while conn.replies_owed and conn.state is not State.CLOSED:
            extra += 1
            assert self.lmtp and extra <= 1000, "a reply is still owed after answering"
            self.send(replies[-1])
        if type(event) is StartTLS:
            # Pipelined bytes after STARTTLS were dropped when it was parsed:
            # from here on the transcript depends on the split.
            if conn.state is State.TLS_PENDING:
                conn.start_tls_done()
            self.record("tls")

    # -- receiving -------------------------------------------------------------

    def on_remote_error(self, exc: RemoteProtocolError) -> None:
        conn = self.conn
        assert conn.state is State.ERROR, f"after {exc!r} the state is {conn.state}"
        hint = exc.error_status_hint
        assert 400 <= hint <= 599, f"error_status_hint {hint} is not a 4xx/5xx code"
        Reply(hint, "protocol error")  # what a server answers can be built
        self.record("error")
        try:
            conn.next_event()
        except RemoteProtocolError:
            pass
        else:
            raise AssertionError("next_event after a remote error did not raise")
        assert conn.state is State.ERROR
        self.stopped = True

    def drain(self) -> None:
        conn = self.conn
        while not self.stopped:
            event = self.next_event()
            if event is None:
                return
            if event is NEED_DATA:
                return
            if event is PAUSED:
                assert conn.state is State.CLOSED, f"PAUSED in {conn.state} with nothing owed"
                self.stopped = True
                return
            etype = type(event)
            if etype is DataChunk:
                assert type(event.data) is bytes and event.data, f"bad DataChunk {event!r}"
                self.body_size += len(event.data)
                limit = conn.max_message_size
                assert limit is None or self.body_size <= limit, "body beyond the size limit"
                self.record("body", event.data)
                continue
            self.record("event", event)
            if etype is ConnectionClosed:
                assert conn.state is State.CLOSED
                self.stopped = True
                return
            if etype is BadCommand:
                assert 500 <= event.reply.code <= 559, event
                Reply(event.reply.code, event.reply.lines, event.reply.enhanced_status)
            else:
                _check_command_round_trip(event, self.lmtp)
            if etype is EndOfData or etype is Bdat or etype is BadCommand:
                self.body_size = 0
            self.answer(event)


def check_one_input(data: bytes) -> None:
    """Run one input; raise on a crash or a broken invariant."""
    flags, sizes, stream = decode_input(data)
    _harness.check_chunking(
        lambda: ServerSession(flags, len(stream)), stream, sizes, _harness.until_tls
    )


_COLLECT_DIR = _harness.COLLECT_DIR
TestOneInput = _harness.make_entry_point(check_one_input)


def main(argv: list[str]) -> int:
    """Fuzz with atheris, or ``--replay FILE_OR_DIR ...``."""
    return _harness.main(argv, check_one_input)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
