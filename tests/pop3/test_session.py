"""POP3 sessions between our client and server machines, in memory."""

from __future__ import annotations

import base64

import pytest

from protomata.pop3 import (
    AUTHORIZATION,
    CLIENT,
    CLOSED,
    ERROR,
    GREETING,
    NEED_DATA,
    PAUSED,
    SERVER,
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
    LocalProtocolError,
    MultilineData,
    MultilineEnd,
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

from .helpers import drain, exchange, greeted_pair

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\n.leading dot\r\n.\r\nlast\r\n"


def test_apop_digest_matches_rfc_1939_example() -> None:
    assert (
        apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf")
        == "c4c9334bac560ecc979e58001b3e22fb"
    )
    assert apop_digest(b"<a@b>", b"x") == apop_digest("<a@b>", "x")


def test_full_session_user_pass() -> None:
    client, server = greeted_pair()
    assert client.state is AUTHORIZATION and server.state is AUTHORIZATION
    assert client.greeting_timestamp == "<1896.697170952@dbc.mtview.ca.us>"
    assert server.greeting_timestamp == client.greeting_timestamp

    caps = Capabilities(("TOP", "UIDL", "USER", "SASL PLAIN"), "Capability list follows")
    assert exchange(client, server, Capa(), caps) == [caps]
    assert caps.arguments("sasl") == ("PLAIN",) and "top" in caps and "STLS" not in caps

    assert exchange(client, server, User("bob"), Ok("send PASS")) == [Ok("send PASS")]
    assert exchange(client, server, Pass("s3cret with spaces"), Ok("maildrop locked")) == [
        Ok("maildrop locked")
    ]
    assert client.state is TRANSACTION and server.state is TRANSACTION

    assert exchange(client, server, Stat(), Ok("2 320")) == [Ok("2 320")]
    listing = ScanListing([(1, 120), (2, 200)], "2 messages")
    assert exchange(client, server, List(), listing) == [listing]
    assert exchange(client, server, List(2), Ok("2 200")) == [Ok("2 200")]
    assert exchange(client, server, List(9), Err("no such message")) == [Err("no such message")]
    uids = UidListing([(1, "whqtswO00WBw418f9t5JxYwZ"), (2, "QhdPYR:00WBw1Ph7x7")])
    assert exchange(client, server, Uidl(), uids) == [uids]
    assert exchange(client, server, Uidl(1), Ok("1 whqtswO00WBw418f9t5JxYwZ")) == [
        Ok("1 whqtswO00WBw418f9t5JxYwZ")
    ]
    body = [MultilineStart("120 octets"), MultilineData(MESSAGE), MultilineEnd()]
    assert exchange(client, server, Retr(1), *body) == body
    assert exchange(client, server, Top(1, 0), *body) == body
    assert exchange(client, server, Retr(7), Err("no such message")) == [Err("no such message")]
    assert exchange(client, server, Dele(1), Ok("deleted")) == [Ok("deleted")]
    assert exchange(client, server, Noop(), Ok()) == [Ok()]
    assert exchange(client, server, Rset(), Ok()) == [Ok()]

    server.receive_data(client.send(Quit()))
    assert server.next_event() == Quit()
    assert server.state is UPDATE
    client.receive_data(server.send(Ok("bye")))
    assert client.next_event() == Ok("bye")
    assert client.state is CLOSED and server.state is CLOSED
    client.receive_data(b"")
    assert client.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError):
        client.send(Noop())


def test_apop_login() -> None:
    client, server = greeted_pair()
    digest = apop_digest(client.greeting_timestamp or "", "tanstaaf")
    assert exchange(client, server, Apop("mrose", digest), Ok()) == [Ok()]
    assert server.state is TRANSACTION and client.state is TRANSACTION


