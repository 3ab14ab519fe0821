"""The pure POP3 client operations and POP3Client against protomata's POP3 server."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protomata._core import CLIENT
from protomata._core._ops import Call, Receive, Send, StartTLS
from protomata.pop3 import Capabilities, Connection
from protomata.pop3 import _client as ops
from protomata.pop3._client import POP3Error, login, retrieve, start_tls, stat
from protomata.pop3._client import greeting as read_greeting
from protomata.sync import POP3Client, POP3Server, Timeouts
from protomata.sync._maildir import Maildir

from .conftest import TLS, TLSProxy

USERS = {"alice": "s3cret"}
MESSAGES = [
    b"Subject: one\n\n.leading dot\nbody one\n",
    b"Subject: two\n\nbody two\n",
]


def drive(op: Any, replies: list[bytes], log: list[Any] | None = None) -> tuple[Any, list[Any]]:
    """Run a pure operation against scripted server bytes; return (result, requests).

    The requests are also appended to *log*, which survives an exception.
    """
    requests: list[Any] = [] if log is None else log
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


# -- pure operations: the extensions ---------------------------------------------------


def sent(requests: list[Any]) -> list[bytes]:
    return [r.data for r in requests if isinstance(r, Send)]


def logged_in() -> Connection:
    conn = greeted()
    drive(login(conn, "alice", "pw"), [b"+OK\r\n", b"+OK\r\n"])
    return conn


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_pure_capabilities() -> None:
    conn = greeted()
    caps, requests = drive(
        ops.capabilities(conn), [b"+OK list\r\nTOP\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n"]
    )
    assert sent(requests) == [b"CAPA\r\n"]
    assert "TOP" in caps and "stls" in caps and "UTF8" not in caps
    assert caps.arguments("SASL") == ("PLAIN", "LOGIN")
    none, _ = drive(ops.capabilities(greeted()), [b"-ERR unknown command\r\n"])
    assert isinstance(none, Capabilities) and none.capabilities == ()


def test_pure_sasl_plain_with_and_without_initial_response() -> None:
    conn = greeted()
    _, requests = drive(ops.authenticate(conn, "plain", "alice", "pw"), [b"+OK in\r\n"])
    assert sent(requests) == [b"AUTH PLAIN " + b64(b"\0alice\0pw") + b"\r\n"]
    conn = greeted()
    _, requests = drive(
        ops.authenticate(conn, "PLAIN", "alice", "pw", authzid="admin", initial_response=False),
        [b"+ \r\n", b"+OK in\r\n"],
    )
    assert sent(requests) == [b"AUTH PLAIN\r\n", b64(b"admin\0alice\0pw") + b"\r\n"]
    assert conn.state.name == "TRANSACTION"


def test_pure_sasl_login_and_refusal() -> None:
    conn = greeted()
    script = [b"+ " + b64(b"Username:") + b"\r\n", b"+ " + b64(b"Password:") + b"\r\n", b"+OK\r\n"]
    _, requests = drive(ops.authenticate(conn, "LOGIN", "alice", "pw"), script)
    assert sent(requests) == [b"AUTH LOGIN\r\n", b64(b"alice") + b"\r\n", b64(b"pw") + b"\r\n"]
    # A third challenge is more than LOGIN has answers for: cancelled with "*".
    conn = greeted()
    script = [b"+ \r\n", b"+ \r\n", b"+ \r\n", b"-ERR [AUTH] cancelled\r\n"]
    with pytest.raises(POP3Error, match="AUTH LOGIN failed: -ERR \\[AUTH\\] cancelled") as info:
        drive(ops.authenticate(conn, "LOGIN", "alice", "pw"), script)
    assert info.value.text == "[AUTH] cancelled"


def test_pure_sasl_cram_md5_rfc2195_example() -> None:
    conn = greeted()
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    script = [b"+ " + b64(challenge) + b"\r\n", b"+OK\r\n"]
    _, requests = drive(ops.authenticate(conn, "CRAM-MD5", "tim", "tanstaaftanstaaf"), script)
    answer = base64.b64decode(sent(requests)[1].strip())
    assert answer == b"tim b913a602c7eda7a495b4e6e7334d3890"


def test_pure_sasl_xoauth2() -> None:
    conn = greeted()
    _, requests = drive(ops.authenticate(conn, "XOAUTH2", "a@x", "tok"), [b"+OK\r\n"])
    assert sent(requests) == [
        b"AUTH XOAUTH2 " + b64(b"user=a@x\x01auth=Bearer tok\x01\x01") + b"\r\n"
    ]
    # A refused token comes back as a challenge with a JSON error: answered empty.
    conn = greeted()
    script = [b"+ " + b64(b'{"status":"401"}') + b"\r\n", b"-ERR [AUTH] invalid token\r\n"]
    log: list[Any] = []
    with pytest.raises(POP3Error, match="invalid token"):
        drive(ops.authenticate(conn, "XOAUTH2", "a@x", "bad"), script, log)
    assert sent(log)[1:] == [b"\r\n"]
    with pytest.raises(ValueError, match="unsupported SASL mechanism"):
        drive(ops.authenticate(greeted(), "SCRAM-SHA-1", "a", "b"), [])


def test_pure_sasl_custom_mechanism() -> None:
    conn = greeted()
    seen: list[bytes] = []

    def respond(challenge: bytes) -> bytes | None:
        seen.append(challenge)
        return b"answer" if len(seen) == 1 else None

    script = [b"+ " + b64(b"one") + b"\r\n", b"+ " + b64(b"two") + b"\r\n", b"-ERR no\r\n"]
    log: list[Any] = []
    with pytest.raises(POP3Error, match="AUTH X-TEST failed"):
        drive(ops.sasl(conn, "X-TEST", respond, b"hi"), script, log)
    assert seen == [b"one", b"two"]
    assert sent(log) == [b"AUTH X-TEST " + b64(b"hi") + b"\r\n", b64(b"answer") + b"\r\n", b"*\r\n"]


def test_pure_top_size_uid_noop_rset_utf8() -> None:
    conn = greeted()
    _, requests = drive(ops.utf8(conn), [b"+OK utf8\r\n"])
    assert sent(requests) == [b"UTF8\r\n"] and conn.utf8
    drive(login(conn, "alice", "pw"), [b"+OK\r\n", b"+OK\r\n"])
    body, requests = drive(ops.top(conn, 1, 0), [b"+OK\r\nA: b\r\n\r\n.\r\n"])
    assert sent(requests) == [b"TOP 1 0\r\n"] and body == b"A: b\r\n\r\n"
    assert drive(ops.message_size(conn, 2), [b"+OK 2 120\r\n"])[0] == 120
    assert drive(ops.message_uid(conn, 2), [b"+OK 2 uid-2\r\n"])[0] == "uid-2"
    for op, wire in ((ops.noop, b"NOOP\r\n"), (ops.rset, b"RSET\r\n")):
        _, requests = drive(op(conn), [b"+OK\r\n"])
        assert sent(requests) == [wire]
    with pytest.raises(POP3Error, match="another message"):
        drive(ops.message_size(conn, 2), [b"+OK 3 120\r\n"])
    with pytest.raises(POP3Error, match="malformed LIST"):
        drive(ops.message_size(conn, 2), [b"+OK 2\r\n"])
    with pytest.raises(POP3Error, match="malformed STAT"):
        drive(ops.stat(conn), [b"+OK two 3\r\n"])
    with pytest.raises(POP3Error, match="NOOP failed"):
        drive(ops.noop(conn), [b"-ERR no\r\n"])


def test_pure_retrieve_chunks_yields_calls() -> None:
    conn = logged_in()
    size, requests = drive(ops.retrieve_chunks(conn, 1), [b"+OK\r\n..a\r\n", b"b\r", b"\n.\r\n"])
    chunks = [r.args[0] for r in requests if isinstance(r, Call)]
    assert all(r.name == "chunk" for r in requests if isinstance(r, Call))
    assert b"".join(chunks) == b".a\r\nb\r\n" and size == 7 and len(chunks) >= 2


def test_pure_limits_and_lost_connections() -> None:
    conn = Connection(CLIENT, max_line_length=100)
    drive(read_greeting(conn), [b"+OK hi\r\n"])
    drive(login(conn, "a", "b"), [b"+OK\r\n", b"+OK\r\n"])
    with pytest.raises(POP3Error, match="bad reply"):
        drive(retrieve(conn, 1), [b"+OK\r\n" + b"x" * 200 + b"\r\n.\r\n"])
    session = ops.ClientSession(max_line_length=1000)
    drive(session.open(), [b"+OK hi\r\n"])
    drive(session.login("a", "b"), [b"+OK\r\n", b"+OK\r\n"])
    assert (
        drive(session.retrieve(1), [b"+OK\r\n" + b"x" * 200 + b"\r\n.\r\n"])[0]
        == b"x" * 200 + b"\r\n"
    )
    # A reset at a Receive (thrown in by the adapter) is a POP3Error too.
    op = ops.stat(logged_in())
    assert isinstance(op.send(None), Send)
    assert isinstance(op.send(None), Receive)
    with pytest.raises(POP3Error, match="connection lost"):
        op.throw(ConnectionResetError("reset by peer"))
    op = ops.noop(logged_in())
    op.send(None)
    with pytest.raises(POP3Error, match="connection lost"):
        op.throw(BrokenPipeError("broken pipe"))
    # Timeouts stay TimeoutError.
    op = ops.noop(logged_in())
    op.send(None)
    op.send(None)
    with pytest.raises(TimeoutError):
        op.throw(TimeoutError("slow"))


def test_session_drains_an_abandoned_body() -> None:
    session = ops.ClientSession()
    drive(session.open(), [b"+OK hi\r\n"])
    drive(session.login("a", "b"), [b"+OK\r\n", b"+OK\r\n"])
    assert drive(session.begin_body(1), [b"+OK\r\n"])[0] == ""
    assert drive(session.read_body(), [b"one\r\n"])[0] == b"one\r\n"
    # The reader stops; the next command first reads the rest of the body.
    result, requests = drive(session.stat(), [b"two\r\n", b".\r\n", b"+OK 1 10\r\n"])
    assert result == (1, 10) and sent(requests) == [b"STAT\r\n"]
    assert drive(session.read_body(), [])[0] is None
    # An -ERR to RETR leaves nothing to drain.
    with pytest.raises(POP3Error, match="RETR 5 failed"):
        drive(session.retrieve_chunks(5), [b"-ERR no such message\r\n"])
    assert drive(session.noop(), [b"+OK\r\n"])[0] is None


# -- the blocking client against protomata's POP3 server ----------------------------------


def test_capa_sasl_plain_top_and_single_listings(server: POP3Server) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5) as client:
        caps = client.capa()
        assert "TOP" in caps and "UIDL" in caps
        assert "PLAIN" in (caps.arguments("SASL") or ())
        client.auth("PLAIN", "alice", "s3cret")
        sizes = dict(client.list_messages())
        uids = dict(client.uidl())
        assert client.message_size(2) == sizes[2]
        assert client.message_uid(1) == uids[1]
        assert client.top(1, 0) == b"Subject: one\r\n\r\n"
        assert client.top(1, 1) == b"Subject: one\r\n\r\n.leading dot\r\n"
        client.noop()
    with POP3Client("127.0.0.1", server.port, timeout=5) as client:
        client.auth("plain", "alice", "s3cret", initial_response=False)
        assert client.stat()[0] == 2


def test_sasl_refused_and_unsupported(server: POP3Server) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5) as client:
        with pytest.raises(POP3Error, match="AUTH PLAIN failed"):
            client.auth("PLAIN", "alice", "wrong")
        with pytest.raises(POP3Error, match="unsupported SASL mechanism"):
            client.auth("XOAUTH2", "alice", "token")
        client.auth("PLAIN", "alice", "s3cret")  # the session goes on after -ERR
        assert client.stat()[0] == 2


def test_err_replies_are_pop3errors_and_the_session_goes_on(server: POP3Server) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5) as client:
        client.login("alice", "s3cret")
        with pytest.raises(POP3Error, match="no such message") as info:
            client.retrieve(9)
        assert info.value.text == "no such message"
        for call in (
            lambda: client.delete(9),
            lambda: client.top(9, 1),
            lambda: client.message_uid(9),
            lambda: client.retrieve_to(9, open(os.devnull, "wb")),  # noqa: SIM115
            lambda: list(client.iter_retrieve(9)),
        ):
            with pytest.raises(POP3Error, match="no such message"):
                call()
        assert client.stat()[0] == 2


def test_rset_unmarks_deletions(server: POP3Server, maildir: Path) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5) as client:
        client.login("alice", "s3cret")
        client.delete(1)
        assert client.stat()[0] == 1
        client.rset()
        assert client.stat()[0] == 2
    assert len(list((maildir / "new").iterdir())) == 2


def test_iter_retrieve_and_breaking_out(server: POP3Server) -> None:
    with POP3Client("127.0.0.1", server.port, timeout=5) as client:
        client.login("alice", "s3cret")
        assert b"".join(client.iter_retrieve(1)) == MESSAGES[0].replace(b"\n", b"\r\n")
        assert b"".join(client.iter_retrieve(1, lines=0)) == b"Subject: one\r\n\r\n"
        for _chunk in client.iter_retrieve(2):
            break  # the rest is read before the next command
        assert client.retrieve(2) == MESSAGES[1].replace(b"\n", b"\r\n")


def test_line_limit_is_configurable(tmp_path: Path) -> None:
    box = Maildir(tmp_path / "long")
    message = b"Subject: long\n\n" + b"y" * 100_000 + b"\n"
    box.deliver(message)
    srv = POP3Server("127.0.0.1", 0, maildir=box.path, users=USERS, timeouts=Timeouts(5.0))
    with srv.running():
        with POP3Client("127.0.0.1", srv.port, timeout=5) as client:
            client.login("alice", "s3cret")
            with pytest.raises(POP3Error, match="exceeds the limit"):
                client.retrieve(1)
        client.close()
        with POP3Client("127.0.0.1", srv.port, timeout=5, max_line_length=200_000) as client:
            client.login("alice", "s3cret")
            assert client.retrieve(1) == message.replace(b"\n", b"\r\n")


# -- a server that misbehaves ----------------------------------------------------------------


class ScriptedServer:
    """Answers each command line of one connection with the next scripted reply, then
    closes (with a reset when *reset*)."""

    def __init__(self, replies: list[bytes], *, reset: bool = False) -> None:
        self.replies = replies
        self.reset = reset
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10.0)
        self.port: int = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10.0)
            lines = conn.makefile("rb")
            conn.sendall(b"+OK scripted <1.2@x>\r\n")
            for reply in self.replies:
                if not lines.readline():
                    break
                conn.sendall(reply)
            if self.reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.thread.join(15)
        self.listener.close()


#: Replies to USER, PASS and RETR; the RETR reply stops in the middle.
MID_RESPONSE = [b"+OK\r\n", b"+OK\r\n", b"+OK 900 octets\r\nSubject: x\r\n\r\npart of a li"]


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_server_closing_mid_response(reset: bool) -> None:
    server = ScriptedServer(list(MID_RESPONSE), reset=reset)
    try:
        client = POP3Client("127.0.0.1", server.port, timeout=5)
        client.login("alice", "pw")
        with pytest.raises(POP3Error):
            client.retrieve(1)
        client.close()
    finally:
        server.close()


def test_garbage_reply_is_a_pop3error() -> None:
    server = ScriptedServer([b"+OK\r\n", b"+OK\r\n", b"220 this is SMTP\r\n"])
    try:
        with POP3Client("127.0.0.1", server.port, timeout=5) as client:
            client.login("alice", "pw")
            with pytest.raises(POP3Error, match="bad reply"):
                client.stat()
            client.close()
    finally:
        server.close()


# -- 20 MB streamed with bounded memory ----------------------------------------------------


def big_message(target: int = 20 * 1024 * 1024) -> bytes:
    """About *target* bytes with 300 KB lines, dot lines and a lone "." line (LF ends)."""
    block = b"".join(
        [
            b".\n",
            b"..two dots\n",
            b".leading dot\n",
            b"z" * 300_000 + b"\n",
            b"a short line\n" * 200,
            b"." + b"q" * 5000 + b"\n",
        ]
    )
    body = block * (target // len(block) + 1)
    return b"Subject: big\nFrom: a@x\n\n" + body


class HashSink:
    """A file-like sink that keeps only a hash and counts."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0
        self.writes = 0
        self.largest = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.writes += 1
        self.largest = max(self.largest, len(data))
        return len(data)


