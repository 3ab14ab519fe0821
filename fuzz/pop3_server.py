"""Fuzz harness: protomata.pop3.Connection playing the SERVER.

Input layout
------------
``<bytes from the client> <split sizes, last first> <k> <flags>`` (see
``fuzz/_harness.py``); ``flags`` picks the server's limits and answers
(``_F_*`` below).  ``encode_input`` builds such a file.

The server keeps a mailbox of three messages and answers every command
the machine hands out: ``+OK`` to USER/PASS/APOP (``-ERR`` for names
starting with ``x`` under ``_F_REJECT``), a SASL challenge to AUTH without
an initial response (``_F_AUTH``; else ``-ERR``), ``+OK`` and a completed
"handshake" to STLS (``_F_TLS``), listings to LIST/UIDL/CAPA, bodies to
RETR/TOP (``-ERR`` for messages that do not exist).

What counts as a crash
----------------------
Any exception other than ``RemoteProtocolError`` escaping the machine, and
any broken invariant (``AssertionError``): after a remote error the state
is ERROR and stays so, and one last ``-ERR`` can still be sent;
``NEED_DATA`` never leaves more than a command line buffered and never
comes after EOF; ``PAUSED`` with no reply owed only when the machine has
queued ``-ERR`` replies for ``data_to_send()``; a command handed out is
allowed in the state, and rebuilt with its public (validating) constructor
and written by our client code it parses back equal; the number of events is
bounded by the input size; and the same bytes in one piece give the same
events and replies, up to an STLS (bytes pipelined after it are discarded
by design).

Run ``python fuzz/pop3_server.py CORPUS_DIR [libFuzzer flags]`` to fuzz with
atheris, or ``python fuzz/pop3_server.py --replay FILE_OR_DIR ...`` to run
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
    from protomata.pop3 import (
        CLOSED,
        ERROR,
        NEED_DATA,
        PAUSED,
        SERVER,
        Apop,
        Auth,
        AuthCancel,
        AuthChallenge,
        AuthContinuation,
        Capa,
        Capabilities,
        Connection,
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
        Quit,
        RemoteProtocolError,
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
    from protomata.pop3._wire import parse_auth_response, parse_command, write_command

__all__ = ["TestOneInput", "check_one_input", "decode_input", "encode_input", "main"]

_F_SMALL = 0x01  # small limits (command 40, AUTH 120)
_F_TLS = 0x02  # accept STLS (+OK, then tls_started()); else -ERR
_F_AUTH = 0x04  # SASL challenge to AUTH without initial response; else -ERR
_F_REJECT = 0x08  # -ERR to USER/PASS/APOP names starting with "x"
_F_SPLIT_BODY = 0x10  # send bodies in several MultilineData pieces

_MESSAGES = {
    1: b"From: a@x\r\nSubject: one\r\n\r\nbody\r\n.leading dot\r\n",
    2: b"From: b@x\r\n\r\n",
    3: b"Subject: three\r\n\r\nno final line end",
}
_CAPABILITIES = ["USER", "TOP", "UIDL", "SASL PLAIN", "STLS", "UTF8", "PIPELINING"]

# Commands rebuilt through their public constructors for the round-trip check.
_REBUILD: dict[type, Any] = {
    User: lambda e: User(e.name),
    Pass: lambda e: Pass(e.password),
    Apop: lambda e: Apop(e.name, e.digest),
    List: lambda e: List(e.msg),
    Uidl: lambda e: Uidl(e.msg),
    Retr: lambda e: Retr(e.msg),
    Dele: lambda e: Dele(e.msg),
    Top: lambda e: Top(e.msg, e.lines),
    Auth: lambda e: Auth(e.mechanism, e.initial_response),
    AuthContinuation: lambda e: AuthContinuation(e.data),
    AuthCancel: lambda e: AuthCancel(),
    Stat: lambda e: Stat(),
    Noop: lambda e: Noop(),
    Rset: lambda e: Rset(),
    Quit: lambda e: Quit(),
    Capa: lambda e: Capa(),
    Stls: lambda e: Stls(),
    Utf8: lambda e: Utf8(),
}


def _check_command_round_trip(event: Any) -> None:
    wire = write_command(_REBUILD[type(event)](event))
    assert wire.endswith(b"\r\n") and wire.count(b"\n") == 1, wire
    if type(event) in (AuthContinuation, AuthCancel):
        again = parse_auth_response(wire[:-2])
    else:
        again = parse_command(wire[:-2])
    assert again == event, f"round trip: {event!r} -> {wire!r} -> {again!r}"


def _was_allowed(conn: Connection, event: Any) -> bool:
    """Whether *event*, just handed out (so now pending), was allowed."""
    etype = type(event)
    if etype is AuthContinuation or etype is AuthCancel:
        return True  # answers the challenge we sent
    if etype is Quit:
        return conn.state is not CLOSED
    pending, conn.pending_command = conn.pending_command, None
    try:
        return conn.is_allowed(event)
    finally:
        conn.pending_command = pending


class ServerSession(_harness.Session):
    """One connection's worth of server behaviour, recorded as a transcript."""

    def __init__(self, flags: int, stream_size: int) -> None:
        self.flags = flags
        limits = {"max_command_length": 40, "max_auth_line_length": 120} if flags & _F_SMALL else {}
        self.conn = Connection(SERVER, **limits)
        conn = self.conn
        self.max_buffered = max(conn.max_command_length, conn.max_auth_line_length)
        self.transcript: list[tuple[Any, ...]] = []
        self.stopped = False
        self.eof = False
        self.event_budget = 4 * stream_size + 50
        self.deleted: set[int] = set()
        self.send(Greeting("POP3 ready <1896.697170952@pop.example>"))

    def record(self, *item: Any) -> None:
        if item[0] == "sent" and self.transcript and self.transcript[-1][0] == "sent":
            self.transcript[-1] = ("sent", self.transcript[-1][1] + item[1])
        elif item[0] != "sent" or item[1]:
            self.transcript.append(item)

    def send(self, reply: Any) -> None:
        self.record("sent", self.conn.send(reply))

    def flush(self) -> None:
        self.record("sent", self.conn.data_to_send())

    # -- answering -------------------------------------------------------------

    def exists(self, msg: int | None) -> bool:
        return msg is None or (msg in _MESSAGES and msg not in self.deleted)

    def replies_for(self, event: Any) -> list[Any]:
        flags = self.flags
        etype = type(event)
        if etype in (User, Apop) and flags & _F_REJECT and event.name.startswith("x"):
            return [Err("[AUTH] no such user")]
        if etype is Pass and flags & _F_REJECT and event.password.startswith("x"):
            return [Err("[AUTH] invalid password")]
        if etype in (User, Pass, Apop, Utf8, Noop, Rset, Quit, AuthContinuation):
            return [Ok("")]
        if etype is Auth:
            if not flags & _F_AUTH:
                return [Err("unsupported mechanism")]
            if event.initial_response is None:
                return [AuthChallenge(b"")]
            return [Ok("logged in")]
        if etype is AuthCancel:
            return [Err("authentication cancelled")]
        if etype is Stls:
            return [Ok("begin TLS")] if flags & _F_TLS else [Err("TLS not available")]
        if etype is Capa:
            return [Capabilities(_CAPABILITIES, "capability list follows")]
        if etype is Stat:
            live = [m for m in _MESSAGES if m not in self.deleted]
            return [Ok(f"{len(live)} {sum(len(_MESSAGES[m]) for m in live)}")]
        if not self.exists(getattr(event, "msg", None)):
            return [Err("no such message")]
        if etype is List:
            if event.msg is not None:
                return [Ok(f"{event.msg} {len(_MESSAGES[event.msg])}")]
            live = [m for m in _MESSAGES if m not in self.deleted]
            return [ScanListing([(m, len(_MESSAGES[m])) for m in live], "scan listing")]
        if etype is Uidl:
            if event.msg is not None:
                return [Ok(f"{event.msg} uid-{event.msg}")]
            live = [m for m in _MESSAGES if m not in self.deleted]
            return [UidListing([(m, f"uid-{m}") for m in live])]
        if etype is Dele:
            self.deleted.add(event.msg)
            return [Ok("deleted")]
        if etype is Retr or etype is Top:
            body = _MESSAGES[event.msg]
            if etype is Top:
                head, _, rest = body.partition(b"\r\n\r\n")
                body = head + b"\r\n\r\n" + b"".join(rest.splitlines(True)[: event.lines])
            pieces = [body[:9], body[9:]] if flags & _F_SPLIT_BODY else [body]
            return [
                MultilineStart("message follows"),
                *(MultilineData(p) for p in pieces),
                MultilineEnd(),
            ]
        raise AssertionError(f"a server received {event!r}")

    def answer(self, event: Any) -> None:
        conn = self.conn
        for reply in self.replies_for(event):
            self.send(reply)
        assert conn.pending_command is None or type(event) is Auth, "a reply is still owed"
        if type(event) is Stls:
            # Pipelined bytes after STLS are dropped when +OK is sent: from
            # here on the transcript depends on the split.
            if conn.awaiting_tls:
                conn.tls_started()
            self.record("tls")

    # -- receiving -------------------------------------------------------------

    def on_remote_error(self, exc: RemoteProtocolError) -> None:
        conn = self.conn
        assert conn.state is ERROR, f"after {exc!r} the state is {conn.state}"
        self.flush()  # -ERR replies to the lines before the bad one
        self.record("error")
        try:
            conn.next_event()
        except RemoteProtocolError:
            pass
        else:
            raise AssertionError("next_event after a remote error did not raise")
        assert conn.state is ERROR
        assert conn.send(Err("protocol error")) == b"-ERR protocol error\r\n"
        self.stopped = True

    def buffered(self) -> int:
        return len(self.conn._buf)

    def drain(self) -> None:
        conn = self.conn
        while not self.stopped:
            event = self.next_event()
            if event is None:
                return
            if event is NEED_DATA:
                self.flush()
                return
            if event is PAUSED:
                assert conn.pending_command is None and not conn.awaiting_tls
                assert conn.state is not CLOSED
                queued = conn.data_to_send()
                assert queued, "PAUSED with nothing owed and nothing queued"
                self.record("sent", queued)
                continue
            self.flush()  # -ERR replies to lines before this event come first
            self.record("event", event)
            if type(event) is ConnectionClosed:
                assert conn.state is CLOSED
                self.stopped = True
                return
            assert _was_allowed(conn, event), f"{event!r} handed out in {conn.state}"
            _check_command_round_trip(event)
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