def test_sasl_plain_with_challenge_and_initial_response() -> None:
    client, server = greeted_pair()
    token = b"\x00bob\x00secret"
    # Without an initial response: empty challenge, then the client's answer.
    server.receive_data(client.send(Auth("plain")))
    assert server.next_event() == Auth("PLAIN")
    client.receive_data(server.send(AuthChallenge(b"")))
    assert client.next_event() == AuthChallenge(b"")
    with pytest.raises(LocalProtocolError):
        client.send(Noop())  # a SASL response is owed
    wire = client.send(AuthContinuation(token))
    assert wire == base64.b64encode(token) + b"\r\n"
    server.receive_data(wire)
    assert server.next_event() == AuthContinuation(token)
    client.receive_data(server.send(Ok("welcome")))
    assert client.next_event() == Ok("welcome")
    assert client.state is TRANSACTION and server.state is TRANSACTION


def test_sasl_initial_response_and_cancel() -> None:
    client, server = greeted_pair()
    assert client.send(Auth("PLAIN", b"")) == b"AUTH PLAIN =\r\n"
    server.receive_data(b"AUTH PLAIN =\r\n")
    assert server.next_event() == Auth("PLAIN", b"")
    client.receive_data(server.send(AuthChallenge(b"more?")))
    assert client.next_event() == AuthChallenge(b"more?")
    server.receive_data(client.send(AuthCancel()))
    assert server.next_event() == AuthCancel()
    client.receive_data(server.send(Err("cancelled")))
    assert client.next_event() == Err("cancelled")
    assert client.state is AUTHORIZATION and server.state is AUTHORIZATION
    # A bad base64 response fails the AUTH command without a user reply.
    server.receive_data(b"AUTH X-Y\r\n")
    assert server.next_event() == Auth("X-Y")
    server.send(AuthChallenge(b""))
    server.receive_data(b"not base64!\r\n")
    assert server.next_event() is NEED_DATA
    assert server.data_to_send().startswith(b"-ERR ")
    assert server.state is AUTHORIZATION


def test_utf8_command() -> None:
    client, server = greeted_pair()
    assert exchange(client, server, Utf8(), Ok()) == [Ok()]
    assert client.utf8 and server.utf8
    assert exchange(client, server, User("jörg"), Ok()) == [Ok()]
    assert client.send(Pass("pässwörd")) == "PASS pässwörd\r\n".encode()


def test_non_utf8_bytes_survive_a_round_trip() -> None:
    client, server = greeted_pair()
    server.receive_data(b"USER \xff\xfe\r\n")
    event = server.next_event()
    assert isinstance(event, User)
    assert client.send(event) == b"USER \xff\xfe\r\n"


def test_stls_discards_injected_commands() -> None:
    client, server = greeted_pair()
    server.receive_data(b"STLS\r\nUSER x\r\n")
    assert server.next_event() == Stls()
    assert server.next_event() is PAUSED
    client.send(Stls())
    # A man in the middle appends a fake reply after the server's +OK.
    client.receive_data(server.send(Ok("begin TLS")) + b"+OK injected\r\n")
    assert server.awaiting_tls
    assert server.next_event() is PAUSED
    server.tls_started()
    assert server.next_event() is NEED_DATA  # USER x was never processed
    assert server.state is AUTHORIZATION
    assert client.next_event() == Ok("begin TLS")
    assert client.next_event() is PAUSED
    client.tls_started()
    assert client.next_event() is NEED_DATA
    # Both sides now speak over TLS; STLS is not allowed again.
    with pytest.raises(LocalProtocolError):
        client.send(Stls())
    assert exchange(client, server, User("x"), Ok()) == [Ok()]
    server.receive_data(b"STLS\r\n")
    assert server.next_event() is NEED_DATA
    assert server.data_to_send().startswith(b"-ERR")


def test_stls_refused_keeps_following_commands() -> None:
    _, server = greeted_pair()
    server.receive_data(b"STLS\r\nUSER x\r\n")
    assert server.next_event() == Stls()
    server.send(Err("not now"))
    assert server.next_event() == User("x")
    with pytest.raises(LocalProtocolError):
        server.tls_started()


