"""Generated sessions: round trip, chunking invariance, smuggling, fuzzing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protomata.smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Bdat,
    Connection,
    ConnectionClosed,
    Data,
    DataChunk,
    Ehlo,
    EndOfData,
    MailFrom,
    Quit,
    RcptTo,
    RemoteProtocolError,
    Reply,
    SMTPEvent,
    State,
)

from ._util import EHLO_LINES, default_reply, serve

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

local = st.text("abcdefghijklmnopqrstuvwxyz0123456789.+-_", min_size=1, max_size=20)
domains = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=15).map(
    lambda d: d + ".example"
)
addresses = st.builds(lambda a, d: f"{a}@{d}", local, domains)
param_keys = st.sampled_from(["SIZE", "BODY", "NOTIFY", "ORCPT", "X-FOO", "SMTPUTF8"])
param_values = st.none() | st.text("ABCxyz0123456789+,;", min_size=1, max_size=10)
params = st.lists(st.tuples(param_keys, param_values), max_size=3).map(tuple)
body_lines = st.sampled_from(
    [b".", b"..", b".x", b"x.", b"", b"hello", b"\x00\xff", b" . ", b"a\tb", b"." * 5]
)
bodies = st.lists(body_lines, max_size=30).map(lambda ls: b"".join(x + b"\r\n" for x in ls))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def serve_pieces(pieces: list[bytes]) -> list[SMTPEvent]:
    """Run a default-answering server over *pieces*; coalesce body chunks."""
    server = Connection(SERVER)
    server.send(Reply(220, "hi"))
    events: list[SMTPEvent] = []
    for piece in pieces:
        events += serve(server, piece)[0]
    merged: list[SMTPEvent] = []
    for event in events:
        if isinstance(event, DataChunk) and merged and isinstance(merged[-1], DataChunk):
            merged[-1] = DataChunk(merged[-1].data + event.data)
        else:
            merged.append(event)
    return merged


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[SMTPEvent], bytes]:
    """A pipelined client session: the events it sends and their wire bytes."""
    client = Connection(CLIENT)
    server = Connection(SERVER)
    client.receive_data(server.send(Reply(220, "hi")))
    assert client.next_event() == Reply(220, "hi")
    sent: list[SMTPEvent] = []
    wire: list[bytes] = []

    def send(event: SMTPEvent) -> None:
        data = client.send(event)
        wire.append(data)
        sent.append(event)
        _, replies = serve(server, data)
        client.receive_data(replies)
        while client.next_event() not in (NEED_DATA, PAUSED):
            pass

    send(Ehlo(draw(domains)))
    for _ in range(draw(st.integers(1, 3))):
        send(MailFrom(draw(st.just("") | addresses), draw(params)))
        for rcpt in draw(st.lists(addresses, min_size=1, max_size=3)):
            send(RcptTo(rcpt, draw(params)))
        body = draw(bodies)
        if draw(st.booleans()):
            send(Data())
            assert client.state is State.BODY
            # The body is sent in arbitrary pieces; the server sees it whole.
            for piece in split(body, draw(st.lists(st.integers(0, 500), max_size=4))):
                wire.append(client.send(DataChunk(piece)))
            if body:
                sent.append(DataChunk(body))
            send(EndOfData())
        else:
            send(Bdat(body, last=True))
    send(Quit())
    return sent, b"".join(wire)


@SETTINGS
@given(session=sessions(), cuts=st.lists(st.integers(0, 5000), max_size=10))
def test_round_trip_and_chunking_invariance(
    session: tuple[list[SMTPEvent], bytes], cuts: list[int]
) -> None:
    sent, wire = session
    assert serve_pieces([wire]) == sent
    assert serve_pieces(split(wire, cuts)) == sent


@settings(max_examples=20, deadline=None)
@given(session=sessions())
def test_byte_by_byte(session: tuple[list[SMTPEvent], bytes]) -> None:
    sent, wire = session
    assert serve_pieces([wire[i : i + 1] for i in range(len(wire))]) == sent


SMUGGLE_ENDINGS = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\r"]


@settings(max_examples=60, deadline=None)
@given(ending=st.sampled_from(SMUGGLE_ENDINGS), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_smuggled_end_of_data_is_body(ending: bytes, cuts: list[int]) -> None:
    smuggled = b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nforged\r\n"
    wire = (
        b"EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nreal"
        + ending
        + smuggled
        + b".\r\nQUIT\r\n"
    )
    events = serve_pieces(split(wire, cuts))
    assert [type(e).__name__ for e in events] == [
        "Ehlo",
        "MailFrom",
        "RcptTo",
        "Data",
        "DataChunk",
        "EndOfData",
        "Quit",
    ]
    body = events[4].data  # type: ignore[attr-defined]
    assert smuggled in body


@SETTINGS
@given(data=st.lists(st.binary(max_size=200), max_size=8))
def test_server_fuzz_only_remote_protocol_errors(data: list[bytes]) -> None:
    server = Connection(SERVER, max_message_size=1000, max_bdat_chunk_size=500)
    server.send(Reply(220, "hi"))
    # Start from a session that takes most commands.
    serve(server, b"EHLO x\r\n")
    try:
        for piece in data:
            if piece:  # b"" would mean EOF
                serve(server, piece)
        serve(server, b"")
    except RemoteProtocolError:
        assert server.state is State.ERROR


commands_like = st.sampled_from(
    [
        b"MAIL FROM:<a@x>\r\n",
        b"RCPT TO:<b@y>\r\n",
        b"DATA\r\n",
        b"BDAT 3\r\n",
        b"BDAT 2 LAST\r\n",
        b"AUTH PLAIN\r\n",
        b"STARTTLS\r\n",
        b".\r\n",
        b"\r\n",
        b"RSET\r\n",
        b"LHLO x\r\n",
        b"HELO y\r\n",
    ]
)


@SETTINGS
@given(data=st.lists(commands_like | st.binary(max_size=20), max_size=25))
def test_server_fuzz_command_soup(data: list[bytes]) -> None:
    server = Connection(SERVER, max_command_length=100, max_line_length=100)
    server.send(Reply(220, "hi"))
    try:
        for piece in data:
            if server.state is State.TLS_PENDING:
                server.start_tls_done()
            if piece:
                serve(server, piece)
    except RemoteProtocolError:
        assert server.state is State.ERROR


@SETTINGS
@given(
    data=st.lists(
        st.binary(min_size=1, max_size=100) | st.sampled_from([b"250 ok\r\n", b"354 go\r\n"]),
        max_size=10,
    )
)
def test_client_fuzz_only_remote_protocol_errors(data: list[bytes]) -> None:
    client = Connection(CLIENT)
    try:
        client.receive_data(b"220 hi\r\n")
        client.next_event()
        client.send(Ehlo("x"))
        client.receive_data(("\r\n".join(f"250-{x}" for x in EHLO_LINES[:-1]) + "\r\n").encode())
        client.receive_data(b"250 ENHANCEDSTATUSCODES\r\n")
        client.next_event()
        for event in (MailFrom("a@x"), RcptTo("b@y"), Data()):
            client.send(event)
        for piece in data:
            client.receive_data(piece)
            while True:
                event = client.next_event()
                if event is NEED_DATA or event is PAUSED or isinstance(event, ConnectionClosed):
                    break
                if client.state is State.BODY:
                    client.send(EndOfData())
    except RemoteProtocolError:
        assert client.state is State.ERROR


def test_default_reply_covers_everything() -> None:
    # guard for the helpers above: every event kind gets a definite answer
    assert default_reply(Data())[0].code == 354
    assert default_reply(DataChunk(b"x")) == []
