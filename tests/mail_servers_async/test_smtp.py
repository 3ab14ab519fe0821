"""The asyncio and trio SMTP sinks, driven by smtplib from the test thread."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from protomata.smtp import Reply
from protomata.smtp._server import Envelope
from protomata.sync._maildir import Maildir

from .conftest import Adapter

BODY = ".starts with a dot\n..two dots\n.\nmiddle\nend\n"
TIMEOUT = 5.0


def _messages(maildir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((maildir / "new").iterdir())]


def _record_delivering_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads that will call Maildir.deliver in this process, in order."""
    threads: list[threading.Thread] = []
    deliver = Maildir.deliver

    def recording_deliver(self: Maildir, content: bytes) -> str:
        threads.append(threading.current_thread())
        return deliver(self, content)

    monkeypatch.setattr(Maildir, "deliver", recording_deliver)
    return threads


def test_message_to_two_recipients_lands_in_maildir(
    adapter: Adapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _record_delivering_threads(monkeypatch)
    maildir = tmp_path / "Maildir"
    server = adapter.SMTPServer(
        maildir=maildir, timeouts=adapter.Timeouts(TIMEOUT), hostname="sink.test"
    )
    msg = EmailMessage()
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.org, carol@example.org"
    msg["Subject"] = "hello"
    msg.set_content(BODY, cte="8bit")
    agent_pids: list[int | None] = []
    with adapter.serve(server):
        agent_pids.append(server._agent.pid)
        assert server.url == f"smtp://127.0.0.1:{server.port}"
        with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client:
            code, text = client.ehlo("client.test")
            assert code == 250
            assert b"CHUNKING" in text and b"PIPELINING" in text
            assert b"STARTTLS" not in text and b"AUTH" not in text
            assert client.send_message(msg) == {}
            assert client.sendmail("", ["x@example.org"], b"Subject: 2\r\n\r\nsecond\r\n") == {}
    assert list((maildir / "tmp").iterdir()) == []
    first, second = sorted(_messages(maildir), key=lambda m: b"Subject: hello" not in m)
    assert b"\r" not in first
    assert first.startswith(b"Return-Path: <alice@example.org>\nReceived: from client.test (")
    assert b"by sink.test (protomata) with ESMTP;" in first
    assert b"Subject: hello\n" in first
    assert first.endswith(b"\n\n" + BODY.encode())
    assert second.startswith(b"Return-Path: <>\n")
    assert b"\tfor <x@example.org>;" in second
    assert second.endswith(b"Subject: 2\n\nsecond\n")
    # the files were written by the delivery process, not in this one
    assert threads == []
    assert agent_pids and all(pid not in (None, os.getpid()) for pid in agent_pids)


def test_threads_deliver_when_asked(
    adapter: Adapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _record_delivering_threads(monkeypatch)
    server = adapter.SMTPServer(maildir=tmp_path / "Maildir", timeouts=adapter.Timeouts(TIMEOUT))
    server.delivery_process = False
    with adapter.serve(server):
        with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client:
            assert client.sendmail("a@x", ["b@y"], b"Subject: t\r\n\r\nbody\r\n") == {}
        assert server._agent is None
    # the disk work ran in a worker thread, never on the event loop's thread
    assert len(threads) == 1 and adapter.loop_thread is not None and adapter.off_loop(threads)
    assert len(_messages(tmp_path / "Maildir")) == 1


def test_starttls_then_auth_plain(
    adapter: Adapter,
    tmp_path: Path,
    tls_server_context: ssl.SSLContext,
    tls_client_context: ssl.SSLContext,
) -> None:
    maildir = tmp_path / "Maildir"
    server = adapter.SMTPServer(
        maildir=maildir,
        users={"alice": "s3cret"},
        tls_context=tls_server_context,
        timeouts=adapter.Timeouts(TIMEOUT),
        hostname="sink.test",
    )
    with (
        adapter.serve(server),
        smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client,
    ):
        client.ehlo("c.test")
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")  # only after STARTTLS
        code, _ = client.starttls(context=tls_client_context)
        assert code == 220
        client.ehlo("c.test")
        assert not client.has_extn("starttls")
        assert "PLAIN" in client.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login("alice", "wrong")
        assert info.value.smtp_code == 535
        client.user, client.password = "alice", "s3cret"
        assert client.auth("PLAIN", client.auth_plain)[0] == 235
        assert client.sendmail("alice@x", ["b@y"], b"Subject: tls\r\n\r\nsecret\r\n") == {}
    [stored] = _messages(maildir)
    assert b"with ESMTPSA" in stored
    assert stored.endswith(b"Subject: tls\n\nsecret\n")


def test_auth_plain_without_tls(adapter: Adapter, tmp_path: Path) -> None:
    server = adapter.SMTPServer(
        maildir=tmp_path / "md", users={"bob": "pw"}, timeouts=adapter.Timeouts(TIMEOUT)
    )
    with (
        adapter.serve(server),
        smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client,
    ):
        client.ehlo()
        client.user, client.password = "bob", "nope"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.auth("PLAIN", client.auth_plain)
        client.password = "pw"
        assert client.auth("PLAIN", client.auth_plain, initial_response_ok=True)[0] == 235


class AsyncPicky:
    """Coroutine handler methods: refuses one sender and one recipient, keeps messages."""

    def __init__(self) -> None:
        self.messages: list[tuple[str | None, list[str], bytes]] = []

    async def mail_from(self, address: str, params: Any) -> Reply | None:
        if address == "spammer@example.org":
            return Reply(550, "Go away", "5.7.1")
        return None

    async def rcpt_to(self, address: str, params: Any) -> Reply | None:
        if address.startswith("nobody@"):
            return Reply(550, "No such user", "5.1.1")
        return None

    async def message(self, envelope: Envelope, data: bytes) -> Reply | None:
        if b"boom" in data:
            raise RuntimeError("handler failure")
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), data))
        return None


