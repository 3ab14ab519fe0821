"""SMTP/LMTP connection: sessions, sequencing, syntax, STARTTLS, limits, LMTP, BDAT, AUTH."""

from __future__ import annotations

import pytest

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
    Extensions,
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
    StartTLS,
    State,
    Vrfy,
)

from ._util import EHLO_LINES, events_of, serve

GREETING = Reply(220, "mx.example ESMTP")


def greeted_server(**kwargs: object) -> Connection:
    server = Connection(SERVER, **kwargs)  # type: ignore[arg-type]
    assert server.next_event() is PAUSED  # nothing is parsed before the greeting
    assert server.send(GREETING) == b"220 mx.example ESMTP\r\n"
    return server


def ready_server(**kwargs: object) -> Connection:
    server = greeted_server(**kwargs)
    serve(server, b"EHLO client.example\r\n")
    assert server.state is State.READY
    return server


def greeted_client(lmtp: bool = False) -> Connection:
    client = Connection(CLIENT, lmtp=lmtp)
    assert events_of(client, b"220 mx.example ESMTP\r\n") == [Reply(220, "mx.example ESMTP")]
    return client


def ready_client(lines: list[str] = EHLO_LINES) -> Connection:
    client = greeted_client()
    client.send(Ehlo("client.example"))
    events_of(client, reply_bytes(Reply(250, lines)))
    assert client.state is State.READY
    return client


def reply_bytes(reply: Reply) -> bytes:
    server = Connection(SERVER)
    return server.send(reply)


def bad_code(events: list[object]) -> list[int]:
    return [e.reply.code for e in events if isinstance(e, BadCommand)]


# -- a whole session between our two machines ---------------------------------


def test_full_pipelined_transaction_between_client_and_server() -> None:
    client = Connection(CLIENT)
    server = Connection(SERVER)
    events_of(client, server.send(GREETING))
    got, wire = serve(server, client.send(Ehlo("client.example")))
    assert got == [Ehlo("client.example")]
    assert events_of(client, wire) == [Reply(250, EHLO_LINES)]
    assert client.extensions.pipelining and client.extensions.chunking
    assert client.extensions.size == 10240000
    assert client.extensions.auth_mechanisms == {"PLAIN", "LOGIN"}
    assert server.extensions == client.extensions

    batch = (
        client.send(MailFrom("alice@example.org", [("SIZE", "42"), ("BODY", "8BITMIME")]))
        + client.send(RcptTo("bob@example.net", {"NOTIFY": "NEVER"}))
        + client.send(RcptTo("carol@example.net"))
        + client.send(Data())
    )
    assert batch == (
        b"MAIL FROM:<alice@example.org> SIZE=42 BODY=8BITMIME\r\n"
        b"RCPT TO:<bob@example.net> NOTIFY=NEVER\r\n"
        b"RCPT TO:<carol@example.net>\r\nDATA\r\n"
    )
    got, wire = serve(server, batch)
    assert got == [
        MailFrom("alice@example.org", (("SIZE", "42"), ("BODY", "8BITMIME"))),
        RcptTo("bob@example.net", (("NOTIFY", "NEVER"),)),
        RcptTo("carol@example.net"),
        Data(),
    ]
    assert server.state is State.BODY
    replies = events_of(client, wire)
    assert [r.code for r in replies] == [250, 250, 250, 354]  # type: ignore[attr-defined]
    assert replies[0] == Reply(250, "ok", "2.0.0")
    assert client.state is State.BODY

    body = client.send(DataChunk(b"Subject: hi\r\n\r\n.leading dot\r\n")) + client.send(EndOfData())
    assert body == b"Subject: hi\r\n\r\n..leading dot\r\n.\r\n"
    got, wire = serve(server, body)
    assert got == [DataChunk(b"Subject: hi\r\n\r\n.leading dot\r\n"), EndOfData()]
    assert events_of(client, wire) == [Reply(250, "queued", "2.0.0")]
    assert client.state is server.state is State.READY

    got, wire = serve(server, client.send(Quit()))
    assert got == [Quit()]
    assert events_of(client, wire) == [Reply(221, "bye", "2.0.0")]
    assert client.state is server.state is State.CLOSED
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()
    client.receive_data(b"")
    assert client.next_event() == ConnectionClosed()


