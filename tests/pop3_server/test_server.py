"""The blocking POP3 server over a Maildir, driven by the stdlib poplib client."""

from __future__ import annotations

import poplib
import re
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protomata.pop3 import apop_digest
from protomata.pop3._server import to_crlf
from protomata.sync import Timeouts
from protomata.sync._pop3server import POP3Server

TIMEOUT = 10

MSG1 = b"From: a@example.com\nSubject: one\n\nline 1\n.dot line\n..two dots\nlast\n"
MSG2 = b"From: b@example.com\r\nSubject: two\r\n\r\nalready crlf\r\n"
MSG3 = b"Subject: three\n\nb1\nb2\nb3\nb4"  # no final line end


def make_maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "1000.M1P1.host").write_bytes(MSG1)
    (root / "new" / "1001.M2P1.host").write_bytes(MSG2)
    (root / "cur" / "1002.M3P1.host:2,S").write_bytes(MSG3)
    return root


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return make_maildir(tmp_path / "Maildir")


@pytest.fixture
def server(maildir: Path) -> Iterator[POP3Server]:
    srv = POP3Server(
        "127.0.0.1", 0, maildir=maildir, users={"alice": "s3cret"}, timeouts=Timeouts(5.0)
    )
    with srv.running():
        yield srv


def login(server: POP3Server) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", server.port, timeout=TIMEOUT)
    client.user("alice")
    client.pass_("s3cret")
    return client


def files(maildir: Path) -> list[str]:
    return sorted(p.name for sub in ("new", "cur") for p in (maildir / sub).iterdir())