def test_async_handler_refusals_and_failures(adapter: Adapter) -> None:
    handler = AsyncPicky()
    server = adapter.SMTPServer(handler, timeouts=adapter.Timeouts(TIMEOUT))
    assert server.maildir is None
    with (
        adapter.serve(server),
        smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client,
    ):
        refused = client.sendmail(
            "a@example.org", ["nobody@x", "bob@x"], b"Subject: s\r\n\r\nhi\r\n"
        )
        assert refused == {"nobody@x": (550, b"5.1.1 No such user")}
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("spammer@example.org", ["bob@x"], b"x\r\n")
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("a@example.org", ["bob@x"], b"boom\r\n")
        assert info.value.smtp_code == 451
        assert client.noop()[0] == 250
    assert handler.messages == [("a@example.org", ["bob@x"], b"Subject: s\r\n\r\nhi\r\n")]


def test_handler_without_message_needs_a_maildir(adapter: Adapter) -> None:
    with pytest.raises(ValueError):
        adapter.SMTPServer(object())


def test_idle_timeout_answers_421(adapter: Adapter, tmp_path: Path) -> None:
    server = adapter.SMTPServer(maildir=tmp_path / "md", timeouts=adapter.Timeouts(0.3))
    with (
        adapter.serve(server),
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock,
    ):
        got = b""
        while b"421" not in got:
            piece = sock.recv(4096)
            if not piece:
                break
            got += piece
        assert got.startswith(b"220 ")
        assert b"421 4.4.2" in got
        assert sock.recv(4096) == b""


def test_shutdown_ends_idle_sessions_without_waiting_for_grace(
    adapter: Adapter, tmp_path: Path
) -> None:
    server = adapter.SMTPServer(
        maildir=tmp_path / "md", timeouts=adapter.Timeouts(TIMEOUT), grace=TIMEOUT
    )
    with socket.socket() as sock:
        sock.settimeout(TIMEOUT)
        with adapter.serve(server):
            sock.connect(("127.0.0.1", server.port))
            assert sock.recv(4096).startswith(b"220 ")
            started = time.monotonic()
        assert time.monotonic() - started < TIMEOUT / 2
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        assert data.startswith(b"421 4.3.2 "), data  # told why, then closed
        assert data.endswith(b" Service shutting down\r\n"), data