def test_pipelined_commands_judged_in_order_after_each_reply() -> None:
    server = ready_server()
    server.receive_data(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
    assert server.next_event() == MailFrom("a@x")
    assert server.next_event() is PAUSED  # the MAIL reply is owed first
    server.send(Reply(550, "no", "5.7.1"))
    event = server.next_event()
    assert isinstance(event, BadCommand)
    assert event.reply.code == 503
    assert event.line == b"RCPT TO:<b@y>"
    server.send(event.reply)
    event = server.next_event()
    assert isinstance(event, BadCommand) and event.reply.code == 503
    server.send(event.reply)
    assert server.next_event() is NEED_DATA
    assert server.state is State.READY


def test_server_owes_greeting_and_one_reply_per_command() -> None:
    server = Connection(SERVER)
    with pytest.raises(LocalProtocolError):
        server.send(Ehlo("x"))  # type: ignore[arg-type]
    server.send(GREETING)
    with pytest.raises(LocalProtocolError):
        server.send(Reply(250, "nothing to answer"))
    server.send(Reply(421, "shutting down", "4.3.2"))  # always allowed
    assert server.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        server.send(Reply(250, "x"))


def test_client_waits_for_greeting_and_replies_without_pipelining() -> None:
    client = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(Ehlo("x"))
    client = ready_client(["mx.example"])  # no PIPELINING offered
    client.send(MailFrom("a@x"))
    with pytest.raises(LocalProtocolError):
        client.send(RcptTo("b@y"))
    client = ready_client()
    client.send(MailFrom("a@x"))
    client.send(RcptTo("b@y"))
    client.send(Data())
    with pytest.raises(LocalProtocolError):  # DATA ends a pipelined group
        client.send(Noop())


def test_helo_session_has_no_extensions() -> None:
    client = greeted_client()
    server = greeted_server()
    got, wire = serve(server, client.send(Helo("old.example")))
    assert got == [Helo("old.example")]
    events_of(client, wire)
    assert client.state is State.READY
    assert not client.extensions and not server.extensions


def test_simple_commands_round_trip() -> None:
    client = ready_client()
    server = ready_server()
    for event in [Noop(), Noop("x y"), Help(), Help("MAIL"), Vrfy("bob"), Expn("list"), Rset()]:
        wire = client.send(event)
        got, reply = serve(server, wire)
        assert got == [event]
        assert [e.code for e in events_of(client, reply)] == [250]  # type: ignore[attr-defined]


def test_rset_aborts_transaction() -> None:
    server = ready_server()
    got, _ = serve(server, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRSET\r\nDATA\r\n")
    assert got[2] == Rset()
    assert bad_code(got) == [503]
    assert server.state is State.READY


# -- syntax and sequencing ----------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"FOO bar", 500),
        (b"MAIL TO:<a@x>", 501),
        (b"MAIL FROM:a@x", 501),
        (b"MAIL FROM:<a@x", 501),
        (b"MAIL FROM:<a b@x>", 501),
        (b"MAIL FROM:<a@x> =bad", 501),
        (b"MAIL FROM:<a@x> SIZE=", 501),
        (b"MAIL FROM:<a@x>SIZE=1", 501),
        (b"EHLO", 501),
        (b"EHLO a b", 501),
        (b"DATA now", 501),
        (b"VRFY", 501),
        (b"AUTH", 501),
        (b"AUTH PLAIN a b", 501),
        (b"AUTH PLAIN !!!", 501),
        (b"BDAT x", 501),
        (b"BDAT 10 NOTLAST", 501),
        (b"MAIL FROM:<\xff@x>", 500),
        (b"NOOP \x00", 500),
        (b"NOOP a\nb", 500),
        (b"LHLO x", 500),
    ],
)
def test_syntax_errors_become_bad_commands(line: bytes, code: int) -> None:
    server = ready_server()
    got, wire = serve(server, line + b"\r\n")
    assert bad_code(got) == [code]
    assert wire.startswith(str(code).encode())
    assert got[0].line == line  # type: ignore[attr-defined]
    # the session goes on
    assert serve(server, b"NOOP\r\n")[0] == [Noop()]


def test_rcpt_needs_address() -> None:
    server = ready_server()
    serve(server, b"MAIL FROM:<>\r\n")
    assert server.state is State.MAIL
    assert bad_code(serve(server, b"RCPT TO:<>\r\n")[0]) == [501]