def test_greeting_has_apop_timestamp_and_capa(server: POP3Server) -> None:
    client = poplib.POP3("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        assert client.getwelcome().startswith(b"+OK ")
        assert re.search(rb"<[^<>]+@[^<>]+>", client.getwelcome()) is not None
        caps = client.capa()
        assert "USER" in caps and "UIDL" in caps and "TOP" in caps
        assert "STLS" not in caps  # no TLS context configured
        assert caps["SASL"] == ["PLAIN", "LOGIN", "CRAM-MD5"]
    finally:
        client.quit()


def test_user_pass_stat_list(server: POP3Server) -> None:
    client = login(server)
    try:
        sizes = [len(to_crlf(m)) for m in (MSG1, MSG2, MSG3)]
        assert client.stat() == (3, sum(sizes))
        resp, lines, _ = client.list()
        assert resp.startswith(b"+OK")
        assert lines == [f"{n} {s}".encode() for n, s in enumerate(sizes, 1)]
        assert client.list(2) == f"+OK 2 {sizes[1]}".encode()  # type: ignore[comparison-overlap]
        with pytest.raises(poplib.error_proto):
            client.list(9)
    finally:
        client.quit()


def test_retr_converts_lf_to_crlf_and_unstuffs_dots(server: POP3Server) -> None:
    client = login(server)
    try:
        resp, lines, octets = client.retr(1)
        assert resp.startswith(b"+OK")
        assert b"\r\n".join(lines) + b"\r\n" == to_crlf(MSG1)
        assert lines[4:6] == [b".dot line", b"..two dots"]
        assert octets == len(to_crlf(MSG1))
        resp, lines, _ = client.retr(2)
        assert b"\r\n".join(lines) + b"\r\n" == MSG2
    finally:
        client.quit()


def test_retr_wire_bytes_are_exact(server: POP3Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"USER alice\r\nPASS s3cret\r\nRETR 1\r\nQUIT\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    body = to_crlf(MSG1).replace(b"\r\n.", b"\r\n..")
    assert f"+OK {len(to_crlf(MSG1))} octets\r\n".encode() + body + b".\r\n" in data
    assert data.endswith(b"+OK bye (0 messages deleted)\r\n")


def test_retr_size_matches_list_without_final_newline(server: POP3Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"USER alice\r\nPASS s3cret\r\nLIST 3\r\nRETR 3\r\nQUIT\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    size = int(data.split(b"+OK 3 ")[1].split(b"\r\n")[0])
    body = data.split(b" octets\r\n", 1)[1].split(b".\r\n+OK bye")[0]
    assert body == b"Subject: three\r\n\r\nb1\r\nb2\r\nb3\r\nb4\r\n"
    assert size == len(body)


def test_top(server: POP3Server) -> None:
    client = login(server)
    try:
        _, lines, _ = client.top(3, 2)
        assert lines == [b"Subject: three", b"", b"b1", b"b2"]
        _, lines, _ = client.top(3, 0)
        assert lines == [b"Subject: three", b""]
    finally:
        client.quit()


def test_uidl_is_stable_across_sessions(server: POP3Server) -> None:
    client = login(server)
    _, first, _ = client.uidl()
    one = client.uidl(3)
    client.quit()
    assert first == [b"1 1000.M1P1.host", b"2 1001.M2P1.host", b"3 1002.M3P1.host"]
    assert one == b"+OK 3 1002.M3P1.host"
    client = login(server)
    try:
        assert client.uidl()[1] == first
    finally:
        client.quit()


def test_apop(server: POP3Server) -> None:
    client = poplib.POP3("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        assert client.apop("alice", "s3cret").startswith(b"+OK")
        assert client.stat()[0] == 3
    finally:
        client.quit()


def test_apop_wrong_secret(server: POP3Server) -> None:
    client = poplib.POP3("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        with pytest.raises(poplib.error_proto):
            client.apop("alice", "wrong")
        with pytest.raises(poplib.error_proto):
            client.apop("mallory", "s3cret")
    finally:
        client.quit()


def test_wrong_password(server: POP3Server) -> None:
    client = poplib.POP3("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        client.user("alice")
        with pytest.raises(poplib.error_proto, match="AUTH"):
            client.pass_("nope")
        with pytest.raises(poplib.error_proto):
            client.stat()  # still not logged in
        client.user("alice")
        assert client.pass_("s3cret").startswith(b"+OK")
    finally:
        client.quit()


def test_sasl_plain(server: POP3Server) -> None:
    client = poplib.POP3("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        resp = client._shortcmd(  # type: ignore[attr-defined]
            "AUTH PLAIN AGFsaWNlAHMzY3JldA=="
        )  # \0alice\0s3cret
        assert resp.startswith(b"+OK")
        assert client.stat()[0] == 3
    finally:
        client.quit()


def test_sasl_plain_with_challenge(server: POP3Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"+OK")
        sock.sendall(b"AUTH PLAIN\r\n")
        assert stream.readline() == b"+ \r\n"
        sock.sendall(b"AGFsaWNlAHdyb25n\r\n")  # \0alice\0wrong
        assert stream.readline().startswith(b"-ERR [AUTH]")
        sock.sendall(b"AUTH PLAIN\r\n*\r\nQUIT\r\n")
        assert stream.readline() == b"+ \r\n"
        assert stream.readline().startswith(b"-ERR")
        assert stream.readline().startswith(b"+OK")


def test_dele_then_quit_removes_the_file(server: POP3Server, maildir: Path) -> None:
    client = login(server)
    assert client.dele(1).startswith(b"+OK")
    with pytest.raises(poplib.error_proto):
        client.retr(1)  # marked messages are invisible
    with pytest.raises(poplib.error_proto):
        client.dele(1)
    assert client.stat()[0] == 2
    assert "1000.M1P1.host" in files(maildir)  # nothing happens before QUIT
    assert client.quit().startswith(b"+OK")
    assert files(maildir) == ["1001.M2P1.host", "1002.M3P1.host:2,S"]
    client = login(server)
    try:
        assert client.stat()[0] == 2
        assert client.uidl(1) == b"+OK 1 1001.M2P1.host"
    finally:
        client.quit()


def test_dele_in_cur_removes_the_file(server: POP3Server, maildir: Path) -> None:
    client = login(server)
    client.dele(3)
    client.quit()
    assert files(maildir) == ["1000.M1P1.host", "1001.M2P1.host"]


def test_dele_then_rset_keeps_the_file(server: POP3Server, maildir: Path) -> None:
    before = files(maildir)
    client = login(server)
    client.dele(1)
    client.dele(2)
    assert client.rset().startswith(b"+OK")
    assert client.stat()[0] == 3
    client.quit()
    assert files(maildir) == before


def test_dele_then_drop_keeps_the_file(server: POP3Server, maildir: Path) -> None:
    before = files(maildir)
    client = login(server)
    client.dele(1)
    client.close()  # no QUIT: no UPDATE state
    # The session ends and releases the mailbox; a new login sees everything.
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            client = login(server)
            break
        except poplib.error_proto:  # still locked by the dropped session
            assert time.monotonic() < deadline
            time.sleep(0.05)
    try:
        assert client.stat()[0] == 3
    finally:
        client.quit()
    assert files(maildir) == before


def test_shutdown_ends_idle_sessions_without_deleting(maildir: Path) -> None:
    srv = POP3Server("127.0.0.1", 0, maildir=maildir, users={"alice": "s3cret"}, grace=5.0)
    before = files(maildir)
    with srv.running():
        client = login(srv)
        client.dele(1)
        started = time.monotonic()
    assert time.monotonic() - started < 3  # the idle session did not hold shutdown up
    client.close()
    assert files(maildir) == before


def test_mailbox_is_locked_by_one_session(server: POP3Server) -> None:
    first = login(server)
    try:
        second = poplib.POP3("127.0.0.1", server.port, timeout=TIMEOUT)
        second.user("alice")
        with pytest.raises(poplib.error_proto, match="IN-USE"):
            second.pass_("s3cret")
        second.quit()
    finally:
        first.quit()


def test_idle_timeout_closes(maildir: Path) -> None:
    srv = POP3Server(
        "127.0.0.1", 0, maildir=maildir, users={"alice": "s3cret"}, timeouts=Timeouts(0.3)
    )
    with srv.running(), socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"+OK")
        assert stream.readline().startswith(b"-ERR autologout")
        assert stream.readline() == b""


def test_unknown_commands_and_transaction_commands_before_login(server: POP3Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"+OK")
        sock.sendall(b"FOO\r\nSTAT\r\nPASS x\r\nSTLS\r\nNOOP\r\nQUIT\r\n")
        replies = [stream.readline() for _ in range(6)]
        assert [r[:4] for r in replies] == [b"-ERR"] * 5 + [b"+OK "]
        assert stream.readline() == b""


def read_line(sock: socket.socket) -> bytes:
    """One line, read byte by byte (nothing after it is consumed)."""
    line = b""
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            break
        line += byte
    return line


# -- STLS ---------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


@pytest.fixture
def tls_server(maildir: Path, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> Iterator[POP3Server]:
    srv = POP3Server(
        "127.0.0.1",
        0,
        maildir=maildir,
        users={"alice": "s3cret"},
        tls_context=tls[0],
        timeouts=Timeouts(5.0),
    )
    with srv.running():
        yield srv


def test_stls(tls_server: POP3Server, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    client = poplib.POP3("127.0.0.1", tls_server.port, timeout=TIMEOUT)
    try:
        assert "STLS" in client.capa()
        assert client.stls(tls[1]).startswith(b"+OK")
        assert isinstance(client.sock, ssl.SSLSocket)
        assert "STLS" not in client.capa()  # no second STLS
        client.user("alice")
        client.pass_("s3cret")
        _, lines, _ = client.retr(2)
        assert b"\r\n".join(lines) + b"\r\n" == MSG2
    finally:
        client.quit()


def test_stls_injection_is_not_processed(
    tls_server: POP3Server, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    sock = socket.create_connection(("127.0.0.1", tls_server.port), timeout=TIMEOUT)
    try:
        assert read_line(sock).startswith(b"+OK")
        sock.sendall(b"STLS\r\nUSER alice\r\n")  # one packet: USER must be dropped
        assert read_line(sock).startswith(b"+OK")
        tls_sock = tls[1].wrap_socket(sock, server_hostname="127.0.0.1")
        tls_stream = tls_sock.makefile("rb")
        # Had USER been processed, PASS would succeed; it must be refused.
        tls_sock.sendall(b"PASS s3cret\r\n")
        assert tls_stream.readline().startswith(b"-ERR")
        tls_sock.sendall(b"USER alice\r\nPASS s3cret\r\nQUIT\r\n")
        assert tls_stream.readline().startswith(b"+OK")
        assert tls_stream.readline().startswith(b"+OK alice has 3 messages")
        assert tls_stream.readline().startswith(b"+OK")
        tls_sock.close()
    finally:
        sock.close()


def test_apop_digest_helper_matches_poplib() -> None:
    # poplib.apop computes md5(timestamp + secret) too; check our helper agrees.
    import hashlib

    ts = "<1.2@host>"
    assert apop_digest(ts, "pw") == hashlib.md5(b"<1.2@host>pw").hexdigest()
