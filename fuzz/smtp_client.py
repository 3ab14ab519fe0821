"""Fuzz harness: protomata.smtp.Connection playing the CLIENT (SMTP or LMTP).

Input layout
------------
``<bytes from the server> <split sizes, last first> <k> <flags>`` (see
``fuzz/_harness.py``); ``flags`` picks what the client tries (``_F_*``
below).  ``encode_input`` builds such a file.

The client behaves like a mail submitter: after the greeting it sends
EHLO (HELO with ``_F_HELO``, LHLO with ``_F_LMTP``), then STARTTLS when
offered (``_F_TLS``; the "handshake" completes at once), AUTH PLAIN when
offered (``_F_AUTH``, with an initial response if ``_F_INITIAL``), two
mail transactions with two recipients each -- pipelined in one burst when
the server offers PIPELINING (``_F_PIPELINE``), with BDAT when it offers
CHUNKING (``_F_BDAT``) -- and QUIT.  It only sends what the state allows,
so a ``LocalProtocolError`` from ``send()`` is a crash too.

What counts as a crash
----------------------
Any exception other than ``RemoteProtocolError`` escaping the machine, and
any broken invariant (``AssertionError``): after a remote error the state is
ERROR and stays so; ``NEED_DATA`` never leaves more than one reply line
buffered and never comes after EOF; ``PAUSED`` only during STARTTLS or
after the session closed; every reply received, rebuilt with the public
(validating) ``Reply`` constructor and written by our server code, parses
back equal; events are bounded by the input size; and the same bytes in one
piece give the same events and commands, up to a STARTTLS (replies
pipelined after its 220 are discarded by design).

Run ``python fuzz/smtp_client.py CORPUS_DIR [libFuzzer flags]`` to fuzz with
atheris, or ``python fuzz/smtp_client.py --replay FILE_OR_DIR ...`` to run
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
    from protomata._core._textproto import ReplyReader
    from protomata.smtp import (
        CLIENT,
        NEED_DATA,
        PAUSED,
        Auth,
        AuthContinuation,
        Bdat,
        Connection,
        ConnectionClosed,
        Data,
        DataChunk,
        Ehlo,
        EndOfData,
        Helo,
        Lhlo,
        MailFrom,
        Quit,
        RcptTo,
        RemoteProtocolError,
        Reply,
        Rset,
        StartTLS,
        State,
    )
    from protomata.smtp._syntax import parse_reply, write_reply

__all__ = ["TestOneInput", "check_one_input", "decode_input", "encode_input", "main"]

_F_LMTP = 0x01  # speak LMTP
_F_SMALL = 0x02  # max_reply_line_length=100
_F_HELO = 0x04  # greet with HELO (no extensions) instead of EHLO
_F_TLS = 0x08  # STARTTLS when offered
_F_AUTH = 0x10  # AUTH PLAIN when offered
_F_INITIAL = 0x20  # ... with an initial response
_F_PIPELINE = 0x40  # MAIL, RCPTs and DATA/BDAT in one burst when PIPELINING is offered
_F_BDAT = 0x80  # BDAT instead of DATA when CHUNKING is offered

_BODY = b"Subject: fuzz\r\n\r\nline one\r\n.dot line\r\n"
_RECIPIENTS = ("bob@y.example", "xcarol@y.example")
_TRANSACTIONS = 2


def _check_reply_round_trip(reply: Reply) -> None:
    """A reply we received must be one our server code can send, unchanged."""
    rebuilt = Reply(reply.code, reply.lines, reply.enhanced_status)
    wire = write_reply(rebuilt)
    buf = ReceiveBuffer()
    buf.feed(wire)
    found = ReplyReader(1 << 20, lf_ok=True, first_digits=b"2345").read(buf)
    assert found is not None and not buf, f"round trip: {reply!r} -> {wire!r}"
    again = parse_reply(*found)
    assert again == reply, f"round trip: {reply!r} -> {wire!r} -> {again!r}"


class ClientSession(_harness.Session):
    """One connection's worth of client behaviour, recorded as a transcript."""

    def __init__(self, flags: int, stream_size: int) -> None:
        self.flags = flags
        self.lmtp = bool(flags & _F_LMTP)
        limits = {"max_reply_line_length": 100} if flags & _F_SMALL else {}
        self.conn = Connection(CLIENT, lmtp=self.lmtp, **limits)
        self.max_buffered = 100 if flags & _F_SMALL else 2048
        self.transcript: list[tuple[Any, ...]] = []
        self.stopped = False
        self.eof = False
        self.event_budget = 4 * stream_size + 50
        self.greeted_in_phase = False
        self.tried_tls = False
        self.tried_auth = False
        self.auth_rounds = 0
        self.transactions_left = _TRANSACTIONS
        self.recipients: list[str] = []
        self.bdat_started = False

    def record(self, *item: Any) -> None:
        self.transcript.append(item)

    def send(self, event: Any) -> None:
        self.record("sent", self.conn.send(event))

    # -- acting ----------------------------------------------------------------

    def hello(self) -> Any:
        if self.lmtp:
            return Lhlo("client.example")
        if self.flags & _F_HELO:
            return Helo("client.example")
        return Ehlo("client.example")

    def start_transaction(self) -> None:
        conn = self.conn
        self.transactions_left -= 1
        self.recipients = list(_RECIPIENTS)
        self.bdat_started = False
        self.send(MailFrom(f"alice{self.transactions_left}@x.example", [("BODY", "8BITMIME")]))
        if self.flags & _F_PIPELINE and conn.extensions.pipelining:
            while self.recipients:
                self.send(RcptTo(self.recipients.pop(0)))
            if self.use_bdat():
                self.send(Bdat(_BODY, last=True))
            else:
                self.send(Data())

    def use_bdat(self) -> bool:
        return bool(self.flags & _F_BDAT) and self.conn.extensions.chunking

    def act(self) -> None:
        """Send what the state calls for, if no reply is owed."""
        conn = self.conn
        while not self.stopped and not conn.replies_owed:
            state = conn.state
            if state is State.GREETING or state is State.CLOSED:
                return
            if state is State.TLS_PENDING:
                conn.start_tls_done()
                self.record("tls")
                self.greeted_in_phase = False
            elif state is State.NEED_HELLO:
                if self.greeted_in_phase:
                    self.send(Quit())  # the greeting was refused
                else:
                    self.greeted_in_phase = True
                    self.send(self.hello())
            elif state is State.READY:
                self.act_ready()
            elif state is State.MAIL:
                if self.recipients:
                    self.send(RcptTo(self.recipients.pop(0)))
                else:
                    self.send(Rset())  # every recipient was refused
            elif state is State.RCPT:
                if self.recipients:
                    self.send(RcptTo(self.recipients.pop(0)))
                elif self.use_bdat():
                    self.bdat_started = True
                    self.send(Bdat(_BODY[:7]))
                else:
                    self.send(Data())
            elif state is State.BDAT:
                self.send(Bdat(_BODY[7:], last=True))
            elif state is State.BODY:
                self.send(DataChunk(_BODY[:20]))
                self.send(DataChunk(_BODY[20:]))
                self.send(EndOfData())
            elif state is State.AUTH:
                self.auth_rounds += 1
                self.send(
                    AuthContinuation("AGFsaWNlAHNlY3JldA==" if self.auth_rounds == 1 else "*")
                )
            else:
                raise AssertionError(f"unexpected state {state}")

    def act_ready(self) -> None:
        conn = self.conn
        flags = self.flags
        if flags & _F_TLS and conn.extensions.starttls and not self.tried_tls:
            self.tried_tls = True
            self.send(StartTLS())
        elif flags & _F_AUTH and "PLAIN" in conn.extensions.auth_mechanisms and not self.tried_auth:
            self.tried_auth = True
            initial = "AGFsaWNlAHNlY3JldA==" if flags & _F_INITIAL else None
            self.send(Auth("PLAIN", initial))
        elif self.transactions_left:
            self.start_transaction()
        else:
            self.send(Quit())

    # -- receiving -------------------------------------------------------------

    def on_remote_error(self, exc: RemoteProtocolError) -> None:
        conn = self.conn
        assert conn.state is State.ERROR, f"after {exc!r} the state is {conn.state}"
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
                assert conn.state in (State.TLS_PENDING, State.CLOSED), conn.state
                if conn.state is State.TLS_PENDING:
                    self.act()
                    continue
                return  # closed: what else arrives is read (and refused) later
            self.record("event", event)
            if type(event) is ConnectionClosed:
                assert conn.state is State.CLOSED
                self.stopped = True
                return
            assert type(event) is Reply, f"a client received {event!r}"
            _check_reply_round_trip(event)
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
