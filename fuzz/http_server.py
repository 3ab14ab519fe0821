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

import hashlib
import os
import sys
import traceback
from collections.abc import Iterable, Iterator

try:
    import atheris
except ImportError:  # replay mode works without it
    atheris = None

_FUZZING = __name__ == "__main__" and atheris is not None and "--replay" not in sys.argv

if _FUZZING:
    with atheris.instrument_imports(include=["protomata"]):
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
else:
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

# -- input decoding ------------------------------------------------------------


class ReplayDataProvider:
    """The part of atheris.FuzzedDataProvider this harness uses, in pure Python.

    Same semantics as libFuzzer's provider (integers from the end, bytes
    from the front), so replaying a file without atheris runs exactly what
    the fuzzer ran.
    """

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._lo = 0
        self._hi = len(self._data)

    def remaining_bytes(self) -> int:
        return self._hi - self._lo

    def ConsumeBytes(self, count: int) -> bytes:
        count = max(0, min(count, self._hi - self._lo))
        out = self._data[self._lo : self._lo + count]
        self._lo += count
        return out

    def ConsumeIntInRange(self, low: int, high: int) -> int:
        span = high - low
        result = 0
        offset = 0
        while offset < 64 and (span >> offset) > 0 and self._hi > self._lo:
            self._hi -= 1
            result = (result << 8) | self._data[self._hi]
            offset += 8
        if span != (1 << 64) - 1:
            result %= span + 1
        return low + result


def _provider(data: bytes):
    if atheris is not None:
        return atheris.FuzzedDataProvider(data)
    return ReplayDataProvider(data)


def decode_input(data: bytes) -> tuple[int, list[int], bytes]:
    """(flags, split sizes, stream) from a fuzz input."""
    fdp = _provider(data)
    flags = fdp.ConsumeIntInRange(0, 255)
    count = fdp.ConsumeIntInRange(0, 15)
    sizes = [fdp.ConsumeIntInRange(1, 256) for _ in range(count)]
    return flags, sizes, fdp.ConsumeBytes(fdp.remaining_bytes())


def encode_input(stream: bytes, flags: int = 0, sizes: Iterable[int] = ()) -> bytes:
    """The fuzz input that ``decode_input`` turns into (flags, sizes, stream)."""
    sizes = list(sizes)
    if len(sizes) > 15 or not all(1 <= s <= 256 for s in sizes):
        raise ValueError("at most 15 split sizes, each 1..256")
    return stream + bytes(s - 1 for s in reversed(sizes)) + bytes([len(sizes), flags])


def split_stream(stream: bytes, sizes: list[int]) -> Iterator[bytes]:
    if not sizes:
        yield stream
        return
    pos = 0
    index = 0
    while pos < len(stream):
        size = sizes[index % len(sizes)]
        yield stream[pos : pos + size]
        pos += size
        index += 1


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


class ServerSession:
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
            self.event_budget -= 1
            assert self.event_budget > 0, "next_event keeps producing events without input"
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                self.on_remote_error(exc)
                return
            if event is NEED_DATA:
                assert not self.eof, "NEED_DATA after EOF"
                buffered = len(conn.trailing_data[0])
                assert buffered <= self.max_buffered, f"{buffered} bytes buffered at NEED_DATA"
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

    def feed(self, chunk: bytes) -> None:
        if self.stopped:
            return
        self.conn.receive_data(chunk)
        self.eof = not chunk
        self.drain()

    def run(self, chunks: Iterable[bytes]) -> list[tuple]:
        for chunk in chunks:
            self.feed(chunk)
            if self.stopped:
                break
        self.feed(b"")
        return self.transcript


def _first_difference(split: list[tuple], whole: list[tuple]) -> str:
    for index, (a, b) in enumerate(zip(split, whole, strict=False)):
        if a != b:
            return f"item {index}, {a[0]} vs {b[0]}"
    return f"{len(split)} vs {len(whole)} items"


def check_one_input(data: bytes) -> None:
    """Run one input; raise on a crash or a broken invariant."""
    flags, sizes, stream = decode_input(data)
    split = ServerSession(flags, len(stream)).run(split_stream(stream, sizes))
    if sizes:
        whole = ServerSession(flags, len(stream)).run([stream])
        assert split == whole, (
            f"chunking changed the events ({_first_difference(split, whole)}):\n"
            f"  split {sizes}: {split!r}\n  in one piece: {whole!r}"
        )


#: With PROTOMATA_FUZZ_COLLECT=DIR, failures are saved under DIR (a few per
#: distinct signature) instead of stopping the fuzzer at the first one.
_COLLECT_DIR = os.environ.get("PROTOMATA_FUZZ_COLLECT")
_COLLECT_PER_SIGNATURE = 5


def _collect(data: bytes, exc: BaseException) -> None:
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    first_line = str(exc).split("\n", 1)[0].split(":", 1)[0][:60]
    signature = (
        f"{type(exc).__name__} at {os.path.basename(frame.filename)}:{frame.lineno}: {first_line}"
    )
    key = hashlib.sha1(signature.encode()).hexdigest()[:12]
    folder = os.path.join(_COLLECT_DIR, key)
    os.makedirs(folder, exist_ok=True)
    saved = [name for name in os.listdir(folder) if name.startswith("input-")]
    if not saved:
        with open(os.path.join(folder, "SIGNATURE"), "w") as f:
            f.write(signature + "\n\n" + "".join(traceback.format_exception(exc)))
    if len(saved) < _COLLECT_PER_SIGNATURE:
        name = "input-" + hashlib.sha1(data).hexdigest()
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def TestOneInput(data: bytes) -> None:
    """The fuzz target (atheris's naming convention)."""
    if _COLLECT_DIR is None:
        check_one_input(data)
        return
    try:
        check_one_input(data)
    except Exception as exc:
        _collect(data, exc)


# -- command line ----------------------------------------------------------------------


def _input_files(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in sorted(os.walk(path)):
                for name in sorted(files):
                    yield os.path.join(root, name)
        else:
            yield path


def replay(paths: Iterable[str]) -> int:
    """Run each input once; print failures; return the number that failed."""
    failures = 0
    count = 0
    for path in _input_files(paths):
        count += 1
        try:
            with open(path, "rb") as f:
                data = f.read()
            check_one_input(data)
        except Exception:
            failures += 1
            print(f"FAILED: {path}", file=sys.stderr)
            traceback.print_exc()
    print(f"replayed {count} inputs, {failures} failed", file=sys.stderr)
    return failures


def main(argv: list[str]) -> int:
    if "--replay" in argv:
        paths = [a for a in argv[1:] if a != "--replay"]
        return 1 if replay(paths) else 0
    if atheris is None:
        print("atheris is not installed; use --replay FILE_OR_DIR ...", file=sys.stderr)
        return 2
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
