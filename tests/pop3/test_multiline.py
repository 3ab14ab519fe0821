"""Multi-line replies: dot-unstuffing, terminators, long lines, chunking, fuzzing."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protomata.pop3 import (
    AUTHORIZATION,
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    TRANSACTION,
    Capa,
    Capabilities,
    Connection,
    Err,
    Greeting,
    List,
    LocalProtocolError,
    MultilineData,
    MultilineEnd,
    MultilineStart,
    Ok,
    Pass,
    Quit,
    RemoteProtocolError,
    Retr,
    ScanListing,
    Stat,
    Top,
    Uidl,
    UidListing,
    User,
)

from .helpers import FINAL_REPLIES, drain, greeted_pair, merge


def logged_in_client(**kwargs: Any) -> Connection:
    client = Connection(CLIENT, **kwargs)
    client.receive_data(b"+OK hi\r\n")
    client.next_event()
    client.send(User("u"))
    client.receive_data(b"+OK\r\n")
    client.next_event()
    client.send(Pass("p"))
    client.receive_data(b"+OK\r\n")
    client.next_event()
    assert client.state is TRANSACTION
    return client


def retr(wire: bytes, **kwargs: Any) -> list[Any]:
    client = logged_in_client(**kwargs)
    client.send(Retr(1))
    client.receive_data(wire)
    return drain(client)


@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (b"+OK\r\n.\r\n", b""),
        (b"+OK\r\n..\r\n.\r\n", b".\r\n"),  # a line that is just "."
        (b"+OK\r\n...\r\n.\r\n", b"..\r\n"),
        (b"+OK\r\n..a\r\nb.\r\n.\r\n", b".a\r\nb.\r\n"),
        (b"+OK\r\na\n.\nb\r\n.\r\n", b"a\n.\nb\r\n"),  # bare LF never ends a block
        (b"+OK\r\na\r\n.\nb\r\n.\r\n", b"a\r\n\nb\r\n"),  # ".\\nb" is stuffed
        (b"+OK\r\na\r.\rb\r\n.\r\n", b"a\r.\rb\r\n"),
    ],
)
def test_dot_unstuffing(wire: bytes, body: bytes) -> None:
    expected: list[Any] = [MultilineStart(), MultilineEnd()]
    if body:
        expected.insert(1, MultilineData(body))
    assert retr(wire) == expected


def test_bytes_after_the_terminator_are_the_next_reply() -> None:
    client = logged_in_client()
    client.send(Retr(1))
    client.receive_data(b"+OK\r\nx\r\n.\r\n+OK 1 2\r\n")
    events = [client.next_event() for _ in range(3)]
    assert events == [MultilineStart(), MultilineData(b"x\r\n"), MultilineEnd()]
    with pytest.raises(RemoteProtocolError):
        client.next_event()  # nobody asked for that +OK yet
    client = logged_in_client()
    client.send(Retr(1))
    client.receive_data(b"+OK\r\nx\r\n.\r\n+OK 1 2\r\n")
    assert [client.next_event() for _ in range(3)][-1] == MultilineEnd()
    client.send(Stat())
    assert client.next_event() == Ok("1 2")


def test_long_lines_within_the_limit() -> None:
    line = b"x" * 60000 + b"\r\n"
    events = retr(b"+OK\r\n" + line * 3 + b".\r\n")
    assert events == [MultilineStart(), MultilineData(line * 3), MultilineEnd()]
    huge = b"y" * 1_000_000 + b"\r\n"
    events = retr(b"+OK\r\n" + huge + b".\r\n", max_line_length=2_000_000)
    assert events[1] == MultilineData(huge)


def test_lines_over_the_limit_are_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        retr(b"+OK\r\n" + b"x" * 70000 + b"\r\n.\r\n")
    with pytest.raises(RemoteProtocolError):
        retr(b"+OK\r\n" + b"x" * 200 + b"\r\n.\r\n", max_line_length=100)


def test_listing_size_is_bounded() -> None:
    client = logged_in_client(max_listing_size=100)
    client.send(List())
    client.receive_data(b"+OK\r\n" + b"1 100\r\n" * 20 + b".\r\n")
    with pytest.raises(RemoteProtocolError):
        drain(client)


def test_server_stuffs_and_normalizes_line_ends() -> None:
    _, server = greeted_pair()
    server._state = TRANSACTION
    server.receive_data(b"RETR 1\r\n")
    assert server.next_event() == Retr(1)
    wire = server.send(MultilineStart("follows"))
    for piece in (b".a\r", b"\n.", b"\n.\nb\rc\n", b"\r\n."):
        wire += server.send(MultilineData(piece))
    wire += server.send(MultilineEnd())
    assert wire == b"+OK follows\r\n..a\r\n..\r\n..\r\nb\r\nc\r\n\r\n..\r\n.\r\n"


# -- the session script used by the chunking and round-trip properties ------------

SCRIPT: list[tuple[Any, list[Any]]] = [
    (Capa(), [Capabilities(["TOP", "UIDL", "SASL PLAIN LOGIN"], "list follows")]),
    (User("alice"), [Ok("send PASS")]),
    (Pass("pw"), [Ok()]),
    (Stat(), [Ok("2 9000")]),
    (List(), [ScanListing([(1, 5000), (2, 4000)], "2 messages")]),
    (Uidl(), [UidListing([(1, "abc"), (2, "d:e")])]),
    (
        Retr(1),
        [
            MultilineStart("5000 octets"),
            MultilineData(b"Subject: x\r\n\r\n.dot\r\n.\r\n..\r\n"),
            MultilineData(b"line " * 3000 + b"\r\n"),
            MultilineEnd(),
        ],
    ),
    (Top(2, 1), [MultilineStart(), MultilineEnd()]),
    (Retr(9), [Err("no such message")]),
    (Quit(), [Ok("bye")]),
]


def _server_wire() -> tuple[bytes, list[bytes]]:
    """The greeting and each command's reply bytes, from our server machine."""
    server = Connection(SERVER)
    greeting = server.send(Greeting("ready <1@x>"))
    replies = []
    for command, answer in SCRIPT:
        server.receive_data(wire_of(command))
        assert server.next_event() == command
        replies.append(b"".join(server.send(event) for event in answer))
    return greeting, replies