def test_bytes_after_stls_arriving_late_are_discarded_too() -> None:
    _, server = greeted_pair()
    server.receive_data(b"STLS\r\n")
    assert server.next_event() == Stls()
    server.send(Ok())
    server.receive_data(b"USER evil\r\n")  # plaintext before the handshake
    assert server.next_event() is PAUSED
    server.tls_started()
    assert server.next_event() is NEED_DATA


@pytest.mark.parametrize(
    "make",
    [
        lambda: User("bob\r\nDELE 1"),
        lambda: User("bob\nx"),
        lambda: Pass("pw\rQUIT"),
        lambda: Pass("pw\x00"),
        lambda: Apop("bob", "d\r\nx"),
        lambda: Apop("bob smith", "digest"),
        lambda: Ok("fine\r\n+OK more"),
        lambda: Err("x\ny"),
        lambda: Greeting("hi\r\n"),
        lambda: MultilineStart("a\rb"),
        lambda: Capabilities(["TOP\r\nX"]),
        lambda: Capabilities([".hidden"]),
        lambda: UidListing([(1, "has space")]),
        lambda: ScanListing([(0, 1)]),
        lambda: Auth("PLAIN\r\n"),
        lambda: Auth("bad mech"),
        lambda: Retr(0),
        lambda: Top(1, -1),
        lambda: List(True),
        lambda: User(""),
    ],
)
def test_invalid_arguments_are_refused(make: object) -> None:
    with pytest.raises(LocalProtocolError):
        make()  # type: ignore[operator]


def test_client_refuses_wrong_state_and_overlapping_commands() -> None:
    client = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(User("x"))  # no greeting yet
    client.receive_data(b"+OK hi\r\n")
    assert client.next_event() == Greeting("hi")
    for command in (Stat(), Retr(1), Pass("pw"), AuthContinuation(b"x"), Noop()):
        with pytest.raises(LocalProtocolError):
            client.send(command)
    client.send(User("x"))
    with pytest.raises(LocalProtocolError):
        client.send(Capa())  # the USER reply is still owed
    with pytest.raises(LocalProtocolError):
        client.send(Ok())  # type: ignore[arg-type]
    assert client.state is AUTHORIZATION


def test_server_answers_wrong_state_commands_itself() -> None:
    _, server = greeted_pair()
    server.receive_data(b"STAT\r\nPASS pw\r\nRETR 1\r\nNOOP\r\nBOGUS\r\nLIST x\r\nCAPA\r\n")
    assert server.next_event() == Capa()
    assert server.data_to_send().count(b"-ERR") == 6
    assert server.state is AUTHORIZATION
    server.send(Capabilities(["USER"]))
    server.receive_data(b"user bob\r\nQUIT now\r\npass pw\r\n")
    assert server.next_event() == User("bob")
    server.send(Ok())
    # QUIT with an argument is rejected, and a rejected command in between
    # means PASS no longer directly follows USER.
    assert server.next_event() is NEED_DATA
    assert server.data_to_send().count(b"-ERR") == 2
    server.receive_data(b"USER bob\r\nPASS pw\r\n")
    assert server.next_event() == User("bob")
    server.send(Ok())
    assert server.next_event() == Pass("pw")
    server.send(Ok())
    assert server.state is TRANSACTION
    server.receive_data(b"USER bob\r\nSTLS\r\nUTF8\r\nAPOP a b\r\nTOP 1\r\ntop 1 0\r\n")
    assert server.next_event() == Top(1, 0)
    assert server.data_to_send().count(b"-ERR") == 5
    assert server.state is TRANSACTION


def test_automatic_errors_come_before_the_next_reply() -> None:
    _, server = greeted_pair()
    server.receive_data(b"XYZZY\r\nCAPA\r\n")
    assert server.next_event() == Capa()
    wire = server.send(Capabilities(["TOP"]))
    assert wire.startswith(b"-ERR ") and wire.endswith(b"+OK\r\nTOP\r\n.\r\n")
    assert server.data_to_send() == b""


