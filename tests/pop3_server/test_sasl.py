"""SASL on the POP3 server (RFC 5034): PLAIN, LOGIN and CRAM-MD5, as the
protomata client and as a hand-driven session speak them."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator
from pathlib import Path

import pytest

from protomata.pop3 import POP3Error
from protomata.sync import POP3Client, POP3Server, Timeouts

from .test_server import make_maildir

USERS = {"alice": "s3cret", "bob": "pässwörd"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[POP3Server]:
    srv = POP3Server(
        "127.0.0.1",
        0,
        maildir=make_maildir(tmp_path / "Maildir"),
        users=USERS,
        timeouts=Timeouts(5.0),
    )
    with srv.running():
        yield srv


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
@pytest.mark.parametrize("user", ["alice", "bob"])
def test_each_mechanism_logs_in(server: POP3Server, mechanism: str, user: str) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5.0) as client:
        assert "SASL PLAIN LOGIN CRAM-MD5" in str(client.capa())
        client.auth(mechanism, user, USERS[user])
        assert client.stat()[0] >= 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_each_mechanism_refuses_a_wrong_password(server: POP3Server, mechanism: str) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5.0) as client:
        with pytest.raises(POP3Error, match=r"\[AUTH\]"):
            client.auth(mechanism, "alice", "wrong")
        client.auth(mechanism, "alice", "s3cret")  # the session goes on


def _exchange(server: POP3Server, lines: list[bytes]) -> list[bytes]:
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as sock:
        file = sock.makefile("rb")
        replies = [file.readline()]
        for line in lines:
            sock.sendall(line + b"\r\n")
            replies.append(file.readline())
        return replies


def test_cram_md5_challenge_is_fresh_and_checked(server: POP3Server) -> None:
    import socket

    challenges = []
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as sock:
            file = sock.makefile("rb")
            file.readline()
            sock.sendall(b"AUTH CRAM-MD5\r\n")
            line = file.readline()
            assert line.startswith(b"+ ")
            challenge = base64.b64decode(line[2:].strip())
            challenges.append(challenge)
            digest = hmac.new(b"s3cret", challenge, "md5").hexdigest()
            sock.sendall(base64.b64encode(f"alice {digest}".encode()) + b"\r\n")
            assert file.readline().startswith(b"+OK")
            # QUIT frees the mailbox before its +OK, so the next login finds
            # it free (a close without QUIT frees it only once the server
            # has seen the end of the connection).
            sock.sendall(b"QUIT\r\n")
            assert file.readline().startswith(b"+OK")
    assert challenges[0] != challenges[1]
    assert all(c.startswith(b"<") and c.endswith(b">") for c in challenges)


def test_malformed_and_cancelled_exchanges(server: POP3Server) -> None:
    replies = _exchange(
        server,
        [
            b"AUTH CRAM-MD5 " + base64.b64encode(b"x"),  # no initial response allowed
            b"AUTH CRAM-MD5",
            base64.b64encode(b"alice not-a-digest"),
            b"AUTH PLAIN " + base64.b64encode(b"bob\0alice\0s3cret"),  # acting for another
            b"AUTH LOGIN",
            b"*",
            b"AUTH GSSAPI",
            b"AUTH PLAIN " + base64.b64encode(b"\0alice\0s3cret"),
        ],
    )
    assert replies[1].startswith(b"-ERR [AUTH]")
    assert replies[2].startswith(b"+ ")
    assert replies[3].startswith(b"-ERR [AUTH] malformed")
    assert replies[4].startswith(b"-ERR [AUTH] proxy")
    assert replies[5] == b"+ " + base64.b64encode(b"Username:") + b"\r\n"
    assert replies[6].startswith(b"-ERR")
    assert replies[7].startswith(b"-ERR unsupported")
    assert replies[8].startswith(b"+OK")


def test_utf8_with_poplib_and_a_utf8_message(server: POP3Server, tmp_path: Path) -> None:
    import poplib

    maildir = tmp_path / "Maildir"
    message = "Subject: Grüße\n\nÄpfel, Birnen und Quitten\n".encode()
    (maildir / "new" / "2000.M9P9.host").write_bytes(message)
    client = poplib.POP3("127.0.0.1", server.port, timeout=5.0)
    try:
        assert "UTF8" in client.capa()
        assert client.utf8().startswith(b"+OK")  # RFC 6856, before login
        client.user("bob")
        client.pass_(USERS["bob"])
        sizes = dict((int(n), s) for n, s in (e.split() for e in client.list()[1]))
        retrieved = [client.retr(n)[1] for n in sorted(sizes)]
        assert [
            b"Subject: Gr\xc3\xbc\xc3\x9fe",
            b"",
            "Äpfel, Birnen und Quitten".encode(),
        ] in retrieved
        with pytest.raises(poplib.error_proto):
            client.utf8()  # only in the AUTHORIZATION state
    finally:
        client.quit()


# -- XOAUTH2 ------------------------------------------------------------------------

TOKENS = {"alice": "ya29.token-for-alice"}


@pytest.fixture
def oauth_server(tmp_path: Path) -> Iterator[POP3Server]:
    checked: list[tuple[str, str]] = []

    def check(user: str, token: str) -> bool:
        checked.append((user, token))
        return TOKENS.get(user) == token

    srv = POP3Server(
        "127.0.0.1",
        0,
        maildir=make_maildir(tmp_path / "OAuthMaildir"),
        users=USERS,
        timeouts=Timeouts(5.0),
        authenticate_xoauth2=check,
    )
    srv.checked = checked  # type: ignore[attr-defined]
    with srv.running():
        yield srv


def test_xoauth2_offered_only_with_a_token_check(
    server: POP3Server, oauth_server: POP3Server
) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5.0) as client:
        assert "XOAUTH2" not in str(client.capa())
        with pytest.raises(POP3Error, match="unsupported"):
            client.auth("XOAUTH2", "alice", TOKENS["alice"])
    with POP3Client("127.0.0.1", oauth_server.port, timeout=5.0) as client:
        assert "SASL PLAIN LOGIN CRAM-MD5 XOAUTH2" in str(client.capa())


@pytest.mark.parametrize("initial_response", [True, False])
def test_xoauth2_logs_in_with_a_good_token(
    oauth_server: POP3Server, initial_response: bool
) -> None:
    with POP3Client("127.0.0.1", oauth_server.port, timeout=5.0) as client:
        client.auth("XOAUTH2", "alice", TOKENS["alice"], initial_response=initial_response)
        assert client.stat()[0] >= 1
    assert oauth_server.checked == [("alice", TOKENS["alice"])]  # type: ignore[attr-defined]


GOOD = b"user=alice\x01auth=Bearer " + TOKENS["alice"].encode() + b"\x01\x01"


def test_xoauth2_refusal_carries_the_json_status_then_err(oauth_server: POP3Server) -> None:
    request = base64.b64encode(b"user=alice\x01auth=Bearer expired\x01\x01")
    replies = _exchange(
        oauth_server,
        [
            b"AUTH XOAUTH2 " + request,
            b"",  # the client acknowledges the error challenge
            b"AUTH XOAUTH2 " + base64.b64encode(b"user=alice\x01auth=Basic abc\x01\x01"),
            b"AUTH XOAUTH2 " + base64.b64encode(GOOD),
        ],
    )
    challenge = replies[1]
    assert challenge.startswith(b"+ ")
    assert base64.b64decode(challenge[2:].strip()) == (
        b'{"status":"401","schemes":"bearer","scope":""}'
    )
    assert replies[2].startswith(b"-ERR [AUTH]")
    assert replies[3].startswith(b"-ERR [AUTH] malformed XOAUTH2")
    assert replies[4].startswith(b"+OK")


def test_protomata_client_reports_a_refused_token(oauth_server: POP3Server) -> None:
    with POP3Client("127.0.0.1", oauth_server.port, timeout=5.0) as client:
        with pytest.raises(POP3Error, match=r"\[AUTH\]"):
            client.auth("XOAUTH2", "alice", "stale")
        client.auth("XOAUTH2", "alice", TOKENS["alice"])  # the session goes on