def make_big_mailbox(root: Path) -> tuple[Path, bytes]:
    """A Maildir holding the big message (as stored, LF) and its wire form's hash + size."""
    box = Maildir(root / "Maildir")
    message = big_message()
    box.deliver(message)
    expected = message.replace(b"\n", b"\r\n")
    return Path(box.path), hashlib.sha256(expected).digest() + len(expected).to_bytes(8, "big")


@pytest.fixture(scope="module")
def big_mailbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """See :func:`make_big_mailbox`."""
    return make_big_mailbox(tmp_path_factory.mktemp("big"))


SERVE_POP3 = [sys.executable, "-m", "protomata.cli._serve_pop3"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_streaming_20mb_with_bounded_memory(big_mailbox: tuple[Path, bytes]) -> None:
    path, digest = big_mailbox
    port = free_port()
    # The server runs in its own process, so tracemalloc sees only the client.
    proc = subprocess.Popen(
        [*SERVE_POP3, "--port", str(port), "--maildir", str(path), "--user", "alice:s3cret"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"Serving POP3")
        with POP3Client("127.0.0.1", port, timeout=30, max_line_length=1 << 20) as client:
            client.login("alice", "s3cret")
            size = client.message_size(1)
            sink = HashSink()
            tracemalloc.start()
            try:
                returned = client.retrieve_to(1, sink)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert sink.hash.digest() + sink.size.to_bytes(8, "big") == digest
            assert returned == sink.size == size > 20 * 1024 * 1024
            assert sink.writes > 100
            # The whole message is 20 MB; the client never holds more than a few pieces.
            assert peak < 3 * 1024 * 1024, peak
            print(f"20 MB streamed: {sink.writes} pieces, largest {sink.largest}, peak {peak}")
            # The streamed iterator gives the same bytes.
            check = hashlib.sha256()
            total = 0
            for chunk in client.iter_retrieve(1):
                check.update(chunk)
                total += len(chunk)
            assert check.digest() + total.to_bytes(8, "big") == digest
    finally:
        proc.kill()
        proc.wait(10)


def test_fetch_mail_delivery_turns_split_crlf_into_lf(tmp_path: Path) -> None:
    from protomata.cli._mail import _MaildirDelivery

    box = Maildir(tmp_path / "local")
    delivery = _MaildirDelivery(box)
    for piece in (b"a\r", b"\nb\r", b"\r\n", b"c\r\n\r", b"\n", b"\r"):
        delivery.write(piece)
    path = delivery.commit()
    assert Path(path).read_bytes() == b"a\nb\r\nc\n\n\r"
    assert not list((tmp_path / "local" / "tmp").iterdir())
    dropped = _MaildirDelivery(box)
    dropped.write(b"partial")
    dropped.abort()
    assert not list((tmp_path / "local" / "tmp").iterdir())
    assert len(list((tmp_path / "local" / "new").iterdir())) == 1


WIRE_BODY = b"+OK\r\nSubject: s\r\n\r\n..a\r\n..\r\n.b..\r\n\r\n" + b"x" * 300 + b"\r\n.\r\n"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(WIRE_BODY)), max_size=30))
def test_retrieve_is_chunking_invariant(cuts: list[int]) -> None:
    points = sorted({0, len(WIRE_BODY), *cuts})
    pieces = [WIRE_BODY[a:b] for a, b in itertools.pairwise(points)]
    session = ops.ClientSession(max_line_length=400)
    drive(session.open(), [b"+OK hi\r\n"])
    drive(session.login("a", "b"), [b"+OK\r\n", b"+OK\r\n"])
    size, requests = drive(session.retrieve_chunks(1), pieces)
    body = b"".join(r.args[0] for r in requests if isinstance(r, Call))
    assert body == b"Subject: s\r\n\r\n.a\r\n.\r\nb..\r\n\r\n" + b"x" * 300 + b"\r\n"
    assert size == len(body)