def test_tolerated_path_forms() -> None:
    server = ready_server()
    got, _ = serve(server, b"mail from: <@relay.example:a@x> BODY=8BITMIME\r\n")
    assert got == [MailFrom("a@x", (("BODY", "8BITMIME"),))]
    got, _ = serve(server, b'RCPT TO:<"john doe"@x> NOTIFY=SUCCESS,FAILURE\r\n')
    assert got == [RcptTo('"john doe"@x', (("NOTIFY", "SUCCESS,FAILURE"),))]
    got, _ = serve(server, b"RCPT TO:<Postmaster>\r\n")
    assert got == [RcptTo("Postmaster")]
    got, _ = serve(server, "RCPT TO:<jörg@exämple.de>\r\n".encode())
    assert got == [RcptTo("jörg@exämple.de")]


@pytest.mark.parametrize(
    ("commands", "code"),
    [
        (b"RCPT TO:<a@x>\r\n", 503),
        (b"DATA\r\n", 503),
        (b"MAIL FROM:<a@x>\r\nMAIL FROM:<a@x>\r\n", 503),
        (b"MAIL FROM:<a@x>\r\nDATA\r\n", 503),
        (b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nAUTH PLAIN\r\n", 503),
        (b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nSTARTTLS\r\n", 503),
    ],
)
def test_sequence_errors_give_503(commands: bytes, code: int) -> None:
    server = ready_server()
    assert bad_code(serve(server, commands)[0]) == [code]


def test_commands_before_hello_give_503() -> None:
    server = greeted_server()
    got, wire = serve(server, b"MAIL FROM:<a@x>\r\n")
    assert bad_code(got) == [503]
    assert b"HELO/EHLO" in wire


# -- STARTTLS -----------------------------------------------------------------


def test_starttls_injection_is_discarded_by_server() -> None:
    server = ready_server()
    server.receive_data(b"STARTTLS\r\nMAIL FROM:<attacker@x>\r\n")
    assert server.next_event() == StartTLS()
    # dropped as soon as STARTTLS is parsed: nothing may follow it (RFC 3207 5)
    assert server.trailing_data == (b"", False)
    assert server.discarded_bytes == len(b"MAIL FROM:<attacker@x>\r\n")
    assert server.next_event() is PAUSED
    server.send(Reply(220, "go ahead"))
    assert server.state is State.TLS_PENDING
    server.receive_data(b"RCPT TO:<more@x>\r\n")  # still plaintext: dropped
    assert server.next_event() is PAUSED
    assert server.discarded_bytes == len(b"MAIL FROM:<attacker@x>\r\nRCPT TO:<more@x>\r\n")
    server.start_tls_done()
    assert server.tls_active and server.state is State.NEED_HELLO
    assert server.next_event() is NEED_DATA  # the injected MAIL never shows up
    assert bad_code(serve(server, b"MAIL FROM:<a@x>\r\n")[0]) == [503]  # EHLO first
    serve(server, b"EHLO again\r\n")
    assert bad_code(serve(server, b"STARTTLS\r\n")[0]) == [503]


def test_starttls_refused_keeps_session() -> None:
    server = ready_server()
    server.receive_data(b"STARTTLS\r\n")
    assert server.next_event() == StartTLS()
    server.send(Reply(454, "TLS not available", "4.7.0"))
    assert server.state is State.READY
    with pytest.raises(LocalProtocolError):
        server.start_tls_done()


def test_starttls_response_injection_discarded_by_client() -> None:
    client = ready_client()
    client.send(StartTLS())
    got = events_of(client, b"220 go ahead\r\n250 injected\r\n")
    assert got == [Reply(220, "go ahead")]
    assert client.state is State.TLS_PENDING
    assert client.discarded_bytes == len(b"250 injected\r\n")
    with pytest.raises(LocalProtocolError):
        client.send(Ehlo("x"))
    client.start_tls_done()
    assert not client.extensions
    assert client.state is State.NEED_HELLO
    assert client.send(Ehlo("client.example")) == b"EHLO client.example\r\n"


# -- injection through arguments --------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: MailFrom("a@x>\r\nRCPT TO:<b@y"),
        lambda: MailFrom("a@x\r\nRSET"),
        lambda: RcptTo("b@y\n"),
        lambda: RcptTo("b\x00@y"),
        lambda: MailFrom("a@x", {"SIZE": "1\r\nRSET"}),
        lambda: MailFrom("a@x", {"X\r\nY": None}),
        lambda: Ehlo("x\r\nMAIL FROM:<a@b>"),
        lambda: Helo("a b"),
        lambda: Noop("a\rb"),
        lambda: Vrfy(""),
        lambda: Auth("PLAIN", "abc\r\nQUIT"),
        lambda: AuthContinuation("abc\n"),
        lambda: Reply(250, ["ok\r\n250 injected"]),
        lambda: Reply(250, "ok", "5.0.0"),
        lambda: Reply(600, "x"),
        lambda: Reply(250, "x", "2.0"),
        lambda: RcptTo(""),
        lambda: MailFrom("<a@x>"),
    ],
)
def test_invalid_arguments_raise_local_protocol_error(make: object) -> None:
    with pytest.raises(LocalProtocolError):
        make()  # type: ignore[operator]


