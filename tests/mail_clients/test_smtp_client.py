"""The SMTP clients against protomata's own SMTP server, scripted peers and in memory.

aiosmtpd covers the common extensions (test_smtp_aiosmtpd.py); what it lacks
-- PIPELINING, CHUNKING, DSN -- is exercised here against our sync
SMTPServer and against scripted servers built on the server machine.  The
pure operations' decisions (which MAIL parameters, which AUTH exchange,
what is refused before sending) are checked in memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protomata.asyncio
import protomata.sync
from protomata._core._ops import Operation, Receive, Send, StartTLS
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
    Lhlo,
    LocalProtocolError,
    MailFrom,
    Quit,
    RcptTo,
    RemoteProtocolError,
    Reply,
    SMTPEvent,
    State,
)
from protomata.smtp import StartTLS as StartTLSCommand
from protomata.smtp._operations import (
    SendResult,
    authenticate,
    mail_transaction,
    open_session,
    prepare_message,
)
from protomata.smtp._operations import quit as quit_op
from protomata.sync import SMTPClient, SMTPError, SMTPServer, Timeouts

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
        return Reply(550, ["no"], "5.1.1") if address == "bob@y" else None

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


# -- the blocking client against our SMTPServer ---------------------------------------------


def test_send_bytes_to_two_recipients(server: SMTPServer, maildir: Path) -> None:
    with SMTPClient("127.0.0.1", server.port, timeout=5) as client:
        result = client.send_message(MESSAGE, "a@x", ["b@y", "c@z"])
    assert result.ok and sorted(result.accepted) == ["b@y", "c@z"]
    [content] = stored(maildir)
    assert content.endswith(b"Subject: hi\n\n.dot first\nbody\n")
    assert b"Return-Path: <a@x>" in content


def test_many_messages_on_one_connection(server: SMTPServer, maildir: Path) -> None:
    client = SMTPClient("127.0.0.1", server.port, timeout=5)
    client.connect()
    first_session = client.connection
    for n in range(5):
        assert client.send_message(b"Subject: %d\r\n\r\nx\r\n" % n, "a@x", "b@y").ok
        assert client.connection is first_session
    assert client.noop().code == 250
    assert client.rset().code == 250
    reply = client.quit()
    assert reply is not None and reply.code == 221
    assert client.connection is None and client.quit() is None
    assert len(stored(maildir)) == 5


def test_send_message_connects_on_first_use(server: SMTPServer, maildir: Path) -> None:
    client = SMTPClient("127.0.0.1", server.port, timeout=5)
    assert len(client.extensions) == 0 and client.connection is None
    with pytest.raises(RuntimeError, match="not connected"):
        client._session()
    assert client.send_message(MESSAGE, "a@x", "b@y").ok
    assert client.extensions.pipelining and client.extensions.chunking
    client.quit()
    assert len(stored(maildir)) == 1


def test_send_email_message_takes_envelope_from_headers(server: SMTPServer, maildir: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "Ann <a@x>"
    msg["To"] = "b@y, Carl <c@z>"
    msg["Bcc"] = "secret@z"
    msg["Subject"] = "typed"
    msg.set_content("hello\n.\nworld\n")
    with SMTPClient("127.0.0.1", server.port, timeout=5) as client:
        result = client.send_message(msg)
    assert sorted(result.accepted) == ["b@y", "c@z", "secret@z"]
    assert msg["Bcc"] == "secret@z"  # the caller's message is untouched
    [content] = stored(maildir)
    assert b"Bcc" not in content
    assert b"Subject: typed\n" in content
    assert content.endswith(b"hello\n.\nworld\n")


def test_one_recipient_refused(maildir: Path) -> None:
    handler = RefuseBob()
    srv = SMTPServer(handler, maildir=maildir, timeouts=Timeouts(5.0))
    with srv.running(), SMTPClient("127.0.0.1", srv.port, timeout=5) as client:
        result = client.send_message(MESSAGE, "a@x", ["bob@y", "c@z"])
    assert list(result.refused) == ["bob@y"]
    assert result.refused["bob@y"] == Reply(550, "no", "5.1.1")
    assert list(result.accepted) == ["c@z"]
    assert handler.rcpts == ["bob@y", "c@z"]
    assert handler.messages == [(["c@z"], MESSAGE)]


def test_all_recipients_refused_is_a_result_and_the_session_goes_on(maildir: Path) -> None:
    handler = RefuseBob()
    srv = SMTPServer(handler, maildir=maildir, timeouts=Timeouts(5.0))
    with srv.running(), SMTPClient("127.0.0.1", srv.port, timeout=5) as client:
        result = client.send_message(MESSAGE, "a@x", "bob@y")
        assert result.accepted == {} and result.reply is None
        assert set(result.refused) == {"bob@y"}
        assert client.send_message(MESSAGE, "a@x", "c@z").ok
    assert handler.messages == [(["c@z"], MESSAGE)]


def test_pipelining_and_chunking_against_our_server(maildir: Path) -> None:
    """A 2.5 MB message goes in three pipelined BDAT chunks; DATA when chunking=False."""
    handler = RefuseBob()
    srv = SMTPServer(handler, maildir=maildir, timeouts=Timeouts(5.0))
    big = b"Subject: big\r\n\r\n" + b".leading dot\r\n" + b"y" * 998 + b"\r\n"
    big += b"z" * 76 + b"\r\n" + b"." * 20 + b"\r\n"
    big *= 2500
    proxy = RecordingProxy(srv.port)
    with srv.running():
        try:
            with SMTPClient("127.0.0.1", proxy.port, timeout=10) as client:
                assert client.send_message(big, "a@x", ["c@z", "bob@y", "d@z"]).accepted
            with SMTPClient("127.0.0.1", proxy.port, timeout=10, chunking=False) as client:
                assert client.send_message(big, "a@x", "c@z").ok
        finally:
            proxy.close()
    assert [data for _, data in handler.messages] == [big, big]
    chunked, dotted = proxy.sent
    assert chunked.count(b"BDAT ") == 3 and b"BDAT 1048576\r\n" in chunked
    assert b"\r\nDATA\r\n" not in chunked and b"\r\n..leading dot" not in chunked
    # MAIL and the RCPTs went out in one write, before any reply came back
    assert any(w.startswith(b"MAIL FROM:") and w.count(b"RCPT TO:") == 3 for w in proxy.writes)
    assert b"\r\nDATA\r\n" in dotted and b"\r\n..leading dot" in dotted


def test_bytes_need_an_envelope(server: SMTPServer) -> None:
    client = SMTPClient("127.0.0.1", server.port, timeout=5)
    with pytest.raises(ValueError, match="from_addr"):
        client.send_message(MESSAGE)
    assert client.connection is None  # validated before connecting
    with pytest.raises(ValueError, match="no recipients"):
        client.send_message(MESSAGE, "a@x", [])
    with pytest.raises(ValueError):
        SMTPClient("127.0.0.1", server.port, starttls="sometimes")
    with pytest.raises(ValueError):
        SMTPClient("127.0.0.1", server.port, username="u")
    with pytest.raises(ValueError):
        SMTPClient("127.0.0.1", server.port, username="u", password="p", token="t")
    with pytest.raises(ValueError):
        SMTPClient("127.0.0.1", server.port, tls=True, starttls="required")
    assert SMTPClient("h").port == 25 and SMTPClient("h", lmtp=True).port == 24


def test_control_characters_are_local_errors(server: SMTPServer, maildir: Path) -> None:
    with SMTPClient("127.0.0.1", server.port, timeout=5) as client:
        for sender, rcpt in [("a@x\r\nRSET", "b@y"), ("a@x", "b@y\nDATA"), ("a\0@x", "b@y")]:
            with pytest.raises(LocalProtocolError):
                client.send_message(MESSAGE, sender, rcpt)
        with pytest.raises(LocalProtocolError):
            client.send_message(MESSAGE, "a@x", "b@y", envid="id\r\nQUIT")
        assert client.send_message(MESSAGE, "a@x", "b@y").ok  # nothing was injected
    with pytest.raises(LocalProtocolError):
        SMTPClient("127.0.0.1", server.port, local_hostname="me\r\nMAIL", timeout=5).connect()
    assert len(stored(maildir)) == 1


def test_starttls_required_but_not_offered(server: SMTPServer, maildir: Path) -> None:
    client = SMTPClient("127.0.0.1", server.port, starttls="required", timeout=5)
    with pytest.raises(SMTPError, match="STARTTLS"):
        client.send_message(MESSAGE, "a@x", ["b@y"])
    assert client.connection is None
    assert stored(maildir) == []


@pytest.fixture
def tls_server(maildir: Path, tls: TLS) -> Iterator[SMTPServer]:
    srv = SMTPServer(
        maildir=maildir, timeouts=Timeouts(5.0), tls_context=tls.server, users={"u": "p"}
    )
    with srv.running():
        yield srv


def test_starttls_verified(tls_server: SMTPServer, maildir: Path, tls: TLS) -> None:
    with SMTPClient(
        "127.0.0.1", tls_server.port, starttls="required", verify=tls.client, timeout=5
    ) as client:
        assert client.connection is not None and client.connection.tls_active
        assert client.send_message(MESSAGE, "a@x", ["b@y"]).ok
    [content] = stored(maildir)
    assert b"with ESMTPS" in content


def test_starttls_verification_is_on_by_default(tls_server: SMTPServer, maildir: Path) -> None:
    client = SMTPClient("127.0.0.1", tls_server.port, starttls="required", timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        client.send_message(MESSAGE, "a@x", ["b@y"])
    assert stored(maildir) == []


def test_starttls_insecure_opt_out(tls_server: SMTPServer, maildir: Path) -> None:
    with SMTPClient("127.0.0.1", tls_server.port, starttls="if-offered", verify=False) as client:
        assert client.send_message(MESSAGE, "a@x", ["b@y"]).ok
    assert len(stored(maildir)) == 1


def test_implicit_tls(server: SMTPServer, maildir: Path, tls: TLS) -> None:
    proxy = TLSProxy(tls.server, server.port)
    try:
        with SMTPClient("127.0.0.1", proxy.port, tls=True, verify=tls.client, timeout=5) as c:
            assert c.send_message(MESSAGE, "a@x", ["b@y"]).ok
        untrusted = SMTPClient("127.0.0.1", proxy.port, tls=True, timeout=5)
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusted.send_message(MESSAGE, "a@x", ["b@y"])
    finally:
        proxy.close()
    assert len(stored(maildir)) == 1


def test_auth_after_starttls(tls_server: SMTPServer, maildir: Path, tls: TLS) -> None:
    options: dict[str, Any] = {"starttls": "required", "verify": tls.client, "timeout": 5}
    with SMTPClient("127.0.0.1", tls_server.port, username="u", password="p", **options) as c:
        assert c.send_message(MESSAGE, "a@x", ["b@y"]).ok
    with SMTPClient("127.0.0.1", tls_server.port, **options) as c:
        assert c.login("u", "p", mechanism="LOGIN").code == 235
        assert c.send_message(MESSAGE, "a@x", ["b@y"]).ok
    assert all(b"with ESMTPSA" in content for content in stored(maildir))


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


# -- scripted peers built on the server machine ---------------------------------------------

EHLO = ["scripted.test", "PIPELINING", "SIZE 100000", "8BITMIME", "DSN", "CHUNKING"]


class RecordingProxy:
    """Relays one TCP connection at a time to *backend*, recording what the client wrote."""

    def __init__(self, backend: int) -> None:
        self.backend = backend
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port: int = self.listener.getsockname()[1]
        self.writes: list[bytes] = []
        self.sent: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            backend = socket.create_connection(("127.0.0.1", self.backend), timeout=10)
            done = threading.Thread(target=_relay, args=(backend, client, None), daemon=True)
            done.start()
            record: list[bytes] = []
            _relay(client, backend, record)
            done.join(10)
            self.writes += record
            self.sent.append(b"".join(record))

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


def _relay(source: socket.socket, sink: socket.socket, record: list[bytes] | None) -> None:
    source.settimeout(10)
    try:
        while data := source.recv(1 << 20):
            if record is not None:
                record.append(data)
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


Answer = Callable[[SMTPEvent], list[Reply]]


def default_answer(event: SMTPEvent, lines: list[str] = EHLO) -> list[Reply]:
    if isinstance(event, (Ehlo, Lhlo)):
        return [Reply(250, lines)]
    if isinstance(event, Data):
        return [Reply(354, "go ahead")]
    if isinstance(event, Quit):
        return [Reply(221, "bye")]
    if isinstance(event, StartTLSCommand):
        return [Reply(220, "go ahead")]
    if isinstance(event, DataChunk):
        return []
    if isinstance(event, Bdat) and not event.last:
        return [Reply(250, f"{len(event.chunk)} bytes")]
    return [Reply(250, "ok")]


class ScriptedServer:
    """Serves connections with a server machine, answering with *answer*.

    *inject* is sent right after the 220 reply to STARTTLS, in the same
    write: plaintext a man in the middle slipped in, which the client
    must discard.
    """

    def __init__(
        self, answer: Answer = default_answer, *, tls: ssl.SSLContext | None = None,
        inject: bytes = b"",
    ) -> None:  # fmt: skip
        self.answer = answer
        self.tls = tls
        self.inject = inject
        self.events: list[SMTPEvent] = []
        self.reads: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._serve(sock)
            except (OSError, ssl.SSLError):
                pass
            finally:
                sock.close()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        conn = Connection(SERVER)
        sock.sendall(conn.send(Reply(220, "scripted.test ESMTP")))
        while True:
            data = sock.recv(65536)
            self.reads.append(data)
            conn.receive_data(data)
            out = b""
            starting_tls = False
            while True:
                event = conn.next_event()
                if event is NEED_DATA or event is PAUSED:
                    break
                if isinstance(event, ConnectionClosed):
                    return
                self.events.append(event)
                for reply in self.answer(event):
                    out += conn.send(reply)
                if isinstance(event, StartTLSCommand):
                    starting_tls = True
                    break
            if out:
                sock.sendall(out + (self.inject if starting_tls else b""))
            if starting_tls:
                assert self.tls is not None
                sock = self.tls.wrap_socket(sock, server_side=True)
                conn.start_tls_done()
            if conn.state is State.CLOSED:
                return

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(*args: Any, **kwargs: Any) -> ScriptedServer:
        servers.append(ScriptedServer(*args, **kwargs))
        return servers[-1]

    yield make
    for srv in servers:
        srv.close()


def test_dsn_parameters(scripted: Callable[..., ScriptedServer]) -> None:
    srv = scripted()
    with SMTPClient("127.0.0.1", srv.port, timeout=5) as client:
        result = client.send_message(
            MESSAGE, "a@x", ["b@y", "c+tag@y"],
            ret="hdrs", envid="id=1+2 x", notify=["success", "FAILURE"], orcpt=True,
        )  # fmt: skip
        assert result.ok
        client.send_message(MESSAGE, "a@x", "b@y", notify="NEVER")
        with pytest.raises(ValueError):
            client.send_message(MESSAGE, "a@x", "b@y", notify=["NEVER", "SUCCESS"])
        with pytest.raises(ValueError):
            client.send_message(MESSAGE, "a@x", "b@y", ret="ALL")
    mails = [e for e in srv.events if isinstance(e, MailFrom)]
    rcpts = [e for e in srv.events if isinstance(e, RcptTo)]
    assert mails[0].params == (
        ("SIZE", str(len(MESSAGE))),
        ("RET", "HDRS"),
        ("ENVID", "id+3D1+2B2+20x"),
    )
    assert rcpts[0].params == (("NOTIFY", "SUCCESS,FAILURE"), ("ORCPT", "rfc822;b@y"))
    assert rcpts[1].params == (("NOTIFY", "SUCCESS,FAILURE"), ("ORCPT", "rfc822;c+2Btag@y"))
    assert rcpts[2].params == (("NOTIFY", "NEVER"),)
    # CHUNKING was offered: the messages went as BDAT, after pipelined MAIL/RCPT
    assert [e.chunk for e in srv.events if isinstance(e, Bdat)] == [MESSAGE, MESSAGE]
    assert any(r.startswith(b"MAIL FROM:") and r.count(b"RCPT TO:") == 2 for r in srv.reads)


def test_dsn_requests_are_dropped_when_not_offered(
    scripted: Callable[..., ScriptedServer],
) -> None:
    srv = scripted(lambda e: default_answer(e, [line for line in EHLO if line != "DSN"]))
    with SMTPClient("127.0.0.1", srv.port, timeout=5) as client:
        assert "DSN" not in client.extensions
        result = client.send_message(MESSAGE, "a@x", "b@y", ret="FULL", notify="NEVER", orcpt=True)
        assert result.ok
    [mail] = [e for e in srv.events if isinstance(e, MailFrom)]
    [rcpt] = [e for e in srv.events if isinstance(e, RcptTo)]
    assert mail.params == (("SIZE", str(len(MESSAGE))),) and rcpt.params == ()


def test_dsn_against_our_server(maildir: Path) -> None:
    seen: list[tuple[str, Any]] = []

    class Handler:
        def mail_from(self, address: str, params: Any) -> None:
            seen.append((address, tuple(params)))

        def rcpt_to(self, address: str, params: Any) -> None:
            seen.append((address, tuple(params)))

    srv = SMTPServer(Handler(), maildir=maildir, timeouts=Timeouts(5.0))
    with srv.running(), SMTPClient("127.0.0.1", srv.port, timeout=5) as client:
        if not client.extensions.dsn:
            pytest.skip("this build of SMTPServer does not offer DSN")
        assert client.send_message(MESSAGE, "a@x", "b@y", ret="HDRS", notify="NEVER").ok
    assert ("RET", "HDRS") in seen[0][1]
    assert seen[1] == ("b@y", (("NOTIFY", "NEVER"),))
    assert len(stored(maildir)) == 1


def _bad_bdat(event: SMTPEvent) -> list[Reply]:
    if isinstance(event, Bdat):
        return [Reply(554, "no thanks", "5.6.0")]
    return default_answer(event)


def test_refused_message_raises_and_the_session_goes_on(
    scripted: Callable[..., ScriptedServer],
) -> None:
    srv = scripted(_bad_bdat)
    with SMTPClient("127.0.0.1", srv.port, timeout=5) as client:
        with pytest.raises(SMTPError) as info:
            client.send_message(MESSAGE, "a@x", "b@y")
        assert info.value.reply == Reply(554, "no thanks", "5.6.0")
        assert client.noop().code == 250


# -- STARTTLS injection (RFC 3207 5; CVE-2011-0411 style) on every adapter -----------------


INJECTED = b"250-scripted.test\r\n250 AUTH PLAIN\r\n"


def _run_adapter(adapter: str, scenario: Callable[[Any], Any]) -> None:
    if adapter == "sync":
        scenario(None)
    elif adapter == "asyncio":
        asyncio.run(asyncio.wait_for(scenario(protomata.asyncio.SMTPClient), 20))
    else:
        trio = pytest.importorskip("trio")
        trio_adapter = pytest.importorskip("protomata.trio")

        async def bounded() -> None:
            with trio.fail_after(20):
                await scenario(trio_adapter.SMTPClient)

        trio.run(bounded)


@pytest.mark.parametrize("adapter", ["sync", "asyncio", "trio"])
def test_starttls_injection_is_discarded(
    adapter: str, scripted: Callable[..., ScriptedServer], tls: TLS
) -> None:
    ehlo = [*EHLO, "STARTTLS"]
    srv = scripted(
        lambda e: default_answer(
            e, ehlo if not isinstance(e, Ehlo) or not srv.events[1:] else EHLO
        ),
        tls=tls.server,
        inject=INJECTED,
    )
    options: dict[str, Any] = {"starttls": "required", "verify": tls.client, "timeout": 5}

    def check(client: Any) -> None:
        conn = client.connection
        assert conn.tls_active
        assert conn.discarded_bytes == len(INJECTED)
        assert "AUTH" not in client.extensions  # the injected "EHLO reply" was not believed
        assert client.extensions.dsn

    if adapter == "sync":
        with protomata.sync.SMTPClient("127.0.0.1", srv.port, **options) as client:
            check(client)
            assert client.send_message(MESSAGE, "a@x", "b@y").ok
    else:

        async def scenario(client_class: Any) -> None:
            async with client_class("127.0.0.1", srv.port, **options) as client:
                check(client)
                assert (await client.send_message(MESSAGE, "a@x", "b@y")).ok

        _run_adapter(adapter, scenario)
    assert [type(e).__name__ for e in srv.events[:3]] == ["Ehlo", "StartTLS", "Ehlo"]


# -- the pure operations, in memory ---------------------------------------------------------


def drive(op: Operation[Any], script: list[bytes], sent: list[bytes]) -> Any:
    """Run *op*, answering each Receive with the next scripted bytes."""
    value: Any = None
    while True:
        try:
            request = op.send(value)
        except StopIteration as stop:
            return stop.value
        value = None
        if isinstance(request, Receive):
            value = script.pop(0) if script else b""
        elif isinstance(request, Send):
            assert isinstance(request.data, bytes)
            sent.append(request.data)
        else:
            assert isinstance(request, StartTLS)


def session(ehlo: str, *, lmtp: bool = False) -> tuple[Connection, list[bytes]]:
    conn = Connection(CLIENT, lmtp=lmtp)
    sent: list[bytes] = []
    drive(open_session(conn, starttls="never"), [b"220 hi\r\n", ehlo.encode()], sent)
    return conn, sent


def test_pure_auth_login_fallback() -> None:
    conn, sent = session("250-x\r\n250 AUTH LOGIN\r\n")
    script = [b"334 VXNlcm5hbWU6\r\n", b"334 UGFzc3dvcmQ6\r\n", b"235 ok\r\n"]
    drive(authenticate(conn, "user", "pass"), script, sent)
    assert sent[1:] == [b"AUTH LOGIN\r\n", b"dXNlcg==\r\n", b"cGFzcw==\r\n"]
    assert conn.authenticated


def test_pure_auth_cram_md5_is_preferred() -> None:
    conn, sent = session("250-x\r\n250 AUTH LOGIN PLAIN CRAM-MD5\r\n")
    challenge = b"<1.2@host>"
    script = [b"334 " + base64.b64encode(challenge) + b"\r\n", b"235 ok\r\n"]
    assert drive(authenticate(conn, "tim", "tanstaaftanstaaf"), script, sent).code == 235
    digest = hmac.new(b"tanstaaftanstaaf", challenge, hashlib.md5).hexdigest()
    assert sent[1:] == [b"AUTH CRAM-MD5\r\n", base64.b64encode(f"tim {digest}".encode()) + b"\r\n"]


def test_pure_auth_cram_md5_bad_challenge_cancels() -> None:
    conn, sent = session("250-x\r\n250 AUTH CRAM-MD5\r\n")
    script = [b"334 not*base64\r\n", b"501 cancelled\r\n"]
    with pytest.raises(SMTPError, match="501"):
        drive(authenticate(conn, "tim", "pw"), script, sent)
    assert sent[-1] == b"*\r\n" and conn.state is State.READY


def test_pure_auth_plain_and_xoauth2() -> None:
    conn, sent = session("250-x\r\n250 AUTH PLAIN XOAUTH2\r\n")
    drive(authenticate(conn, "u", "p"), [b"235 ok\r\n"], sent)
    assert sent[-1] == b"AUTH PLAIN " + base64.b64encode(b"\0u\0p") + b"\r\n"
    conn, sent = session("250-x\r\n250 AUTH PLAIN XOAUTH2\r\n")
    script = [b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n", b"535 5.7.8 bad token\r\n"]
    with pytest.raises(SMTPError, match="535"):
        drive(authenticate(conn, "u", token="tok"), script, sent)
    initial = base64.b64encode(b"user=u\x01auth=Bearer tok\x01\x01")
    assert sent[1:] == [b"AUTH XOAUTH2 " + initial + b"\r\n", b"\r\n"]


def test_pure_auth_argument_errors() -> None:
    conn, _ = session("250-x\r\n250 AUTH PLAIN\r\n")
    with pytest.raises(SMTPError, match="does not offer AUTH LOGIN"):
        drive(authenticate(conn, "u", "p", mechanism="login"), [], [])
    with pytest.raises(SMTPError, match="no AUTH mechanism in common"):
        drive(authenticate(conn, "u", token="t"), [], [])
    with pytest.raises(ValueError):
        drive(authenticate(conn, "u", "p", mechanism="GSSAPI"), [], [])
    with pytest.raises(ValueError):
        drive(authenticate(conn, "u"), [], [])
    for user, password in [("u\0v", "p"), ("u", "p\r\nQUIT"), ("u", "p\n")]:
        with pytest.raises(LocalProtocolError):
            drive(authenticate(conn, user, password), [], [])
    bare, _ = session("250 x\r\n")
    with pytest.raises(SMTPError, match="does not offer AUTH"):
        drive(authenticate(bare, "u", "p"), [], [])


def test_pure_eight_bit_without_8bitmime_fails_before_mail() -> None:
    conn, sent = session("250-x\r\n250 SIZE 1000\r\n")
    with pytest.raises(SMTPError, match="8BITMIME"):
        drive(mail_transaction(conn, "a@x", ["b@y"], b"caf\xc3\xa9\r\n"), [], sent)
    with pytest.raises(SMTPError, match="SMTPUTF8"):
        drive(mail_transaction(conn, "\u00e9@x", ["b@y"], b"x\r\n"), [], sent)
    with pytest.raises(SMTPError, match="SIZE 1000"):
        drive(mail_transaction(conn, "a@x", ["b@y"], b"x" * 1001), [], sent)
    assert len(sent) == 1  # only the EHLO: nothing reached the server
    assert conn.state is State.READY


def test_pure_helo_server_gets_plain_mail() -> None:
    conn = Connection(CLIENT)
    sent = []
    drive(open_session(conn), [b"220 hi\r\n", b"502 no\r\n", b"250 ok\r\n"], sent)
    assert sent[-1] == b"HELO localhost\r\n"
    script = [b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n", b"250 done\r\n"]
    result = drive(mail_transaction(conn, "a@x", ["b@y"], b"hi", ret="FULL"), script, sent)
    assert result == SendResult({"b@y": Reply(250, "ok")}, {}, Reply(250, "done"))
    assert sent[-4:] == [b"MAIL FROM:<a@x>\r\n", b"RCPT TO:<b@y>\r\n", b"DATA\r\n", b"hi\r\n.\r\n"]


def test_pure_lmtp_bdat_results_per_recipient() -> None:
    conn, sent = session("250-x\r\n250-CHUNKING\r\n250 PIPELINING\r\n", lmtp=True)
    assert sent == [b"LHLO localhost\r\n"]
    replies = [b"250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n", b"250 a\r\n", b"452 full\r\n"]
    result = drive(mail_transaction(conn, "a@x", ["b@y", "c@y", "d@y"], b"m\n"), replies, sent)
    assert sent[-2] == b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nRCPT TO:<d@y>\r\n"
    assert sent[-1] == b"BDAT 3 LAST\r\nm\r\n"  # after the RCPT replies, raw
    assert result.accepted == {"b@y": Reply(250, "a")}
    assert result.refused == {"c@y": Reply(550, "no"), "d@y": Reply(452, "full")}
    assert conn.state is State.READY


def test_pure_mail_refused_resets_nothing_and_raises() -> None:
    conn, sent = session("250-x\r\n250 PIPELINING\r\n")
    script = [b"451 4.3.0 later\r\n503 no\r\n503 no\r\n"]
    with pytest.raises(SMTPError) as info:
        drive(mail_transaction(conn, "a@x", ["b@y"], b"x\r\n"), script, sent)
    assert info.value.reply == Reply(451, "later", "4.3.0")
    assert sent[-1] == b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
    assert conn.state is State.READY


def test_pure_data_refused_after_rcpt_sends_rset() -> None:
    conn, sent = session("250 x\r\n")
    script = [b"250 ok\r\n", b"250 ok\r\n", b"451 not now\r\n", b"250 reset\r\n"]
    with pytest.raises(SMTPError, match="DATA failed"):
        drive(mail_transaction(conn, "a@x", ["b@y"], b"x\r\n"), script, sent)
    assert sent[-1] == b"RSET\r\n" and conn.state is State.READY


def test_pure_421_ends_the_session() -> None:
    conn, sent = session("250 x\r\n")
    with pytest.raises(SMTPError, match="closing"):
        drive(mail_transaction(conn, "a@x", ["b@y"], b"x"), [b"421 4.3.2 bye\r\n"], sent)
    assert conn.state is State.CLOSED


def test_prepare_message() -> None:
    assert prepare_message(b"a\nb\rc", "s@x", "r@y") == (b"a\r\nb\r\nc\r\n", "s@x", ["r@y"])
    msg = EmailMessage()
    msg["From"] = "a@x"
    msg["To"] = "b@y"
    msg["Resent-Date"] = "Mon, 1 Jan 2024 00:00:00 +0000"
    msg["Resent-From"] = "r@x"
    msg["Resent-To"] = "\u00e9@y"
    msg["Resent-Bcc"] = "hidden@y"
    msg["Subject"] = "caf\u00e9"
    msg.set_content("hi")
    data, sender, rcpts = prepare_message(msg)
    assert (sender, rcpts) == ("r@x", ["\u00e9@y", "hidden@y"])
    assert b"hidden" not in data and "Subject: caf\u00e9".encode() in data  # UTF-8 headers
    with pytest.raises(TypeError):
        prepare_message("text", "a@x", "b@y")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        prepare_message(EmailMessage())


def test_result_type() -> None:
    ok = SendResult({"a": Reply(250, "ok")}, {}, Reply(250, "done"))
    assert ok.ok and ok == SendResult({"a": Reply(250, "ok")}, {}, Reply(250, "done"))
    assert ok != SendResult({}, {"a": Reply(550, "no")}, None)
    assert "accepted=['a']" in repr(ok)


# -- the send-mail command on every adapter ---------------------------------------------------


@pytest.mark.parametrize("adapter", ["sync", "asyncio", "trio"])
def test_send_mail_command_uses_the_chosen_adapter(
    adapter: str, tls_server: SMTPServer, maildir: Path, tmp_path: Path, capsys: Any
) -> None:
    from protomata.cli import _mail

    if adapter == "trio":
        pytest.importorskip("trio")
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE)
    used: list[str] = []
    real_sync, real_async = _mail._send_sync, _mail._send_async

    def spy_sync(*args: Any) -> Any:
        used.append("sync")
        return real_sync(*args)

    async def spy_async(client_class: Any, *args: Any) -> Any:
        used.append(client_class.__module__)
        return await real_async(client_class, *args)

    argv = [
        "send-mail", "--server", f"127.0.0.1:{tls_server.port}", "--from", "a@x",
        "--to", "b@y", "--to", "c@z", "--starttls", "--insecure", "--user", "u",
        "--password", "p", "--auth", "login", "--timeout", "5", "--io", adapter, str(message),
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_mail, "_send_sync", spy_sync)
        patch.setattr(_mail, "_send_async", spy_async)
        assert _mail.main(argv) == 0
    assert used == [{"sync": "sync", "asyncio": "protomata.asyncio._smtpclient",
                     "trio": "protomata.trio._smtpclient"}[adapter]]  # fmt: skip
    assert capsys.readouterr().out == "b@y: accepted\nc@z: accepted\n"
    [content] = stored(maildir)
    assert b"with ESMTPSA" in content


@pytest.mark.parametrize("adapter", ["sync", "asyncio", "trio"])
def test_send_mail_command_reports_refusals(
    adapter: str, maildir: Path, tmp_path: Path, capsys: Any
) -> None:
    from protomata.cli import _mail

    if adapter == "trio":
        pytest.importorskip("trio")
    srv = SMTPServer(RefuseBob(), maildir=maildir, timeouts=Timeouts(5.0))
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE)
    with srv.running():
        argv = ["send-mail", "--server", f"127.0.0.1:{srv.port}", "--from", "a@x",
                "--to", "bob@y", "--to", "c@z", "--io", adapter, str(message)]  # fmt: skip
        assert _mail.main(argv) == 1
        assert capsys.readouterr().out == "bob@y: refused: 550 no\nc@z: accepted\n"
        argv = ["send-mail", "--server", f"127.0.0.1:{srv.port}", "--from", "a@x",
                "--to", "c@z", "--auth", "PLAIN", str(message)]  # fmt: skip
        assert _mail.main(argv) == 2  # --auth without --user


_REPLY_LINES = st.sampled_from(
    [
        b"220 hi\r\n", b"250 ok\r\n", b"250-x\r\n", b"250-PIPELINING\r\n", b"250-CHUNKING\r\n",
        b"250-AUTH PLAIN LOGIN CRAM-MD5\r\n", b"250-SIZE 10\r\n", b"250-8BITMIME\r\n",
        b"334 \r\n", b"334 PDEyMz4=\r\n", b"235 ok\r\n", b"354 go\r\n", b"421 bye\r\n",
        b"451 later\r\n", b"550 no\r\n", b"221 bye\r\n", b"garbage\r\n", b"250", b"",
        b"\xff\xfe\r\n", b"2500 x\r\n", b"250 \xc3\xa9\r\n",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_REPLY_LINES, max_size=14), st.booleans(), st.booleans())
def test_any_server_reply_ends_in_a_documented_error(
    script: list[bytes], lmtp: bool, eight_bit: bool
) -> None:
    """Whatever the server says, the client returns or raises SMTPError / RemoteProtocolError."""
    conn = Connection(CLIENT, lmtp=lmtp)
    message = b"caf\xc3\xa9\r\n" if eight_bit else b"hello\r\n"

    def session() -> Operation[Any]:
        yield from open_session(conn, starttls="never")
        if conn.extensions.auth_mechanisms:
            yield from authenticate(conn, "u", "p")
        yield from mail_transaction(conn, "a@x", ["b@y", "c@y"], message)
        return (yield from quit_op(conn))

    with contextlib.suppress(SMTPError, RemoteProtocolError):
        drive(session(), list(script), [])


class _LateInjector:
    """Sends a 220, then -- in a separate segment, before the handshake -- plaintext."""

    def __init__(self, tls: TLS) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port: int = self.listener.getsockname()[1]
        self.tls = tls
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        sock, _ = self.listener.accept()
        sock.settimeout(10)
        with contextlib.suppress(OSError, ssl.SSLError):
            sock.sendall(b"220 go ahead\r\n")
            time.sleep(0.05)
            sock.sendall(b"250 INJECTED\r\n")
            sock = self.tls.server.wrap_socket(sock, server_side=True)
            sock.sendall(b"250 over TLS\r\n")
            time.sleep(0.5)
        sock.close()

    def close(self) -> None:
        self.thread.join(10)
        self.listener.close()


def test_asyncio_stream_drops_plaintext_buffered_before_starttls(tls: TLS) -> None:
    """Plaintext that reached the adapter, but not yet the machine, before the
    handshake must never come out of the stream as if it had been encrypted.

    The sync and trio streams have no read buffer of their own (a read takes
    everything the kernel holds, and the machine discards it after the 220);
    the asyncio stream keeps one chunk per ``data_received``, so a busy task
    can leave a second plaintext segment behind its 220.
    """
    server = _LateInjector(tls)

    async def go() -> bytes:
        stream = await protomata.asyncio.connect_tcp(
            "127.0.0.1", server.port, timeouts=Timeouts(5.0), tls_context=tls.client
        )
        await asyncio.sleep(0.2)  # busy elsewhere: both segments are buffered
        assert stream.receive_nowait(65536) == b"220 go ahead\r\n"
        try:
            await stream.start_tls()
            return await stream.receive_some(65536)
        except (ssl.SSLError, OSError):
            return b"<handshake failed>"
        finally:
            stream.close()

    try:
        first = asyncio.run(asyncio.wait_for(go(), 10))
    finally:
        server.close()
    assert b"INJECTED" not in first