def test_many_bad_commands_pause_until_flushed() -> None:
    _, server = greeted_pair()
    server.receive_data(b"X\r\n" * 5000)
    assert server.next_event() is PAUSED
    first = server.data_to_send()
    assert 0 < len(first) < 10000
    total = first.count(b"\r\n")
    while (event := server.next_event()) is PAUSED:
        total += server.data_to_send().count(b"\r\n")
    assert event is NEED_DATA
    total += server.data_to_send().count(b"\r\n")
    assert total == 5000


def test_server_checks_reply_fits_command() -> None:
    client, server = greeted_pair()
    exchange(client, server, User("u"), Ok())
    exchange(client, server, Pass("p"), Ok())
    server.receive_data(b"RETR 1\r\n")
    assert server.next_event() == Retr(1)
    for wrong in (Ok(), ScanListing(), AuthChallenge(), Greeting(), MultilineData(b"x")):
        with pytest.raises(LocalProtocolError):
            server.send(wrong)
    server.send(MultilineStart())
    with pytest.raises(LocalProtocolError):
        server.send(Ok())
    assert server.send(MultilineData(b"no final newline")) == b"no final newline"
    assert server.send(MultilineEnd()) == b"\r\n.\r\n"
    with pytest.raises(LocalProtocolError):
        server.send(Ok())  # nothing is pending
    server.receive_data(b"LIST\r\n")
    assert server.next_event() == List()
    with pytest.raises(LocalProtocolError):
        server.send(Ok())
    with pytest.raises(LocalProtocolError):
        server.send(MultilineStart())
    assert server.send(ScanListing()) == b"+OK\r\n.\r\n"


def test_server_greeting_rules() -> None:
    server = Connection(SERVER)
    assert server.state is GREETING
    server.receive_data(b"USER early\r\n")
    assert server.next_event() is PAUSED
    with pytest.raises(LocalProtocolError):
        server.send(Ok())
    server.send(Greeting("ready"))
    assert server.greeting_timestamp is None
    assert server.next_event() == User("early")
    refusing = Connection(SERVER)
    assert refusing.send(Err("busy")) == b"-ERR busy\r\n"
    assert refusing.state is CLOSED
    client = Connection(CLIENT)
    client.receive_data(b"-ERR [SYS/TEMP] busy\r\n")
    event = client.next_event()
    assert event == Err("[SYS/TEMP] busy") and event.code == "SYS/TEMP"
    assert client.state is CLOSED


def test_too_long_command_line_is_a_remote_error() -> None:
    _, server = greeted_pair()
    server.receive_data(b"USER " + b"x" * 600)
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    assert server.state is ERROR
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    assert server.send(Err("line too long")) == b"-ERR line too long\r\n"
    with pytest.raises(LocalProtocolError):
        server.send(Ok())


def test_long_auth_lines_get_their_own_limit() -> None:
    _, server = greeted_pair()
    token = base64.b64encode(b"k" * 6000)
    server.receive_data(b"AUTH GSSAPI " + token + b"\r\n")
    assert server.next_event() == Auth("GSSAPI", b"k" * 6000)
    small = Connection(SERVER, max_command_length=64, max_auth_line_length=100)
    small.send(Greeting())
    small.receive_data(b"auth GSSAPI " + token + b"\r\n")
    with pytest.raises(RemoteProtocolError):
        small.next_event()


def test_peer_closing_mid_reply_is_an_error() -> None:
    client, _ = greeted_pair()
    client.send(Capa())
    client.receive_data(b"+OK\r\nTOP\r\n")
    client.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    assert client.state is ERROR


def test_server_sees_eof_between_commands() -> None:
    _, server = greeted_pair()
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()
    assert server.state is CLOSED
    _, server = greeted_pair()
    server.receive_data(b"NOO")
    server.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        server.next_event()


