"""Property and fuzz tests for both SMTP/LMTP parsers, and regressions they found.

Server role (commands, DATA, BDAT, AUTH responses, LMTP) and client role
(replies) each get: chunking invariance (any split down to single bytes
gives the same events), a round trip (what one role sends the other parses
back equal) and a fuzz test (arbitrary or mutated input in arbitrary splits
raises nothing but RemoteProtocolError, and buffers stay bounded).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protomata.smtp import (
    CLIENT,
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
    LocalProtocolError,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    RemoteProtocolError,
    Reply,
    Rset,
    SMTPEvent,
    StartTLS,
    State,
    Vrfy,
)

from ._util import EHLO_LINES, default_reply

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [p for p in pieces if p]  # b"" would mean EOF


def merge_chunks(events: list[Any]) -> list[Any]:
    out: list[Any] = []
    for event in events:
        if type(event) is DataChunk and out and type(out[-1]) is DataChunk:
            out[-1] = DataChunk(out[-1].data + event.data)
        else:
            out.append(event)
    return out


# -- the server role -----------------------------------------------------------


def run_server(pieces: list[bytes], lmtp: bool = False, **limits: Any) -> list[Any]:
    """Feed *pieces* to a server that answers everything by default.

    Returns the events (body chunks merged), with the string ``"error"`` in
    place of a RemoteProtocolError.  Stops at STARTTLS: the bytes pipelined
    after it are dropped by design, so what follows depends on the split.
    """
    server = Connection(SERVER, lmtp=lmtp, **limits)
    server.send(Reply(220, "hi"))
    events: list[Any] = []
    buffered_max = max(server.max_command_length, server.max_auth_line_length)
    for piece in [*(p for p in pieces if p), b""]:  # b"" is EOF
        server.receive_data(piece)
        while True:
            try:
                event = server.next_event()
            except RemoteProtocolError as exc:
                assert server.state is State.ERROR
                assert 400 <= exc.error_status_hint <= 599
                with pytest.raises(RemoteProtocolError):
                    server.next_event()
                return [*merge_chunks(events), "error"]
            if event is NEED_DATA:
                assert len(server.trailing_data[0]) <= buffered_max
                break
            if event is PAUSED:
                assert server.state is State.CLOSED
                return merge_chunks(events)
            events.append(event)
            if type(event) is ConnectionClosed or type(event) is StartTLS:
                return merge_chunks(events)
            if type(event) is DataChunk:
                assert event.data
                continue
            for reply in default_reply(event):
                server.send(reply)
            while server.replies_owed:  # LMTP: one reply per recipient
                assert lmtp
                server.send(Reply(250, "ok", "2.0.0"))
    return merge_chunks(events)


COMMAND_LINES = [
    b"EHLO client.example\r\n",
    b"HELO client.example\r\n",
    b"LHLO client.example\r\n",
    b"MAIL FROM:<alice@x.example> SIZE=100 BODY=8BITMIME\r\n",
    b"MAIL FROM:<>\r\n",
    b'MAIL FROM: <@relay.example:"john doe"@x.example>\r\n',
    b"RCPT TO:<bob@y.example> NOTIFY=SUCCESS\r\n",
    b'RCPT TO:<"a\\"b"@y.example>\r\n',
    b"DATA\r\n",
    b"BDAT 5\r\nhello",
    b"BDAT 3 LAST\r\nbye",
    b"BDAT 0 LAST\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    b"AGFsaWNlAHNlY3JldA==\r\n",
    b"*\r\n",
    b"RSET\r\n",
    b"NOOP what\r\n",
    b"HELP\r\n",
    b"VRFY bob\r\n",
    b"EXPN list\r\n",
    b"QUIT\r\n",
    b"STARTTLS\r\n",
    b"FOO bar\r\n",
    b"MAIL FROM:alice\r\n",
    b"\r\n",
    b"x" * 600 + b"\r\n",
]
BODY_LINES = [b"hello\r\n", b".\r\n", b"..stuffed\r\n", b"a\nb\r\n", b"\r\n", b"z" * 120 + b"\r\n"]
wire_sessions = st.lists(
    st.sampled_from(COMMAND_LINES) | st.sampled_from(BODY_LINES) | st.binary(max_size=12),
    max_size=30,
).map(b"".join)


@FAST
@given(wire=wire_sessions, cuts=st.lists(st.integers(0, 5000), max_size=12), lmtp=st.booleans())
def test_server_chunking_invariance(wire: bytes, cuts: list[int], lmtp: bool) -> None:
    limits = {"max_line_length": 100, "max_message_size": 200, "max_bdat_chunk_size": 4}
    whole = run_server([wire], lmtp, **limits)
    assert run_server(split_at(wire, cuts), lmtp, **limits) == whole
    assert run_server([wire[i : i + 1] for i in range(len(wire))], lmtp, **limits) == whole


domains = st.from_regex(r"[a-z0-9-]{1,12}\.example", fullmatch=True)
local_parts = st.from_regex(r"[a-z0-9.+_-]{1,12}", fullmatch=True) | st.from_regex(
    r'"[a-z <>@\\\\"]{0,8}"', fullmatch=True
).filter(lambda q: q.count('"') == 2 and not q.endswith('\\"'))
addresses = st.builds(lambda a, d: f"{a}@{d}", local_parts, domains)
params = st.lists(
    st.tuples(
        st.sampled_from(["SIZE", "BODY", "NOTIFY", "X-Y"]),
        st.none() | st.from_regex(r"[A-Za-z0-9+,;]{1,8}", fullmatch=True),
    ),
    max_size=3,
).map(tuple)
free_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\x7f"),
    max_size=20,
)
misc_commands = st.one_of(
    st.builds(Noop, free_text.map(str.strip)),
    st.builds(Help, free_text.map(str.strip)),
    st.builds(Vrfy, free_text.map(str.strip).filter(bool)),
    st.builds(Expn, free_text.map(str.strip).filter(bool)),
)
transactions = st.builds(
    lambda mail, rcpts, misc: [mail, *rcpts, *misc, Rset()],
    st.builds(MailFrom, st.just("") | addresses, params),
    st.lists(st.builds(RcptTo, addresses, params), max_size=3),
    st.lists(misc_commands, max_size=2),
)


@FAST
@given(
    hello=domains,
    mechanism=st.none() | st.from_regex(r"[A-Z0-9_-]{1,20}", fullmatch=True),
    groups=st.lists(transactions, max_size=4),
    lmtp=st.booleans(),
    cuts=st.lists(st.integers(0, 3000), max_size=8),
)
def test_server_round_trip(
    hello: str, mechanism: str | None, groups: list[list[SMTPEvent]], lmtp: bool, cuts: list[int]
) -> None:
    # Every command our client writes, our server parses back equal.
    sent: list[SMTPEvent] = [Lhlo(hello) if lmtp else Ehlo(hello)]
    if mechanism is not None:
        sent += [Auth(mechanism), AuthContinuation("*")]
    sent += [command for group in groups for command in group]
    sent.append(Quit())

    def answer(event: SMTPEvent) -> Reply:
        return Reply(334, "") if type(event) is Auth else Reply(250, "ok")

    client = Connection(CLIENT, lmtp=lmtp)
    server = Connection(SERVER, lmtp=lmtp)
    client.receive_data(server.send(Reply(220, "hi")))
    assert client.next_event() == Reply(220, "hi")
    wire = b""
    for command in sent:
        data = client.send(command)
        wire += data
        server.receive_data(data)
        assert server.next_event() == command
        reply = answer(command)
        client.receive_data(server.send(reply))
        assert client.next_event() == reply
    # The same wire bytes, in arbitrary pieces, parse the same.
    again = Connection(SERVER, lmtp=lmtp)
    again.send(Reply(220, "hi"))
    got: list[Any] = []
    for piece in split_at(wire, cuts):
        again.receive_data(piece)
        while (event := again.next_event()) not in (NEED_DATA, PAUSED):
            got.append(event)
            again.send(answer(event))
    assert got == sent


def _mutate(wire: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(wire)
    for pos, drop, insert in edits:
        at = pos % (len(data) + 1)
        data[at : at + drop] = insert
    return bytes(data)


@FAST
@given(
    wire=wire_sessions,
    edits=st.lists(
        st.tuples(st.integers(0, 4000), st.integers(0, 3), st.binary(max_size=4)), max_size=6
    ),
    cuts=st.lists(st.integers(0, 5000), max_size=12),
    lmtp=st.booleans(),
)
def test_server_fuzz_mutated_sessions(
    wire: bytes, edits: list[tuple[int, int, bytes]], cuts: list[int], lmtp: bool
) -> None:
    # run_server asserts: only RemoteProtocolError, ERROR sticks, bounded buffer.
    mutated = _mutate(wire, edits)
    limits = {"max_command_length": 80, "max_auth_line_length": 120, "max_line_length": 90}
    assert run_server(split_at(mutated, cuts), lmtp, **limits) == run_server(
        [mutated], lmtp, **limits
    )


@FAST
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 700), max_size=12))
def test_server_fuzz_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    for prefix in (
        b"",
        b"EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n",
        b"EHLO x\r\nSTARTTLS\r\n",
    ):
        run_server(split_at(prefix + data, cuts), max_command_length=64, max_line_length=64)


@pytest.mark.parametrize(
    "prefix",
    [
        b"",  # a command line
        b"EHLO x\r\nAUTH PLAIN\r\n",  # an AUTH response line
        b"EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n",  # a body line
    ],
    ids=["command", "auth-response", "body"],
)
def test_server_ten_megabytes_without_line_end_is_an_error(prefix: bytes) -> None:
    server = Connection(SERVER)
    server.send(Reply(220, "hi"))
    if prefix:  # b"" would mean EOF
        server.receive_data(prefix)
    while (event := server.next_event()) not in (NEED_DATA, PAUSED):
        for reply in default_reply(event):
            server.send(reply)
    block = b"a" * 65536
    with pytest.raises(RemoteProtocolError) as info:
        for _ in range(160):  # 10 MiB
            server.receive_data(block)
            while (event := server.next_event()) not in (NEED_DATA, PAUSED):
                assert type(event) is DataChunk
            # Never more than one line limit (plus one read) is held.
            assert len(server.trailing_data[0]) <= server.max_auth_line_length + len(block)
    assert info.value.error_status_hint == 500
    assert server.state is State.ERROR


def test_server_ten_megabytes_in_one_bdat_chunk_is_not_buffered() -> None:
    server = Connection(SERVER, max_bdat_chunk_size=1000)
    server.send(Reply(220, "hi"))
    server.receive_data(b"EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
    while (event := server.next_event()) not in (NEED_DATA, PAUSED):
        for reply in default_reply(event):
            server.send(reply)
    size = 10 * 1024 * 1024
    server.receive_data(b"BDAT %d LAST\r\n" % size)
    for _ in range(size // 65536 - 1):
        server.receive_data(b"b" * 65536)
        assert server.next_event() is NEED_DATA
        assert len(server.trailing_data[0]) == 0
    server.receive_data(b"b" * 65536)
    event = server.next_event()
    assert type(event) is BadCommand and event.reply.code == 552


# -- the client role ------------------------------------------------------------

reply_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7FF, blacklist_characters="\x7f"),
    max_size=30,
)
statuses = st.none() | st.from_regex(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True)


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    code = draw(st.integers(200, 599).filter(lambda c: c != 421))
    status = draw(statuses)
    if status is not None:
        status = None if code < 400 and code >= 300 else str(code)[0] + status[1:]
    return Reply(code, draw(st.lists(reply_text, min_size=1, max_size=4)), status)


def pipelining_pair(lmtp: bool = False) -> tuple[Connection, Connection]:
    client = Connection(CLIENT, lmtp=lmtp)
    server = Connection(SERVER, lmtp=lmtp)
    client.receive_data(server.send(Reply(220, "hi")))
    client.next_event()
    server.receive_data(client.send(Lhlo("c") if lmtp else Ehlo("c")))
    server.next_event()
    client.receive_data(server.send(Reply(250, EHLO_LINES)))
    client.next_event()
    assert client.extensions.pipelining
    return client, server


@FAST
@given(sent=st.lists(replies(), min_size=1, max_size=12), cuts=st.lists(st.integers(0, 4000)))
def test_client_round_trip_and_chunking_invariance(sent: list[Reply], cuts: list[int]) -> None:
    client, server = pipelining_pair()
    wire = b""
    for reply in sent:
        server.receive_data(client.send(Rset()))
        assert server.next_event() == Rset()
        wire += server.send(reply)
    for pieces in ([wire], split_at(wire, cuts), [wire[i : i + 1] for i in range(len(wire))]):
        client, _ = pipelining_pair()
        for _ in sent:
            client.send(Rset())
        got = []
        for piece in pieces:
            client.receive_data(piece)
            while (event := client.next_event()) is not NEED_DATA:
                got.append(event)
        assert got == sent
        assert client.replies_owed == 0


def run_client(pieces: list[bytes], lmtp: bool = False) -> list[Any]:
    """A pipelining client with a transaction under way reads *pieces*."""
    client, _ = pipelining_pair(lmtp)
    for command in (MailFrom("a@x"), RcptTo("b@y"), RcptTo("c@y"), Data()):
        client.send(command)
    got: list[Any] = []
    for piece in [*(p for p in pieces if p), b""]:  # b"" is EOF
        client.receive_data(piece)
        while True:
            try:
                event = client.next_event()
            except RemoteProtocolError:
                assert client.state is State.ERROR
                with pytest.raises(RemoteProtocolError):
                    client.next_event()
                return [*got, "error"]
            if event is NEED_DATA:
                assert len(client.trailing_data[0]) <= 2048
                break
            if event is PAUSED:
                # closed: whatever else arrives is read (and refused) later
                assert client.state is State.CLOSED
                break
            got.append(event)
            if type(event) is ConnectionClosed:
                return got
            assert type(event) is Reply
            # What we accepted, our server can send.
            Reply(event.code, event.lines, event.enhanced_status)
            if client.state is State.BODY and not client.replies_owed:
                client.send(DataChunk(b"body\r\n"))
                client.send(EndOfData())
    return got


REPLY_LINES = [
    b"250 2.1.0 ok\r\n",
    b"250-first\r\n",
    b"354 go ahead\r\n",
    b"550 5.1.1 no\r\n",
    b"452 4.2.2 full\r\n",
    b"250 ok\n",
    b"421 4.3.2 bye\r\n",
    b"220 ready\r\n",
    b"250\r\n",
    b"2500 no\r\n",
    b"199 no\r\n",
]


@FAST
@given(
    stream=st.lists(st.sampled_from(REPLY_LINES) | st.binary(max_size=10), max_size=15).map(
        b"".join
    ),
    cuts=st.lists(st.integers(0, 500), max_size=10),
    lmtp=st.booleans(),
)
def test_client_fuzz(stream: bytes, cuts: list[int], lmtp: bool) -> None:
    whole = run_client([stream], lmtp)
    assert run_client(split_at(stream, cuts), lmtp) == whole


def test_client_ten_megabytes_without_line_end_is_an_error() -> None:
    client, _ = pipelining_pair()
    client.send(Rset())
    with pytest.raises(RemoteProtocolError):
        for _ in range(160):
            client.receive_data(b"250-" + b"a" * 65532)
            assert client.next_event() is NEED_DATA
    assert client.state is State.ERROR
    assert len(client.trailing_data[0]) <= 2048 + 65536


def test_client_endless_multiline_reply_is_an_error() -> None:
    client, _ = pipelining_pair()
    client.send(Rset())
    with pytest.raises(RemoteProtocolError, match="more than 1000 lines"):
        for _ in range(2000):
            client.receive_data(b"250-more\r\n")
            assert client.next_event() is NEED_DATA


# -- regressions ------------------------------------------------------------------


def _body_events(pieces: list[bytes], **limits: Any) -> list[Any]:
    head = b"EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
    return run_server([head, *pieces], **limits)[4:]


def test_regression_too_long_body_line_hands_out_the_same_bytes_however_split() -> None:
    # Was: the bytes before an over-long body line came out as a DataChunk
    # when they arrived in an earlier read, and were lost when they arrived
    # together with the long line.
    body = b"short\r\n" + b"x" * 150
    whole = _body_events([body], max_line_length=100)
    assert whole == [DataChunk(b"short\r\n" + b"x" * 100), "error"]
    assert _body_events([body[:9], body[9:]], max_line_length=100) == whole
    assert _body_events([bytes([b]) for b in body], max_line_length=100) == whole


def test_regression_message_size_limit_hands_out_exactly_the_limit() -> None:
    # Was: split bodies produced DataChunks up to the read that crossed the
    # limit, a body in one piece none at all.
    body = b"a" * 60 + b"\r\n" + b"b" * 60 + b"\r\n.\r\n"
    for pieces in ([body], [body[:62], body[62:]], [bytes([b]) for b in body]):
        events = _body_events(pieces, max_message_size=100)
        assert events[0] == DataChunk(b"a" * 60 + b"\r\n" + b"b" * 38)
        assert type(events[1]) is BadCommand and events[1].reply.code == 552


def test_regression_quoted_angle_bracket_address_round_trips() -> None:
    # Was: the parser accepted <"a<b>"@x> but MailFrom("\"a<b>\"@x") raised.
    line = b'MAIL FROM:<"a<b> c"@x.example>'
    server = Connection(SERVER)
    server.send(Reply(220, "hi"))
    server.receive_data(b"EHLO x\r\n" + line + b"\r\n")
    server.next_event()
    server.send(Reply(250, "ok"))
    event = server.next_event()
    assert event == MailFrom('"a<b> c"@x.example')
    client = Connection(CLIENT)
    client.receive_data(b"220 hi\r\n")
    client.next_event()
    client.send(Ehlo("x"))
    client.receive_data(b"250 ok\r\n")
    client.next_event()
    assert client.send(MailFrom('"a<b> c"@x.example')) == line + b"\r\n"


@pytest.mark.parametrize(
    "line",
    [
        # a quote inside the source route left an unbalanced quote behind
        b'MAIL FROM:<@relay.exam"p:john doe"@x.example>',
        # "@a:@b:c" is no source route; "@b:c" would be sent back as one
        b"MAIL FROM:<@a.example:@b.example:c@x.example>",
        b"RCPT TO:<@a.example:>",
    ],
)
def test_regression_bad_source_routes_are_501(line: bytes) -> None:
    events = run_server([b"EHLO x\r\nMAIL FROM:<a@x>\r\n" + line + b"\r\n"])
    assert type(events[-2]) is BadCommand and events[-2].reply.code == 501


def test_source_route_is_still_ignored() -> None:
    events = run_server([b"EHLO x\r\nMAIL FROM:<@a.example,@b.example:c@x.example>\r\n"])
    assert events[-1] == ConnectionClosed()
    assert events[-2] == MailFrom("c@x.example")


@pytest.mark.parametrize("address", ['"a', '"a\\"', "a<b", "a b", "@relay:a@x", '"a"b c'], ids=repr)
def test_addresses_that_would_not_read_back_are_refused(address: str) -> None:
    with pytest.raises(LocalProtocolError):
        MailFrom(address)
    assert MailFrom('"a b"@x').address == '"a b"@x'


@pytest.mark.parametrize(
    "line",
    [
        "\ufb06ARTTLS",  # LATIN SMALL LIGATURE ST upper-cases to "ST"
        "MA\u0131L FROM:<a@x>",  # dotless i upper-cases to "I"
        "\u017fTARTTLS",  # long s upper-cases to "S"
        "RCPT TO:<a@x>",  # control: plain ASCII works
    ],
)
def test_regression_verbs_are_ascii_only(line: str) -> None:
    # Was: str.upper() folded these into real verbs; another server would not.
    events = run_server([b"EHLO x\r\nMAIL FROM:<a@x>\r\n" + line.encode() + b"\r\n"])
    if line.isascii():
        assert events[-2] == RcptTo("a@x")
    else:
        assert type(events[-2]) is BadCommand and events[-2].reply.code == 500


def test_regression_bdat_last_keyword_is_ascii_only() -> None:
    wire = b"EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 1 LA\xc5\xbfT\r\n"
    events = run_server([wire])
    assert type(events[-2]) is BadCommand and events[-2].reply.code == 501


def test_lmtp_replies_per_recipient_in_any_split() -> None:
    wire = (
        b"LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n"
        b"DATA\r\nhi\r\n.\r\nQUIT\r\n"
    )
    whole = run_server([wire], lmtp=True)
    assert [type(e) for e in whole] == [
        Lhlo,
        MailFrom,
        RcptTo,
        RcptTo,
        Data,
        DataChunk,
        EndOfData,
        Quit,
    ]
    assert run_server([wire[i : i + 1] for i in range(len(wire))], lmtp=True) == whole


def test_helpers_cover_the_event_kinds() -> None:
    # default_reply answers everything the generators produce
    for event in (Helo("x"), StartTLS(), Bdat(b"x", last=True), Auth("PLAIN"), Rset()):
        assert default_reply(event)
