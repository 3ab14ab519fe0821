"""Fuzz harness: protomata.http.Connection playing the SERVER.

Input layout
------------
Integers are taken from the *end* of the input and bytes from the front, as
libFuzzer's and atheris's ``FuzzedDataProvider`` do, so a seed file is a
readable HTTP byte stream followed by a few control bytes::

    <bytes from the client> <split sizes, last first> <k> <flags>

* ``flags`` (last byte) chooses how the server answers (see ``_F_*``);
* ``k`` (0-15) is how many split sizes follow; the stream is fed to the
  connection in chunks whose sizes cycle through them (``k == 0``: one piece);
* each split size byte ``s`` means a chunk of ``s + 1`` bytes.

``encode_input`` builds such a file.

What counts as a crash
----------------------
Any exception other than ``protomata.RemoteProtocolError`` escaping the
machine, and any broken invariant (``AssertionError``): after a remote error
``their_state`` is ERROR and stays so; ``NEED_DATA`` never leaves more than
the configured head limit buffered, and never comes after EOF; received
``Data`` is never empty; the number of events is bounded by the input size;
a received HTTP/1.1 request, re-sent by our own client, parses back equal;
and the same bytes fed in one piece give the same events (chunking
invariance).

Run ``python fuzz/http_server.py CORPUS_DIR [libFuzzer flags]`` to fuzz with
atheris, or ``python fuzz/http_server.py --replay FILE_OR_DIR ...`` to run
inputs once without atheris.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness
from _harness import decode_input, encode_input

with _harness.instrumented(__name__):
    from protomata import RemoteProtocolError
    from protomata.http import (
        CLIENT,
        CLOSED,
        DONE,
        ERROR,
        IDLE,
        MUST_CLOSE,
        NEED_DATA,
        PAUSED,
        SEND_RESPONSE,
        SERVER,
        SWITCHED_PROTOCOL,
        Connection,
        ConnectionClosed,
        Data,
        EndOfMessage,
        InformationalResponse,
        Request,
        Response,
    )

__all__ = ["TestOneInput", "check_one_input", "encode_input", "main"]

# -- the server under test ------------------------------------------------------------

_F_FRAMING = 0x03  # 0: Content-Length, 1: chunked, 2: no length field, 3: CL + close
_F_EARLY = 0x04  # answer as soon as the request head arrives
_F_UPGRADE = 0x08  # accept Upgrade (101) and CONNECT (200) proposals
_F_CONTINUE = 0x10  # send 100 Continue when the client waits for it
_F_SMALL = 0x20  # small limits, to reach the limit checks quickly
_F_TRAILERS = 0x40  # several Data pieces and trailers (chunked, HTTP/1.1)
_F_CLOSE = 0x80  # send ConnectionClosed when the connection must close

_SMALL_LIMITS = {"max_incomplete_event_size": 300, "max_header_count": 6, "max_line_length": 90}
_BODY = b"hello, fuzzer\n"
_CAN_CLOSE = (IDLE, DONE, MUST_CLOSE)


def _check_request_round_trip(event: Request) -> None:
    """A request we accepted, sent by our own client, must parse back equal."""
    if event.http_version != b"1.1":
        return  # our writer only speaks HTTP/1.1
    client = Connection(CLIENT)
    wire = client.send(
        Request(method=event.method, target=event.target, headers=event.headers.raw_items())
    )
    server = Connection(SERVER)
    server.receive_data(wire)
    again = server.next_event()
    assert type(again) is Request, f"round trip: {event!r} -> {again!r}"
    # Our writer puts Host first (RFC 9110 section 7.2); otherwise order is kept.
    expected = sorted(event.headers, key=lambda field: field[0] != b"host")
    assert (again.method, again.target, again.http_version, list(again.headers)) == (
        event.method,
        event.target,
        event.http_version,
        expected,
    ), f"round trip changed the request: {event!r} -> {again!r}"


class ServerSession(_harness.Session):
    """One connection's worth of server behaviour, recorded as a transcript."""

    def __init__(self, flags: int, stream_size: int) -> None:
        self.flags = flags
        limits = _SMALL_LIMITS if flags & _F_SMALL else {}
        self.max_buffered = limits.get("max_incomplete_event_size", 16 * 1024)
        self.conn = Connection(SERVER, **limits)
        self.transcript: list[tuple] = []
        self.stopped = False
        self.eof = False
        self.event_budget = 4 * stream_size + 50
        self.request: Request | None = None
        self.answered = False

    # -- recording -------------------------------------------------------------

    def record(self, *item: object) -> None:
        if item[0] == "data" and self.transcript and self.transcript[-1][0] == "data":
            self.transcript[-1] = ("data", self.transcript[-1][1] + item[1])
        else:
            self.transcript.append(item)

    def send(self, event: object) -> None:
        out = self.conn.send(event)
        if out:
            self.record("sent", out)

    # -- answering -------------------------------------------------------------

    def respond(self, status: int = 200) -> None:
        conn = self.conn
        request = self.request
        flags = self.flags
        framing = flags & _F_FRAMING
        method = request.method if request is not None else b"GET"
        body = b"" if method == b"HEAD" or status in (204, 304) else _BODY
        headers = [("Server", "protomata-fuzz")]
        if framing == 0 or framing == 3:
            headers.append(("Content-Length", str(len(body))))
        elif framing == 1:
            headers.append(("Transfer-Encoding", "chunked"))
        if framing == 3:
            headers.append(("Connection", "close"))
        self.send(Response(status_code=status, headers=headers))
        self.answered = True
        if conn.our_state is SWITCHED_PROTOCOL:
            return
        can_trail = (
            framing == 1
            and flags & _F_TRAILERS
            and conn.their_http_version == b"1.1"
            and method != b"HEAD"
        )
        if can_trail:
            self.send(Data(data=body[:5]))
            self.send(Data(data=b""))
            self.send(Data(data=body[5:]))
            self.send(EndOfMessage(headers=[("X-Trailer", "yes")]))
        else:
            if body:
                self.send(Data(data=body))
            self.send(EndOfMessage())

    def on_request(self, event: Request) -> None:
        self.request = event
        self.answered = False
        _check_request_round_trip(event)
        conn = self.conn
        if conn.they_are_waiting_for_100_continue and self.flags & _F_CONTINUE:
            self.send(InformationalResponse(status_code=100, headers=[]))
        if self.flags & _F_EARLY:
            self.respond(405 if event.method == b"CONNECT" else 200)

    def on_end_of_message(self) -> None:
        request = self.request
        if not self.answered and request is not None:
            if self.flags & _F_UPGRADE and request.headers.info.upgrade:
                self.send(
                    InformationalResponse(
                        status_code=101,
                        headers=[
                            ("Upgrade", request.headers.get("upgrade")),
                            ("Connection", "upgrade"),
                        ],
                    )
                )
                self.answered = True
            elif self.flags & _F_UPGRADE and request.method == b"CONNECT":
                self.send(Response(status_code=200, headers=[]))
                self.answered = True
            else:
                # 200 would accept a CONNECT: decline it instead.
                self.respond(405 if request.method == b"CONNECT" else 200)

    def maybe_next_cycle(self) -> None:
        conn = self.conn
        if conn.our_state is DONE and conn.their_state is DONE:
            conn.start_next_cycle()
            self.request = None
            self.record("cycle")

    # -- receiving -------------------------------------------------------------

    def on_remote_error(self, exc: RemoteProtocolError) -> None:
        conn = self.conn
        assert conn.their_state is ERROR, f"after {exc!r} their_state is {conn.their_state}"
        hint = exc.error_status_hint
        assert 400 <= hint <= 599, f"error_status_hint {hint} is not a 4xx/5xx status"
        self.record("error")
        try:
            conn.next_event()
        except RemoteProtocolError:
            pass
        else:
            raise AssertionError("next_event after a remote error did not raise")
        assert conn.their_state is ERROR
        if conn.our_state in (IDLE, SEND_RESPONSE):
            # What a server does: answer with the hinted status, then close.
            # Not recorded: how much arrived when the error was found may
            # decide between two fitting statuses (414 or 400 for a long,
            # invalid request line), so the hint is not chunking-invariant.
            head = conn.send(Response(status_code=hint, headers=[("Content-Length", "0")]))
            assert head.startswith(b"HTTP/1.1 %d " % hint), head
            assert conn.send(EndOfMessage()) == b""
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
                self.maybe_next_cycle()
                if conn.their_state is IDLE:
                    continue
                self.record("paused", conn.their_state.value)
                trailing, closed = conn.trailing_data
                assert type(trailing) is bytes and closed is self.eof
                if self.flags & _F_CLOSE and conn.our_state in _CAN_CLOSE:
                    self.send(ConnectionClosed())
                self.stopped = True
                return
            etype = type(event)
            if etype is Data:
                assert type(event.data) is bytes and event.data, f"bad Data {event!r}"
                self.record("data", event.data)
                continue
            self.record("event", event)
            if etype is Request:
                self.on_request(event)
            elif etype is EndOfMessage:
                self.on_end_of_message()
            elif etype is ConnectionClosed:
                assert conn.their_state is CLOSED
                if self.flags & _F_CLOSE and conn.our_state in _CAN_CLOSE:
                    self.send(ConnectionClosed())
                self.stopped = True
                return
            else:
                raise AssertionError(f"a server received {event!r}")
            self.maybe_next_cycle()


def check_one_input(data: bytes) -> None:
    """Run one input; raise on a crash or a broken invariant."""
    flags, sizes, stream = decode_input(data)
    _harness.check_chunking(lambda: ServerSession(flags, len(stream)), stream, sizes)


_COLLECT_DIR = _harness.COLLECT_DIR
TestOneInput = _harness.make_entry_point(check_one_input)


def replay(paths: Iterable[str]) -> int:
    """Run each input once; print failures; return the number that failed."""
    return _harness.replay(globals()["check_one_input"], paths)  # looked up now: patchable


def main(argv: list[str]) -> int:
    """Fuzz with atheris, or ``--replay FILE_OR_DIR ...``."""
    return _harness.main(argv, check_one_input)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
