"""The pure POP3 client operations and POP3Client against protomata's POP3 server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protomata._core import CLIENT
from protomata._core._ops import Receive, Send, StartTLS
from protomata.pop3 import Connection
from protomata.pop3._client import POP3Error, login, retrieve, start_tls, stat
from protomata.pop3._client import greeting as read_greeting
from protomata.sync import POP3Server, Timeouts
from protomata.sync._maildir import Maildir
from protomata.sync._pop3client import POP3Client

from .conftest import TLS, TLSProxy

USERS = {"alice": "s3cret"}
MESSAGES = [
    b"Subject: one\n\n.leading dot\nbody one\n",
    b"Subject: two\n\nbody two\n",
]


def drive(op: Any, replies: list[bytes]) -> tuple[Any, list[Any]]:
    """Run a pure operation against scripted server bytes; return (result, requests)."""
    requests: list[Any] = []
    value: Any = None
    while True:
        try:
            request = op.send(value)
        except StopIteration as stop:
            return stop.value, requests
        requests.append(request)
        value = replies.pop(0) if isinstance(request, Receive) else None


def greeted(text: bytes = b"+OK ready <1.2@host>\r\n") -> Connection:
    conn = Connection(CLIENT)
    result, _ = drive(read_greeting(conn), [text])
    assert result.text.startswith("ready")
    return conn


def test_pure_login_and_retrieve() -> None:
    conn = greeted()
    _, requests = drive(login(conn, "alice", "pw"), [b"+OK\r\n", b"+OK in\r\n"])
    assert [r.data for r in requests if isinstance(r, Send)] == [b"USER alice\r\n", b"PASS pw\r\n"]
    assert drive(stat(conn), [b"+OK 2 320\r\n"])[0] == (2, 320)
    body, _ = drive(retrieve(conn, 1), [b"+OK\r\nA: b\r\n\r\n..x\r\n", b"y\r\n.\r\n"])
    assert body == b"A: b\r\n\r\n.x\r\ny\r\n"


def test_pure_apop_and_errors() -> None:
    conn = greeted()
    _, requests = drive(login(conn, "alice", "tanstaaf", apop=True), [b"+OK\r\n"])
    sent = requests[0].data
    assert sent.startswith(b"APOP alice ") and len(sent.split()[2]) == 32
    with pytest.raises(POP3Error, match="no such message"):
        drive(retrieve(conn, 9), [b"-ERR no such message\r\n"])
    with pytest.raises(POP3Error, match="timestamp"):
        drive(login(greeted(b"+OK ready\r\n"), "alice", "pw", apop=True), [])
    with pytest.raises(POP3Error, match="closed"):
        drive(stat(conn), [b""])


def test_pure_stls_asks_for_the_handshake() -> None:
    conn = greeted()
    _, requests = drive(start_tls(conn, "mail.test"), [b"+OK begin\r\n"])
    assert requests[-1] == StartTLS("mail.test")
    assert conn.tls_active


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    box = Maildir(tmp_path / "server")
    for message in MESSAGES:
        box.deliver(message)
    return Path(box.path)


@pytest.fixture
def server(maildir: Path) -> Iterator[POP3Server]:
    srv = POP3Server("127.0.0.1", 0, maildir=maildir, users=USERS, timeouts=Timeouts(5.0))
    with srv.running():
        yield srv


def test_fetch_all(server: POP3Server) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5) as client:
        client.login("alice", "s3cret")
        count, size = client.stat()
        assert count == 2
        listing = client.list_messages()
        assert [n for n, _ in listing] == [1, 2]
        assert sum(s for _, s in listing) == size
        assert len({uid for _, uid in client.uidl()}) == 2
        bodies = [client.retrieve(n) for n, _ in listing]
    assert bodies == [m.replace(b"\n", b"\r\n") for m in MESSAGES]


def test_apop_login(server: POP3Server) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5) as client:
        client.login("alice", "s3cret", apop=True)
        assert client.stat()[0] == 2


def test_delete_is_committed_at_quit(server: POP3Server, maildir: Path) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5) as client:
        client.login("alice", "s3cret")
        client.delete(1)
    assert len(list((maildir / "new").iterdir())) == 1
    client = POP3Client("127.0.0.1", server.port, timeout=5)
    client.login("alice", "s3cret")
    client.delete(1)
    client.close()  # no QUIT: nothing deleted
    assert len(list((maildir / "new").iterdir())) == 1


def test_wrong_password(server: POP3Server) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5) as client, pytest.raises(POP3Error):
        client.login("alice", "wrong")


@pytest.fixture
def tls_server(maildir: Path, tls: TLS) -> Iterator[POP3Server]:
    srv = POP3Server(
        "127.0.0.1", 0, maildir=maildir, users=USERS, tls_context=tls.server, timeouts=Timeouts(5)
    )
    with srv.running():
        yield srv


def test_stls(tls_server: POP3Server, tls: TLS) -> None:
    with POP3Client("127.0.0.1", tls_server.port, stls=True, verify=tls.client) as client:
        assert isinstance(client.stream.socket, ssl.SSLSocket)
        client.login("alice", "s3cret")
        assert client.stat()[0] == 2


def test_stls_verifies_by_default(tls_server: POP3Server) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        POP3Client("127.0.0.1", tls_server.port, stls=True, timeout=5)


def test_implicit_tls(server: POP3Server, tls: TLS) -> None:
    proxy = TLSProxy(tls.server, server.port)
    try:
        with POP3Client("127.0.0.1", proxy.port, tls=True, verify=tls.client, timeout=5) as client:
            assert isinstance(client.stream.socket, ssl.SSLSocket)
            client.login("alice", "s3cret")
            assert client.retrieve(2) == MESSAGES[1].replace(b"\n", b"\r\n")
    finally:
        proxy.close()
