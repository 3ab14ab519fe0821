"""Fuzz harness: protomata.http.Connection playing the CLIENT.

Input layout
------------
Integers are taken from the *end* of the input and bytes from the front, as
libFuzzer's and atheris's ``FuzzedDataProvider`` do, so a seed file is a
readable HTTP byte stream followed by a few control bytes::

    <bytes from the server> <split sizes, last first> <k> <flags> <methods>

* ``methods`` (last byte) picks the requests the client sends, three bits
  per request from a sliding window (``METHODS``; ``0`` means all GET);
* ``flags`` chooses client behaviour (see ``_F_*``);
* ``k`` (0-15) is how many split sizes follow; the stream is fed to the
  connection in chunks whose sizes cycle through them (``k == 0``: one piece);
* each split size byte ``s`` means a chunk of ``s + 1`` bytes.

``encode_input`` builds such a file.

The client sends its first request before any input is fed, so the machine
knows which response framing to expect (HEAD, CONNECT, Upgrade ...), and the
next request each time a cycle completes.

What counts as a crash
----------------------
Any exception other than ``protomata.RemoteProtocolError`` escaping the
machine, and any broken invariant (``AssertionError``): after a remote error
``their_state`` is ERROR and stays so; ``NEED_DATA`` never leaves more than
the configured head limit buffered, and never comes after EOF; received
``Data`` is never empty; the number of events is bounded by the input size;
a received HTTP/1.1 response head, re-sent by our own server, parses back
with the same status, reason and fields; and the same bytes fed in one piece
give the same events (chunking invariance).

Run ``python fuzz/http_client.py CORPUS_DIR [libFuzzer flags]`` to fuzz with
atheris, or ``python fuzz/http_client.py --replay FILE_OR_DIR ...`` to run
inputs once without atheris.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness

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
        SEND_BODY,
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

__all__ = ["METHODS", "TestOneInput", "check_one_input", "encode_input", "main"]

# -- input decoding ------------------------------------------------------------


def decode_input(data: bytes) -> tuple[int, int, list[int], bytes]:
    """(methods, flags, split sizes, stream) from a fuzz input."""
    fdp = _harness.provider(data)
    methods = fdp.ConsumeIntInRange(0, 255)
    flags = fdp.ConsumeIntInRange(0, 255)
    count = fdp.ConsumeIntInRange(0, 15)
    sizes = [fdp.ConsumeIntInRange(1, 256) for _ in range(count)]
    return methods, flags, sizes, fdp.ConsumeBytes(fdp.remaining_bytes())


def encode_input(
    stream: bytes, methods: int = 0, flags: int = 0, sizes: Iterable[int] = ()
) -> bytes:
    """The fuzz input that ``decode_input`` turns into (methods, flags, sizes, stream)."""
    sizes = list(sizes)
    if len(sizes) > 15 or not all(1 <= s <= 256 for s in sizes):
        raise ValueError("at most 15 split sizes, each 1..256")
    return stream + bytes(s - 1 for s in reversed(sizes)) + bytes([len(sizes), flags, methods])


# -- the client under test --------------------------------------------------------------

#: (method, target, extra header fields, body, framing) for each request kind.
METHODS = (
    (b"GET", b"/", [], None, None),
    (b"HEAD", b"/", [], None, None),
    (b"POST", b"/form", [("Content-Type", "text/plain")], b"hello world", "content-length"),
    (b"POST", b"/upload", [], b"chunked body", "chunked"),
    (b"CONNECT", b"example.com:443", [], None, None),
    (b"GET", b"/chat", [("Upgrade", "websocket"), ("Connection", "Upgrade")], None, None),
    (b"POST", b"/expect", [("Expect", "100-continue")], b"0123456789", "content-length"),
    (b"OPTIONS", b"*", [], None, None),
)

_F_SMALL = 0x01  # small limits, to reach the limit checks quickly
_F_EAGER = 0x02  # send an Expect: 100-continue body without waiting
_F_CLOSE_HEADER = 0x04  # Connection: close on every request
_F_CLOSE = 0x08  # send ConnectionClosed when the connection must close
_F_LATE_BODY = 0x10  # hold every request body until the server answers
_F_TRAILERS = 0x20  # chunked bodies in several pieces, with trailers

_SMALL_LIMITS = {"max_incomplete_event_size": 300, "max_header_count": 6, "max_line_length": 90}
_MAX_REQUESTS = 12
_CAN_CLOSE = (IDLE, DONE, MUST_CLOSE)
_FRAMING_FIELDS = (b"content-length", b"transfer-encoding", b"connection")


def _check_response_round_trip(event: Response | InformationalResponse, method: bytes) -> None:
    """A response head we accepted, re-sent by our own server, must parse back.

    The server rewrites framing and Connection fields (as h11 does), so only
    the status line and the other fields are compared.
    """
    if event.http_version != b"1.1" or event.status_code == 101:
        return
    if method == b"CONNECT" and 200 <= event.status_code < 300:
        return  # a switch; the fresh server has no CONNECT pending
    request = Request(
        method=method if method != b"CONNECT" else b"GET",
        target="/",
        headers=[("Host", "example.com")],
    )
    client = Connection(CLIENT)
    server = Connection(SERVER)
    server.receive_data(client.send(request))
    assert type(server.next_event()) is Request
    wire = server.send(
        type(event)(
            status_code=event.status_code, reason=event.reason, headers=event.headers.raw_items()
        )
    )
    client.receive_data(wire)
    again = client.next_event()
    assert type(again) is type(event), f"round trip: {event!r} -> {again!r}"
    assert (again.status_code, again.reason) == (event.status_code, event.reason), (event, again)

    def fields(e: Response | InformationalResponse) -> list[tuple[bytes, bytes]]:
        return [(n, v) for n, v in e.headers if n not in _FRAMING_FIELDS]

    assert fields(again) == fields(event), f"round trip: {event!r} -> {again!r}"


class ClientSession(_harness.Session):
    """One connection's worth of client behaviour, recorded as a transcript."""

    def __init__(self, methods: int, flags: int, stream_size: int) -> None:
        self.methods = methods
        self.flags = flags
        limits = _SMALL_LIMITS if flags & _F_SMALL else {}
        self.max_buffered = limits.get("max_incomplete_event_size", 16 * 1024)
        self.conn = Connection(CLIENT, **limits)
        self.transcript: list[tuple] = []
        self.stopped = False
        self.eof = False
        self.event_budget = 4 * stream_size + 50
        self.requests_sent = 0
        self.method = b""
        self.pending_body: tuple[bytes, str] | None = None

    # -- recording -------------------------------------------------------------

    def start(self) -> None:
        self.send_request()

    def record(self, *item: object) -> None:
        if item[0] == "data" and self.transcript and self.transcript[-1][0] == "data":
            self.transcript[-1] = ("data", self.transcript[-1][1] + item[1])
        else:
            self.transcript.append(item)

    def send(self, event: object) -> None:
        out = self.conn.send(event)
        if out:
            self.record("sent", out)

    # -- sending ---------------------------------------------------------------

    def method_index(self, number: int) -> int:
        window = self.methods | (self.methods << 8)
        return (window >> ((2 * number) % 8)) & 7

    def send_request(self) -> None:
        if self.requests_sent >= _MAX_REQUESTS:
            return
        method, target, extra, body, framing = METHODS[self.method_index(self.requests_sent)]
        self.requests_sent += 1
        self.method = method
        headers = [("Host", "example.com"), ("User-Agent", "protomata-fuzz"), *extra]
        if framing == "content-length":
            headers.append(("Content-Length", str(len(body))))
        elif framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        if self.flags & _F_CLOSE_HEADER:
            headers.append(("Connection", "close"))
        self.send(Request(method=method, target=target, headers=headers))
        if body is None:
            self.send(EndOfMessage())
            return
        waits = method == b"POST" and target == b"/expect" and not self.flags & _F_EAGER
        if waits or self.flags & _F_LATE_BODY:
            self.pending_body = (body, framing)
        else:
            self.send_body(body, framing)

    def send_body(self, body: bytes, framing: str) -> None:
        self.pending_body = None
        if framing == "chunked" and self.flags & _F_TRAILERS:
            self.send(Data(data=body[:3]))
            self.send(Data(data=b""))
            self.send(Data(data=body[3:]))
            self.send(EndOfMessage(headers=[("X-Trailer", "1")]))
        else:
            self.send(Data(data=body))
            self.send(EndOfMessage())

    def flush_body(self) -> None:
        if self.pending_body is not None and self.conn.our_state is SEND_BODY:
            self.send_body(*self.pending_body)

    def maybe_next_cycle(self) -> None:
        conn = self.conn
        if conn.our_state is DONE and conn.their_state is DONE:
            conn.start_next_cycle()
            self.record("cycle")
            self.send_request()

    # -- receiving -------------------------------------------------------------

    def on_remote_error(self, exc: RemoteProtocolError) -> None:
        conn = self.conn
        assert conn.their_state is ERROR, f"after {exc!r} their_state is {conn.their_state}"
        self.record("error")
        try:
            conn.next_event()
        except RemoteProtocolError:
            pass
        else:
            raise AssertionError("next_event after a remote error did not raise")
        assert conn.their_state is ERROR
        if self.flags & _F_CLOSE and conn.our_state in _CAN_CLOSE:
            self.send(ConnectionClosed())
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
            if etype is InformationalResponse:
                _check_response_round_trip(event, self.method)
                if event.status_code != 101:
                    self.flush_body()
            elif etype is Response:
                _check_response_round_trip(event, self.method)
                if conn.their_state is SWITCHED_PROTOCOL:
                    continue  # the next call says PAUSED
                self.flush_body()
            elif etype is EndOfMessage:
                self.flush_body()
                if conn.our_state is MUST_CLOSE and self.flags & _F_CLOSE:
                    self.send(ConnectionClosed())
            elif etype is ConnectionClosed:
                assert conn.their_state is CLOSED
                if self.flags & _F_CLOSE and conn.our_state in _CAN_CLOSE:
                    self.send(ConnectionClosed())
                self.stopped = True
                return
            else:
                raise AssertionError(f"a client received {event!r}")
            self.maybe_next_cycle()


def check_one_input(data: bytes) -> None:
    """Run one input; raise on a crash or a broken invariant."""
    methods, flags, sizes, stream = decode_input(data)
    _harness.check_chunking(lambda: ClientSession(methods, flags, len(stream)), stream, sizes)


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