def test_client_rejects_unsolicited_and_malformed_replies() -> None:
    for wire in (b"+OKAY\r\n", b"* hi\r\n", b"+OK a\nb\r\n", b"+ Zm9v\r\n"):
        client, _ = greeted_pair()
        client.send(User("x"))
        client.receive_data(wire)
        with pytest.raises(RemoteProtocolError):
            client.next_event()
    client, _ = greeted_pair()
    client.receive_data(b"+OK nobody asked\r\n")
    with pytest.raises(RemoteProtocolError):
        client.next_event()


@pytest.mark.parametrize(
    ("command", "block"),
    [
        (List(), b"1 x\r\n"),
        (List(), b"one 2\r\n"),
        (Uidl(), b"1\r\n"),
        (Uidl(), b"1 a b\r\n"),
        (Capa(), b"\r\n"),
    ],
)
def test_client_rejects_malformed_listings(command: object, block: bytes) -> None:
    client, _ = greeted_pair()
    client._state = TRANSACTION  # listing syntax, not login, is under test
    client.send(command)
    client.receive_data(b"+OK\r\n" + block + b".\r\n")
    with pytest.raises(RemoteProtocolError):
        drain(client)


def test_scan_listing_tolerates_extra_information() -> None:
    client, _ = greeted_pair()
    client._state = TRANSACTION
    client.send(List())
    client.receive_data(b"+OK\r\n1 120 more info\r\n.\r\n")
    assert drain(client) == [ScanListing([(1, 120)])]


def test_events_are_values() -> None:
    assert User("a") == User("a") and User("a") != User("b")
    assert hash(Top(1, 2)) == hash(Top(1, 2))
    assert "hidden" in repr(Pass("secret")) and "secret" not in repr(Pass("secret"))
    assert "hidden" in repr(AuthContinuation(b"secret"))
    assert "secret" not in repr(Auth("PLAIN", b"secret"))
    with pytest.raises(AttributeError):
        User("a").name = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    "line",
    [
        b"RETR 0",
        b"RETR",
        b"RETR -1",
        b"DELE 12345678901",
        b"USER",
        b"APOP onlyname",
        b"AUTH",
        b"AUTH PL@IN",
        b"AUTH PLAIN !!!",
        b"LIST 1x",
        b"TOP 1",
        b"TOP 1 x",
        b"STAT now",
        b"USER x\nPASS y",
        b"USER x\x00",
        b"",
    ],
)
def test_server_rejects_malformed_commands(line: bytes) -> None:
    _, server = greeted_pair()
    server._state = (
        TRANSACTION if line[:4] in (b"RETR", b"DELE", b"LIST", b"TOP ") else AUTHORIZATION
    )
    server.receive_data(line + b"\r\nCAPA\r\n")
    assert server.next_event() == Capa()
    assert server.data_to_send().startswith(b"-ERR ")


def test_client_sasl_protocol_errors() -> None:
    client, _ = greeted_pair()
    client.send(Auth("PLAIN"))
    client.receive_data(b"+ ***\r\n")
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    with pytest.raises(LocalProtocolError):
        client.send(Noop())  # state is ERROR
    client, _ = greeted_pair()
    client.send(Auth("PLAIN"))
    client.receive_data(b"+\r\n")
    assert client.next_event() == AuthChallenge(b"")
    assert client.next_event() is PAUSED  # our response is owed
    client.receive_data(b"+OK early\r\n")
    with pytest.raises(RemoteProtocolError):
        client.next_event()


def test_connection_arguments_and_eof_misuse() -> None:
    with pytest.raises(ValueError):
        Connection("CLIENT")  # type: ignore[arg-type]
    conn = Connection(CLIENT)
    conn.receive_data(b"")
    with pytest.raises(RuntimeError):
        conn.receive_data(b"+OK")