def test_client_rejects_out_of_place_events() -> None:
    client = ready_client()
    with pytest.raises(LocalProtocolError):
        client.send(DataChunk(b"x"))
    with pytest.raises(LocalProtocolError):
        client.send(EndOfData())
    with pytest.raises(LocalProtocolError):
        client.send(Reply(250, "x"))
    with pytest.raises(LocalProtocolError):
        client.send(AuthContinuation("abc="))
    with pytest.raises(LocalProtocolError):
        client.send(Lhlo("x"))


# -- limits and errors --------------------------------------------------------


def test_command_line_limit() -> None:
    server = ready_server()
    line = b"NOOP " + b"x" * 505 + b"\r\n"
    assert len(line) == 512
    assert serve(server, line)[0] == [Noop("x" * 505)]
    got, wire = serve(server, b"NOOP " + b"x" * 506 + b"\r\n")
    assert bad_code(got) == [500]
    assert wire == b"500 5.5.6 Line too long\r\n"
    # AUTH may be longer (RFC 4954): an XOAUTH2-sized token fits
    token = "A" * 4000
    assert serve(server, f"AUTH XOAUTH2 {token}\r\n".encode())[0] == [Auth("XOAUTH2", token)]
    server.receive_data(b"NOOP " + b"x" * 12290 + b"\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        server.next_event()
    assert info.value.error_status_hint == 500
    assert server.state is State.ERROR
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    with pytest.raises(LocalProtocolError):
        server.send(Reply(250, "x"))


def test_command_line_limit_configurable() -> None:
    server = ready_server(max_command_length=2048)
    assert serve(server, b"NOOP " + b"x" * 1000 + b"\r\n")[0] == [Noop("x" * 1000)]
    server = ready_server(max_auth_line_length=100)
    server.receive_data(b"NOOP " + b"x" * 600 + b"\r\n")
    with pytest.raises(RemoteProtocolError):
        server.next_event()


def _into_body(server: Connection) -> None:
    serve(server, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
    assert server.state is State.BODY


def test_text_line_limit_in_data() -> None:
    server = ready_server()
    _into_body(server)
    server.receive_data(b"x" * 999 + b"\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        events_of(server)
    assert info.value.error_status_hint == 500


def test_message_size_limit_reads_to_end_then_552() -> None:
    server = ready_server(max_message_size=100)
    _into_body(server)
    got, wire = serve(server, b"x" * 60 + b"\r\n")
    assert got == [DataChunk(b"x" * 60 + b"\r\n")]
    got, wire = serve(server, b"y" * 60 + b"\r\n.\r\nNOOP\r\n")
    assert bad_code(got) == [552]
    assert [e for e in got if isinstance(e, DataChunk)] == [DataChunk(b"y" * 38)]
    assert got[-1] == Noop()
    assert wire.startswith(b"552 5.3.4 ")
    assert server.state is State.READY


def test_eof_handling() -> None:
    server = ready_server()
    server.receive_data(b"NOOP")
    server.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    server = ready_server()
    _into_body(server)
    server.receive_data(b"partial body\r\n")
    server.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        events_of(server)
    client = ready_client()
    client.send(Noop())
    client.receive_data(b"250-partial\r\n")
    client.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        client.next_event()


def test_client_rejects_unsolicited_and_malformed_replies() -> None:
    client = ready_client()
    client.receive_data(b"250 surprise\r\n")
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    assert client.state is State.ERROR
    client = ready_client()
    client.send(Noop())
    client.receive_data(b"250-a\r\n251 b\r\n")
    with pytest.raises(RemoteProtocolError):
        client.next_event()


def test_421_closes_from_either_side() -> None:
    client = ready_client()
    client.send(MailFrom("a@x"))
    client.send(RcptTo("b@y"))
    assert events_of(client, b"421 4.3.2 bye\r\n") == [Reply(421, "bye", "4.3.2")]
    assert client.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        client.send(Noop())
    server = ready_server()
    server.receive_data(b"MAIL FROM:<a@x>\r\n")
    server.next_event()
    server.send(Reply(421, "too busy"))
    assert server.state is State.CLOSED
    assert server.next_event() is PAUSED


# -- replies ------------------------------------------------------------------


def test_reply_wire_format_and_enhanced_status() -> None:
    server = Connection(SERVER)
    assert server.send(Reply(220, ["a", "b", ""], "2.0.0")) == (
        b"220-2.0.0 a\r\n220-2.0.0 b\r\n220 2.0.0\r\n"
    )
    assert Connection(SERVER).send(Reply(220)) == b"220\r\n"
    client = Connection(CLIENT)
    assert events_of(client, b"220-2.0.0 a\r\n220-2.0.0 b\r\n220 2.0.0\r\n") == [
        Reply(220, ["a", "b", ""], "2.0.0")
    ]
    # a status that does not match the reply class is ordinary text
    client = ready_client()
    client.send(Noop())
    assert events_of(client, b"250 5.1.1 odd\r\n") == [Reply(250, "5.1.1 odd")]
    reply = Reply(550, "no such user", "5.1.1")
    assert not reply.is_success and reply.text == "no such user"


def test_extensions_helpers() -> None:
    ext = Extensions.from_lines(["SIZE", "AUTH=LOGIN PLAIN", "AUTH CRAM-MD5", "starttls"])
    assert ext.size == 0
    assert ext.auth_mechanisms == {"LOGIN", "PLAIN", "CRAM-MD5"}
    assert ext.starttls and "STARTTLS" in ext and "starttls" in ext
    assert not ext.pipelining and not ext.dsn and not ext.chunking
    assert Extensions().size is None and Extensions().auth_mechanisms == frozenset()
    full = Extensions.from_lines(EHLO_LINES[1:])
    assert full.eightbitmime and full.smtputf8 and full.dsn and full.enhancedstatuscodes
    assert not full.binarymime
    assert Extensions.from_lines(full.to_lines()) == full
    assert Extensions.from_reply(Reply(502, "no")) == Extensions()


def test_events_are_immutable_values() -> None:
    a = MailFrom("a@x", {"SIZE": "1"})
    assert a == MailFrom("a@x", [("SIZE", "1")])
    assert a != RcptTo("a@x", [("SIZE", "1")])
    assert hash(a) == hash(MailFrom("a@x", (("SIZE", "1"),)))
    assert repr(a) == "MailFrom(address='a@x', params=(('SIZE', '1'),))"
    with pytest.raises(AttributeError):
        a.address = "b"  # type: ignore[misc]


# -- LMTP ---------------------------------------------------------------------


def test_lmtp_one_reply_per_accepted_recipient() -> None:
    client = greeted_client(lmtp=True)
    server = greeted_server(lmtp=True)
    with pytest.raises(LocalProtocolError):
        client.send(Ehlo("x"))
    got, wire = serve(server, client.send(Lhlo("client.example")))
    assert got == [Lhlo("client.example")]
    events_of(client, wire)
    server.receive_data(
        client.send(MailFrom("a@x"))
        + client.send(RcptTo("one@y"))
        + client.send(RcptTo("nobody@y"))
        + client.send(RcptTo("two@y"))
        + client.send(Data())
    )
    replies = []
    for reply in [
        Reply(250, "ok"),
        Reply(250, "ok"),
        Reply(550, "no such user", "5.1.1"),
        Reply(250, "ok"),
        Reply(354, "go"),
    ]:
        assert server.next_event() is not PAUSED
        replies.append(server.send(reply))
    assert server.state is State.BODY
    assert [r.code for r in events_of(client, b"".join(replies))] == [  # type: ignore[attr-defined]
        250,
        250,
        550,
        250,
        354,
    ]
    got = events_of(server, client.send(DataChunk(b"hi\r\n")) + client.send(EndOfData()))
    assert got == [DataChunk(b"hi\r\n"), EndOfData()]
    assert server.next_event() is PAUSED
    first = server.send(Reply(250, "one@y delivered", "2.0.0"))
    assert server.next_event() is PAUSED  # still owes the second recipient's reply
    second = server.send(Reply(452, "two@y over quota", "4.2.2"))
    assert server.state is State.READY
    with pytest.raises(LocalProtocolError):
        server.send(Reply(250, "one too many"))
    got = events_of(client, first)
    assert client.state is not State.READY or client.replies_owed == 1
    got += events_of(client, second)
    assert [r.code for r in got] == [250, 452]  # type: ignore[attr-defined]
    assert client.state is State.READY and client.replies_owed == 0


def test_ehlo_is_unknown_in_lmtp() -> None:
    server = greeted_server(lmtp=True)
    assert bad_code(serve(server, b"EHLO x\r\n")[0]) == [500]


# -- BDAT ---------------------------------------------------------------------


def test_bdat_round_trip() -> None:
    client = ready_client()
    server = ready_server()
    chunk1 = b"Subject: x\r\n\r\n.no stuffing\r\n"
    chunk2 = b"\x00binary\r\n.\r\n"
    wire = (
        client.send(MailFrom("a@x"))
        + client.send(RcptTo("b@y"))
        + client.send(Bdat(chunk1))
        + client.send(Bdat(chunk2, last=True))
    )
    assert b"BDAT 28\r\nSubject" in wire and b"BDAT 12 LAST\r\n" in wire
    got, replies = serve(server, wire)
    assert got[2:] == [Bdat(chunk1), Bdat(chunk2, True)]
    assert server.state is State.READY
    assert [r.code for r in events_of(client, replies)] == [250] * 4  # type: ignore[attr-defined]
    assert client.state is State.READY


def test_bdat_chunk_split_byte_by_byte() -> None:
    server = ready_server()
    serve(server, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
    data = b"BDAT 5 LAST\r\nab\r\ncNOOP\r\n"
    got = []
    for i in range(len(data)):
        got += serve(server, data[i : i + 1])[0]
    assert got == [Bdat(b"ab\r\nc", True), Noop()]


def test_rejected_bdat_still_consumes_its_chunk() -> None:
    server = ready_server()
    got, _ = serve(server, b"BDAT 10\r\nMAIL FROM:NOOP\r\n")
    assert bad_code(got) == [503]
    assert got[-1] == Noop()
    helo = greeted_server()
    serve(helo, b"HELO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
    got, _ = serve(helo, b"BDAT 4 LAST\r\nQUITNOOP\r\n")
    assert bad_code(got) == [502]
    assert got[-1] == Noop()


def test_bdat_size_limits() -> None:
    server = ready_server(max_message_size=10)
    serve(server, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
    got, wire = serve(server, b"BDAT 6\r\n123456BDAT 6 LAST\r\n123456NOOP\r\n")
    assert got[0] == Bdat(b"123456")
    assert bad_code(got) == [552]
    assert wire.count(b"552") == 1
    assert got[-1] == Noop()


# -- AUTH ---------------------------------------------------------------------


def test_auth_exchange() -> None:
    client = ready_client()
    server = ready_server()
    got, wire = serve(server, client.send(Auth("plain")))
    assert got == [Auth("PLAIN")]
    assert events_of(client, wire) == [Reply(334, "")]
    assert client.state is server.state is State.AUTH
    with pytest.raises(LocalProtocolError):
        client.send(Noop())
    got, wire = serve(server, client.send(AuthContinuation("AGJvYgBzZWNyZXQ=")))
    assert got == [AuthContinuation("AGJvYgBzZWNyZXQ=")]
    assert events_of(client, wire) == [Reply(235, "ok", "2.7.0")]
    assert client.authenticated and server.authenticated
    assert client.state is server.state is State.READY
    assert bad_code(serve(server, b"AUTH PLAIN =\r\n")[0]) == [503]


def test_auth_cancel_and_bad_response() -> None:
    server = ready_server()
    serve(server, b"AUTH LOGIN\r\n")
    server.receive_data(b"*\r\n")
    assert server.next_event() == AuthContinuation("*")
    server.send(Reply(501, "cancelled", "5.0.0"))
    assert server.state is State.READY
    serve(server, b"AUTH LOGIN\r\n")
    got, _ = serve(server, b"not base64!\r\n")
    assert bad_code(got) == [501]
    assert server.state is State.READY and not server.authenticated
