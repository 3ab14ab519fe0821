"""Hypothesis fuzzing of the HTTP/1.1 receiver (both roles).

Arbitrary bytes, and valid messages mutated by byte flips, insertions of
CR/LF/NUL/SP/HTAB and other delimiters, deletions, duplications and
truncations, are fed in random pieces (sometimes followed by EOF) to a
server-role and a client-role Connection with small and default limits.
``next_event`` is called until it returns NEED_DATA, PAUSED or
ConnectionClosed, or raises.  The properties:

* the only exception is RemoteProtocolError; afterwards ``their_state`` is
  ERROR and every further ``next_event`` raises RemoteProtocolError too;
* no call hangs (a SIGALRM watchdog turns a hang into a failure) and the
  number of events is bounded by the input size;
* memory is bounded: after NEED_DATA the buffer holds at most the head
  limit, so it never exceeds that limit plus one ``receive_data``;
* events are well formed (bytes fields, no empty Data).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protomata.http as ph
from protomata.http import (
    CLIENT,
    DONE,
    ERROR,
    NEED_DATA,
    PAUSED,
    SEND_BODY,
    SEND_RESPONSE,
    SERVER,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    RemoteProtocolError,
    Request,
    Response,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET http://a.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nX: \xff\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
    b"\r\nGET / HTTP/1.1\nHost: a\n\nHEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
]
VALID_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nX: a\r\n  folded\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nclose-delimited body",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
    b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop",
]
INSERTABLE = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"0",
    b"f",
    b'"',
    b"\x7f",
    b"\xff",
    b"\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n",
]
LIMITS = st.sampled_from(
    [
        {},
        {"max_incomplete_event_size": 64},
        {"max_incomplete_event_size": 256, "max_line_length": 40},
        {"max_incomplete_event_size": 512, "max_header_count": 2},
    ]
)


@st.composite
def mutated(draw: Any, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "truncate"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= draw(st.sampled_from([0x01, 0x20, 0x80, 0xFF, draw(st.integers(1, 255))]))
        elif op == "insert":
            inserted = st.one_of(st.sampled_from(INSERTABLE), st.binary(min_size=1, max_size=3))
            data[pos:pos] = draw(inserted)
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 4))]
        elif op == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 40))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


def inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), mutated(seeds), st.sampled_from(seeds))


class Hang(Exception):
    pass


@contextmanager
def watchdog(seconds: float = 5.0) -> Iterator[None]:
    """Turn a call that never returns into a test failure."""

    def alarm(signum: int, frame: Any) -> None:
        raise Hang("next_event did not return")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _send_request(conn: Connection, method: bytes) -> None:
    target = b"a.example:443" if method == b"CONNECT" else b"/"
    conn.send(Request(method=method, target=target, headers=[(b"Host", b"a.example")]))
    conn.send(EndOfMessage())


def _after_message(conn: Connection, method: bytes) -> None:
    """Answer / start the next cycle as a real peer would, so pipelined input is parsed."""
    if conn.trailing_data[1]:
        return
    if conn.our_role is SERVER and conn.our_state is SEND_RESPONSE:
        conn.send(Response(status_code=200, headers=[(b"Content-Length", b"0")]))
        if conn.our_state is SEND_BODY:
            conn.send(EndOfMessage())
    if conn.our_state is DONE and conn.their_state is DONE:
        conn.start_next_cycle()
        if conn.our_role is CLIENT:
            _send_request(conn, method)


def _check_event(event: Any) -> None:
    assert isinstance(
        event, (Request, InformationalResponse, Response, Data, EndOfMessage, ConnectionClosed)
    )
    if type(event) is Data:
        assert type(event.data) is bytes and event.data
    elif type(event) is Request:
        assert all(type(v) is bytes for v in (event.method, event.target, event.http_version))
        assert all(type(n) is bytes and type(v) is bytes for n, v in event.headers)
    elif type(event) in (Response, InformationalResponse):
        assert type(event.reason) is bytes and 100 <= event.status_code <= 999


def feed(
    role: Any, data: bytes, cuts: list[int], eof: bool, method: bytes, limits: dict[str, int]
) -> list[Any]:
    """Feed *data* in pieces; check the invariants; return the events."""
    conn = Connection(role, **limits)
    limit = limits.get("max_incomplete_event_size", ph.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE)
    if role is CLIENT:
        _send_request(conn, method)
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if data[a:b]]
    if eof:
        pieces.append(b"")
    events: list[Any] = []
    budget = 2 * len(data) + 20  # every event consumes input or ends a message
    with watchdog():
        for piece in pieces:
            conn.receive_data(piece)
            # NEED_DATA left at most *limit* bytes behind (checked below).
            assert len(conn.trailing_data[0]) <= limit + len(piece)
            while True:
                try:
                    event = conn.next_event()
                except RemoteProtocolError as exc:
                    assert conn.their_state is ERROR
                    assert 400 <= exc.error_status_hint <= 599
                    try:
                        conn.next_event()
                    except RemoteProtocolError:
                        return events
                    raise AssertionError("next_event worked after an error") from None
                if event is NEED_DATA:
                    assert len(conn.trailing_data[0]) <= limit
                    break
                if event is PAUSED:
                    return events
                _check_event(event)
                events.append(event)
                budget -= 1
                assert budget > 0, "too many events for the input"
                if type(event) is ConnectionClosed:
                    return events
                if type(event) is EndOfMessage or (
                    type(event) is Response and conn.their_state is not SEND_BODY
                ):
                    _after_message(conn, method)
    return events


splits = st.lists(st.integers(0, 10**6), max_size=10)
methods = st.sampled_from([b"GET", b"GET", b"HEAD", b"POST", b"CONNECT"])


@SETTINGS
@given(data=inputs(VALID_REQUESTS), cuts=splits, eof=st.booleans(), limits=LIMITS)
def test_fuzz_server_role(data: bytes, cuts: list[int], eof: bool, limits: dict[str, int]) -> None:
    feed(SERVER, data, cuts, eof, b"GET", limits)


@SETTINGS
@given(data=inputs(VALID_RESPONSES), cuts=splits, eof=st.booleans(), method=methods, limits=LIMITS)
def test_fuzz_client_role(
    data: bytes, cuts: list[int], eof: bool, method: bytes, limits: dict[str, int]
) -> None:
    feed(CLIENT, data, cuts, eof, method, limits)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=1, max_size=64), role=st.sampled_from([CLIENT, SERVER]))
def test_fuzz_one_byte_at_a_time(data: bytes, role: Any) -> None:
    feed(role, data, list(range(len(data))), True, b"GET", {"max_incomplete_event_size": 32})


def test_seeds_are_valid() -> None:
    # The seeds must parse cleanly, or the mutations start from noise.
    for data in VALID_REQUESTS:
        events = feed(SERVER, data, [], False, b"GET", {})
        assert events and type(events[-1]) is EndOfMessage, data
    for data in VALID_RESPONSES:
        method = b"GET"
        if b" 101 " in data:
            continue  # needs an Upgrade request; covered by the fuzz runs as an error
        events = feed(CLIENT, data, [], True, method, {})
        assert events and any(type(e) is EndOfMessage for e in events), data


def test_oversized_input_is_refused_without_buffering_it() -> None:
    conn = Connection(SERVER, max_incomplete_event_size=100)
    conn.receive_data(b"GET /" + b"a" * 90)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"a" * 10)
    try:
        conn.next_event()
    except RemoteProtocolError as exc:
        assert exc.error_status_hint in (414, 431)
    else:
        raise AssertionError("a head over the limit was buffered")