def wire_of(command: Any) -> bytes:
    """A command's bytes, from a client machine that allows it."""
    client = Connection(CLIENT)
    client._state = AUTHORIZATION if type(command) in (User, Pass, Capa) else TRANSACTION
    client._user_accepted = True
    return client.send(command)


def _feed_split(conn: Connection, data: bytes, cuts: list[int]) -> list[Any]:
    events: list[Any] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        if cut == start:
            continue  # an empty piece would mean EOF
        conn.receive_data(data[start:cut])
        start = cut
        while (event := conn.next_event()) is not NEED_DATA:
            assert event is not PAUSED
            events.append(event)
    return events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=100_000), max_size=30))
def test_client_chunking_invariance(cuts: list[int]) -> None:
    greeting, replies = _server_wire()
    client = Connection(CLIENT)
    assert _feed_split(client, greeting, cuts) == [Greeting("ready <1@x>")]
    for (command, answer), wire in zip(SCRIPT, replies, strict=True):
        client.send(command)
        events = merge(_feed_split(client, wire, cuts))
        assert events == merge(answer)


def test_client_one_byte_at_a_time() -> None:
    greeting, replies = _server_wire()
    client = Connection(CLIENT)
    cuts = list(range(len(greeting)))
    assert _feed_split(client, greeting, cuts) == [Greeting("ready <1@x>")]
    for (command, answer), wire in zip(SCRIPT, replies, strict=True):
        client.send(command)
        assert merge(_feed_split(client, wire, list(range(len(wire))))) == merge(answer)
    assert client._buf.bytes_scanned < 3 * sum(len(w) for w in replies)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=400), max_size=40))
def test_server_chunking_invariance(cuts: list[int]) -> None:
    wire = b"".join(wire_of(command) for command, _ in SCRIPT)
    wire = b"NOPE\r\n" + wire  # one auto-answered command on the way
    for chunking in (cuts, list(range(len(wire)))):
        server = Connection(SERVER)
        server.send(Greeting())
        seen = []
        start = 0
        for cut in [*sorted({c % (len(wire) + 1) for c in chunking}), len(wire)]:
            if cut == start:
                continue
            server.receive_data(wire[start:cut])
            start = cut
            while (event := server.next_event()) is not NEED_DATA:
                assert event is not PAUSED
                seen.append(event)
                answer = dict((type(c), a) for c, a in SCRIPT)[type(event)]
                for reply in answer:
                    server.send(reply)
        assert seen == [command for command, _ in SCRIPT]


# -- fuzzing: arbitrary bytes only ever raise RemoteProtocolError -------------------


def _run_client(data: bytes, command: Any) -> None:
    client = Connection(CLIENT, max_line_length=256, max_listing_size=1024)
    client.receive_data(b"+OK hi\r\n")
    client.next_event()
    if command is not None:
        client._state = TRANSACTION if type(command) is not User else client._state
        client.send(command)
    client.receive_data(data)
    client.receive_data(b"")
    for _ in range(len(data) + 3):
        event = client.next_event()
        if event is NEED_DATA or event is PAUSED:
            return
        if type(event) in FINAL_REPLIES and client.pending_command is None:
            return


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300)
    | st.lists(
        st.sampled_from(
            [b"+OK", b"-ERR", b" ", b"\r\n", b".", b"..", b"+ ", b"1 2", b"\n", b"\r", b"x"]
        ),
        max_size=40,
    ).map(b"".join),
    st.sampled_from([None, User("u"), Stat(), List(), Uidl(), Retr(1), Top(1, 1), Capa()]),
)
def test_client_fuzz_only_remote_errors(data: bytes, command: Any) -> None:
    with contextlib.suppress(RemoteProtocolError):
        _run_client(data, command)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300)
    | st.lists(
        st.sampled_from(
            [
                b"USER a",
                b"PASS b",
                b"AUTH PLAIN",
                b" =",
                b"*",
                b"STLS",
                b"RETR 1",
                b"\r\n",
                b"LIST",
                b" ",
                b"QUIT",
                b"\n",
                b"\x00",
                b"TOP 1 2",
                b"Zm9v",
                b"APOP a b",
            ]
        ),
        max_size=40,
    ).map(b"".join)
)
def test_server_fuzz_only_remote_errors(data: bytes) -> None:
    server = Connection(SERVER, max_command_length=64, max_auth_line_length=128)
    server.send(Greeting("<1@x>"))
    server.receive_data(data)
    server.receive_data(b"")
    try:
        for _ in range(len(data) + 3):
            event = server.next_event()
            if event is NEED_DATA:
                return
            if event is PAUSED:
                server.data_to_send()
                if server.pending_command is None and not server.awaiting_tls:
                    continue
                if server.awaiting_tls:
                    server.tls_started()
                    continue
            elif type(event).__name__ == "ConnectionClosed":
                return
            else:
                reply = Ok() if type(event).__name__ in ("User", "Pass", "Stls", "Quit") else Err()
                try:
                    server.send(reply)
                except LocalProtocolError:
                    server.send(Err())
    except RemoteProtocolError:
        pass
