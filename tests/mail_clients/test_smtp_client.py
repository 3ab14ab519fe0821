"""SMTPClient against protomata's own SMTP sink (and swaks as a server-side check)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from protomata.smtp import Reply
from protomata.sync import SMTPServer, Timeouts
from protomata.sync._mailclients import SMTPClient, SMTPError, SMTPRecipientsRefused

from .conftest import TLS, TLSProxy

MESSAGE = b"From: a@x\r\nTo: b@y\r\nSubject: hi\r\n\r\n.dot first\r\nbody\r\n"


def stored(maildir: Path) -> list[bytes]:
    new = maildir / "new"
    return [p.read_bytes() for p in sorted(new.iterdir())] if new.exists() else []


class RefuseBob:
    """Refuses bob@y, accepts everyone else; records what it saw."""

    def __init__(self) -> None:
        self.rcpts: list[str] = []
        self.messages: list[tuple[list[str], bytes]] = []

    def rcpt_to(self, address: str, params: Any) -> Reply | None:
        self.rcpts.append(address)
        return Reply(550, ["no"]) if address == "bob@y" else None

    def message(self, envelope: Any, data: bytes) -> Reply | None:
        self.messages.append((list(envelope.rcpt_tos), data))
        return None


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "Maildir"


@pytest.fixture
def server(maildir: Path) -> Iterator[SMTPServer]:
    srv = SMTPServer(maildir=maildir, timeouts=Timeouts(5.0), hostname="sink.test")
    with srv.running():
        yield srv


def test_send_bytes_to_two_recipients(server: SMTPServer, maildir: Path) -> None:
    client = SMTPClient("127.0.0.1", server.port, timeout=5)
    assert client.send_message(MESSAGE, "a@x", ["b@y", "c@z"]) == {}
    [content] = stored(maildir)
    assert content.endswith(b"Subject: hi\n\n.dot first\nbody\n")
    assert b"Return-Path: <a@x>" in content


def test_send_email_message_takes_envelope_from_headers(server: SMTPServer, maildir: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "Ann <a@x>"
    msg["To"] = "b@y, Carl <c@z>"
    msg["Bcc"] = "secret@z"
    msg["Subject"] = "typed"
    msg.set_content("hello\n.\nworld\n")
    client = SMTPClient("127.0.0.1", server.port, timeout=5)
    assert client.send_message(msg) == {}
    assert msg["Bcc"] == "secret@z"  # the caller's message is untouched
    [content] = stored(maildir)
    assert b"Bcc" not in content
    assert b"Subject: typed\n" in content
    assert content.endswith(b"hello\n.\nworld\n")


def test_one_recipient_refused(maildir: Path) -> None:
    handler = RefuseBob()
    srv = SMTPServer(handler, maildir=maildir, timeouts=Timeouts(5.0))
    with srv.running():
        client = SMTPClient("127.0.0.1", srv.port, timeout=5)
        refused = client.send_message(MESSAGE, "a@x", ["bob@y", "c@z"])
    assert list(refused) == ["bob@y"]
    assert refused["bob@y"].code == 550
    assert handler.rcpts == ["bob@y", "c@z"]
    assert [rcpts for rcpts, _ in handler.messages] == [["c@z"]]
    assert handler.messages[0][1] == MESSAGE


def test_all_recipients_refused(maildir: Path) -> None:
    handler = RefuseBob()
    srv = SMTPServer(handler, maildir=maildir, timeouts=Timeouts(5.0))
    with srv.running():
        client = SMTPClient("127.0.0.1", srv.port, timeout=5)
        with pytest.raises(SMTPRecipientsRefused) as info:
            client.send_message(MESSAGE, "a@x", "bob@y")
    assert set(info.value.refused) == {"bob@y"}
    assert handler.messages == []


def test_bytes_need_an_envelope(server: SMTPServer) -> None:
    client = SMTPClient("127.0.0.1", server.port, timeout=5)
    with pytest.raises(ValueError):
        client.send_message(MESSAGE)
    with pytest.raises(ValueError):
        SMTPClient("127.0.0.1", server.port, starttls="sometimes")


def test_starttls_required_but_not_offered(server: SMTPServer, maildir: Path) -> None:
    client = SMTPClient("127.0.0.1", server.port, starttls="required", timeout=5)
    with pytest.raises(SMTPError, match="STARTTLS"):
        client.send_message(MESSAGE, "a@x", ["b@y"])
    assert stored(maildir) == []


@pytest.fixture
def tls_server(maildir: Path, tls: TLS) -> Iterator[SMTPServer]:
    srv = SMTPServer(
        maildir=maildir, timeouts=Timeouts(5.0), tls_context=tls.server, users={"u": "p"}
    )
    with srv.running():
        yield srv


def test_starttls_verified(tls_server: SMTPServer, maildir: Path, tls: TLS) -> None:
    client = SMTPClient(
        "127.0.0.1", tls_server.port, starttls="required", verify=tls.client, timeout=5
    )
    assert client.send_message(MESSAGE, "a@x", ["b@y"]) == {}
    [content] = stored(maildir)
    assert b"with ESMTPS" in content


def test_starttls_verification_is_on_by_default(tls_server: SMTPServer, maildir: Path) -> None:
    client = SMTPClient("127.0.0.1", tls_server.port, starttls="required", timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        client.send_message(MESSAGE, "a@x", ["b@y"])
    assert stored(maildir) == []


def test_starttls_insecure_opt_out(tls_server: SMTPServer, maildir: Path) -> None:
    client = SMTPClient("127.0.0.1", tls_server.port, starttls="if-offered", verify=False)
    assert client.send_message(MESSAGE, "a@x", ["b@y"]) == {}
    assert len(stored(maildir)) == 1


def test_implicit_tls(server: SMTPServer, maildir: Path, tls: TLS) -> None:
    proxy = TLSProxy(tls.server, server.port)
    try:
        client = SMTPClient("127.0.0.1", proxy.port, tls=True, verify=tls.client, timeout=5)
        assert client.send_message(MESSAGE, "a@x", ["b@y"]) == {}
        untrusted = SMTPClient("127.0.0.1", proxy.port, tls=True, timeout=5)
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusted.send_message(MESSAGE, "a@x", ["b@y"])
    finally:
        proxy.close()
    assert len(stored(maildir)) == 1


def test_auth_after_starttls(tls_server: SMTPServer, maildir: Path, tls: TLS) -> None:
    client = SMTPClient(
        "127.0.0.1",
        tls_server.port,
        starttls="required",
        verify=tls.client,
        username="u",
        password="p",
        timeout=5,
    )
    assert client.send_message(MESSAGE, "a@x", ["b@y"]) == {}
    [content] = stored(maildir)
    assert b"with ESMTPSA" in content


def test_auth_wrong_password(tls_server: SMTPServer, maildir: Path, tls: TLS) -> None:
    client = SMTPClient(
        "127.0.0.1", tls_server.port, starttls="required", verify=tls.client, timeout=5,
        username="u", password="wrong",
    )  # fmt: skip
    with pytest.raises(SMTPError, match="535"):
        client.send_message(MESSAGE, "a@x", ["b@y"])
    assert stored(maildir) == []


def test_auth_not_offered(server: SMTPServer, maildir: Path) -> None:
    client = SMTPClient("127.0.0.1", server.port, username="u", password="p", timeout=5)
    with pytest.raises(SMTPError, match="does not offer AUTH"):
        client.send_message(MESSAGE, "a@x", ["b@y"])
    with pytest.raises(ValueError):
        SMTPClient("127.0.0.1", server.port, username="u")


def test_pure_auth_login_fallback() -> None:
    from protomata._core import CLIENT
    from protomata._core._ops import Receive, Send
    from protomata.smtp import Connection
    from protomata.smtp._operations import authenticate, read_reply

    conn = Connection(CLIENT)
    script = [b"220 hi\r\n", b"250-x\r\n250 AUTH LOGIN\r\n"]
    script += [b"334 VXNlcm5hbWU6\r\n", b"334 UGFzc3dvcmQ6\r\n", b"235 ok\r\n"]
    sent: list[bytes] = []

    def drive(op: Any) -> Any:
        value: Any = None
        while True:
            try:
                request = op.send(value)
            except StopIteration as stop:
                return stop.value
            value = None
            if isinstance(request, Receive):
                value = script.pop(0)
            elif isinstance(request, Send):
                assert isinstance(request.data, bytes)
                sent.append(request.data)

    from protomata.smtp import Ehlo

    drive(read_reply(conn))
    sent.append(conn.send(Ehlo("me")))
    drive(read_reply(conn))
    drive(authenticate(conn, "user", "pass"))
    assert sent[1:] == [b"AUTH LOGIN\r\n", b"dXNlcg==\r\n", b"cGFzcw==\r\n"]
    assert conn.authenticated
