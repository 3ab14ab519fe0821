"""Fuzz harness: protomata.pop3.Connection playing the CLIENT.

Input layout
------------
``<bytes from the server> <split sizes, last first> <k> <flags>`` (see
``fuzz/_harness.py``); ``flags`` picks what the client tries (``_F_*``
below).  ``encode_input`` builds such a file.

The client behaves like a mail fetcher: after the greeting it asks CAPA
(unless ``_F_NO_CAPA``), STLS when listed (``_F_TLS``; the "handshake"
completes at once), UTF8 (``_F_UTF8``), logs in with APOP when the greeting
has a timestamp (``_F_APOP``), with AUTH PLAIN (``_F_AUTH``, answering the
challenge, or cancelling it with ``_F_CANCEL``) or with USER/PASS, then
runs STAT, LIST, UIDL, LIST 1, UIDL 1, RETR 1 (TOP 1 2 with ``_F_TOP``),
DELE 1, NOOP, RSET and QUIT.  It only sends what the state allows, so a
``LocalProtocolError`` from ``send()`` is a crash too.

What counts as a crash
----------------------
Any exception other than ``RemoteProtocolError`` escaping the machine, and
any broken invariant (``AssertionError``): after a remote error the state is
ERROR and stays so; ``NEED_DATA`` never leaves more than a line buffered and
never comes after EOF; ``PAUSED`` only while the TLS handshake is due;
``MultilineData`` is never empty; every reply received, rebuilt with its
public (validating) constructor, is equal, and a listing written by our
server code parses back equal; the number of events is bounded by the input
size; and the same bytes in one piece give the same events and commands, up
to an STLS (replies pipelined after its ``+OK`` are discarded by design).

Run ``python fuzz/pop3_client.py CORPUS_DIR [libFuzzer flags]`` to fuzz with
atheris, or ``python fuzz/pop3_client.py --replay FILE_OR_DIR ...`` to run
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
    from protomata._core import ReceiveBuffer
    from protomata._core._textproto import END_OF_BLOCK, DotUnstuffer
    from protomata.pop3 import (
        AUTHORIZATION,
        CLIENT,
        CLOSED,
        ERROR,
        GREETING,
        NEED_DATA,
        PAUSED,
        TRANSACTION,
        UPDATE,
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
        apop_digest,
    )
    from protomata.pop3._wire import parse_listing, write_listing

__all__ = ["TestOneInput", "check_one_input", "decode_input", "encode_input", "main"]

_F_SMALL = 0x01  # max_line_length=100, max_listing_size=300
_F_TLS = 0x02  # STLS when CAPA lists it
_F_AUTH = 0x04  # AUTH PLAIN instead of USER/PASS
_F_APOP = 0x08  # APOP when the greeting has a timestamp
_F_UTF8 = 0x10  # UTF8 before logging in
_F_TOP = 0x20  # TOP 1 2 instead of RETR 1
_F_NO_CAPA = 0x40  # skip CAPA
_F_CANCEL = 0x80  # cancel the SASL exchange at the first challenge

_TRANSACTION = (Stat(), List(), Uidl(), List(1), Uidl(1), Retr(1), Dele(1), Noop(), Rset())
_TEXT_REPLIES = (Greeting, Ok, Err, MultilineStart)


def _check_reply_round_trip(event: Any) -> None:
    """A reply we received must be one our server code can send, unchanged."""
    etype = type(event)
    if etype in _TEXT_REPLIES:
        assert etype(event.text) == event
        return
    if etype is AuthChallenge:
        assert AuthChallenge(event.data) == event
        return
    if etype is Capabilities:
        rebuilt = Capabilities(event.capabilities, event.text)
    elif etype is ScanListing or etype is UidListing:
        rebuilt = etype(event.entries, event.text)
    else:
        return
    assert rebuilt == event, f"rebuilt {event!r} as {rebuilt!r}"
    wire = write_listing(rebuilt)
    status, _, rest = wire.partition(b"\r\n")
    assert status.startswith(b"+OK"), wire
    buf = ReceiveBuffer()
    buf.feed(rest)
    unstuffer = DotUnstuffer(1 << 30, None)
    body = []
    while (piece := unstuffer.read(buf)) is not END_OF_BLOCK:
        assert isinstance(piece, bytes), f"listing {wire!r} does not end"
        body.append(piece)
    assert not buf, wire
    again = parse_listing(etype, event.text, b"".join(body))
    assert again == event, f"round trip: {event!r} -> {wire!r} -> {again!r}"


class ClientSession(_harness.Session):
    """One connection's worth of client behaviour, recorded as a transcript."""

    def __init__(self, flags: int, stream_size: int) -> None:
        self.flags = flags
        limits = {"max_line_length": 100, "max_listing_size": 300} if flags & _F_SMALL else {}
        self.conn = Connection(CLIENT, **limits)
        self.max_buffered = self.conn.max_line_length
        self.transcript: list[tuple[Any, ...]] = []
        self.stopped = False
        self.eof = False
        self.event_budget = 4 * stream_size + 50
        self.capabilities: Capabilities | None = None
        self.asked_capa = False
        self.tried_tls = False
        self.tried_utf8 = False
        self.tried_login = False
        self.sent_user = False
        self.transaction = list(_TRANSACTION)
        if flags & _F_TOP:
            self.transaction[5] = Top(1, 2)

    def record(self, *item: Any) -> None:
        if item[0] == "data" and self.transcript and self.transcript[-1][0] == "data":
            self.transcript[-1] = ("data", self.transcript[-1][1] + item[1])
        else:
            self.transcript.append(item)

    def send(self, command: Any) -> None:
        self.record("sent", self.conn.send(command))

    # -- acting ----------------------------------------------------------------

    def login(self) -> Any:
        conn = self.conn
        flags = self.flags
        if self.sent_user:
            return Pass("secret") if conn.is_allowed(Pass("secret")) else Quit()
        if self.tried_login:
            return Quit()  # the login failed
        self.tried_login = True
        if flags & _F_APOP and conn.greeting_timestamp is not None:
            return Apop("alice", apop_digest(conn.greeting_timestamp, "secret"))
        if flags & _F_AUTH:
            return Auth("PLAIN")
        self.sent_user = True
        return User("alice")

    def next_command(self) -> Any:
        conn = self.conn
        flags = self.flags
        if conn.state is TRANSACTION:
            return self.transaction.pop(0) if self.transaction else Quit()
        assert conn.state is AUTHORIZATION, conn.state
        if not flags & _F_NO_CAPA and not self.asked_capa:
            self.asked_capa = True
            return Capa()
        caps = self.capabilities
        if flags & _F_TLS and not self.tried_tls and caps is not None and "STLS" in caps:
            self.tried_tls = True
            return Stls()
        if flags & _F_UTF8 and not self.tried_utf8:
            self.tried_utf8 = True
            return Utf8()
        command = self.login()
        if type(command) is Pass:
            self.sent_user = False
        return command

    def act(self) -> None:
        """Send the next command if nothing is outstanding."""
        conn = self.conn
        if conn.state in (GREETING, UPDATE, CLOSED) or conn.awaiting_tls:
            return
        if conn.pending_command is not None and not conn.is_allowed(AuthCancel()):
            return
        if conn.is_allowed(AuthCancel()):
            # A SASL challenge is waiting for our response.
            if self.flags & _F_CANCEL:
                self.send(AuthCancel())
            else:
                self.send(AuthContinuation(b"\x00alice\x00secret"))
            return
        command = self.next_command()
        assert conn.is_allowed(command), f"{command!r} not allowed in {conn.state}"
        self.send(command)

    # -- receiving -------------------------------------------------------------

    def on_remote_error(self, exc: RemoteProtocolError) -> None:
        conn = self.conn
        assert conn.state is ERROR, f"after {exc!r} the state is {conn.state}"
        self.record("error")
        try:
            conn.next_event()
        except RemoteProtocolError:
            pass
        else:
            raise AssertionError("next_event after a remote error did not raise")
        assert conn.state is ERROR
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
                return
            if event is PAUSED:
                assert conn.awaiting_tls, "PAUSED, yet no TLS handshake is due"
                conn.tls_started()
                self.record("tls")
                self.act()
                continue
            etype = type(event)
            if etype is MultilineData:
                assert type(event.data) is bytes and event.data, f"bad {event!r}"
                self.record("data", event.data)
                continue
            self.record("event", event)
            if etype is ConnectionClosed:
                assert conn.state is CLOSED
                self.stopped = True
                return
            _check_reply_round_trip(event)
            if etype is Capabilities:
                self.capabilities = event
            if etype is not MultilineStart:
                self.act()


def check_one_input(data: bytes) -> None:
    """Run one input; raise on a crash or a broken invariant."""
    flags, sizes, stream = decode_input(data)
    _harness.check_chunking(
        lambda: ClientSession(flags, len(stream)), stream, sizes, _harness.until_tls
    )


_COLLECT_DIR = _harness.COLLECT_DIR
TestOneInput = _harness.make_entry_point(check_one_input)


def main(argv: list[str]) -> int:
    """Fuzz with atheris, or ``--replay FILE_OR_DIR ...``."""
    return _harness.main(argv, check_one_input)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
