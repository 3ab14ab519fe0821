"""The blocking SMTP sink, driven by smtplib, raw sockets, swaks and the CLI."""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from protomata.smtp import Reply
from protomata.smtp._server import Envelope
from protomata.sync import Timeouts
from protomata.sync._smtpserver import SMTPServer

BODY = ".starts with a dot\n..two dots\n.\nmiddle\n" + "L" * 990 + "\nend\n"


def _messages(maildir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((maildir / "new").iterdir())]


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "Maildir"


@pytest.fixture
def server(maildir: Path) -> Iterator[SMTPServer]:
    srv = SMTPServer(maildir=maildir, timeouts=Timeouts(5.0), hostname="sink.test")
    with srv.running():
        yield srv


def _raw(port: int, data: bytes, *, until: bytes, timeout: float = 5.0) -> bytes:
    """Connect, read the greeting, send *data* in one write, read until *until* appears."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        got = b""
        while b"\r\n" not in got:
            got += sock.recv(4096)
        sock.sendall(data)
        while until not in got:
            piece = sock.recv(4096)
            if not piece:
                break
            got += piece
        return got


def test_send_message_to_several_recipients(server: SMTPServer, maildir: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.org, carol@example.org"
    msg["Subject"] = "hello"
    msg.set_content(BODY, cte="8bit")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
        code, text = client.ehlo("client.test")
        assert code == 250
        for keyword in (b"SIZE", b"8BITMIME", b"PIPELINING", b"ENHANCEDSTATUSCODES", b"CHUNKING"):
            assert keyword in text
        assert b"STARTTLS" not in text and b"AUTH" not in text
        assert client.send_message(msg) == {}
    for sub in ("tmp", "new", "cur"):
        assert (maildir / sub).is_dir()
    assert list((maildir / "tmp").iterdir()) == []
    [stored] = _messages(maildir)
    assert b"\r" not in stored
    assert stored.startswith(b"Return-Path: <alice@example.org>\nReceived: from client.test (")
    assert b"by sink.test (protomata) with ESMTP;" in stored
    assert b"Subject: hello\n" in stored
    assert stored.endswith(b"\n\n" + BODY.encode())
    name = os.listdir(maildir / "new")[0]
    assert f".{os.getpid()}_" in name and name.endswith(".sink.test")


def test_sendmail_exact_bytes_and_single_recipient_trace(server: SMTPServer, maildir: Path) -> None:
    raw = b"Subject: raw\r\n\r\n" + BODY.replace("\n", "\r\n").encode()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
        assert client.sendmail("", ["x@example.org"], raw) == {}
        assert client.sendmail("a@b", ["y@example.org"], b"Subject: 2\r\n\r\nsecond\r\n") == {}
    first, second = sorted(_messages(maildir), key=lambda m: b"Subject: raw" not in m)
    assert first.startswith(b"Return-Path: <>\n")
    assert b"\n\tfor <x@example.org>;\n\t" in first
    assert first.endswith(b"\nSubject: raw\n\n" + BODY.encode())
    assert second.endswith(b"Subject: 2\n\nsecond\n")


class Picky:
    """Refuses one recipient and one sender; keeps messages in memory."""

    def __init__(self) -> None:
        self.messages: list[tuple[str | None, list[str], bytes]] = []

    def mail_from(self, address: str, params: Any) -> Reply | None:
        if address == "spammer@example.org":
            return Reply(550, "Go away", "5.7.1")
        return None

    def rcpt_to(self, address: str, params: Any) -> Reply | None:
        if address.startswith("nobody@"):
            return Reply(550, "No such user", "5.1.1")
        return None

    def message(self, envelope: Envelope, data: bytes) -> Reply | None:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), data))
        return None


def test_custom_handler_refuses_recipients_and_senders() -> None:
    handler = Picky()
    srv = SMTPServer(handler, timeouts=Timeouts(5.0))
    with srv.running(), smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
        refused = client.sendmail(
            "a@example.org", ["nobody@x", "bob@x"], b"Subject: s\r\n\r\nhi\r\n"
        )
        assert refused == {"nobody@x": (550, b"5.1.1 No such user")}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.org", ["nobody@y"], b"x\r\n")
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("spammer@example.org", ["bob@x"], b"x\r\n")
    assert handler.messages == [("a@example.org", ["bob@x"], b"Subject: s\r\n\r\nhi\r\n")]


def test_handler_without_message_needs_a_maildir() -> None:
    with pytest.raises(ValueError):
        SMTPServer(object())


def test_size_limit(maildir: Path) -> None:
    srv = SMTPServer(maildir=maildir, max_message_size=1000, timeouts=Timeouts(5.0))
    with srv.running(), smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "1000"
        # announced size too big: refused at MAIL
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail("a@x", ["b@y"], b"x" * 2000)
        assert info.value.smtp_code == 552
        # no SIZE parameter: refused after the data
        client.ehlo()
        client.esmtp_features.pop("size")
        with pytest.raises(smtplib.SMTPDataError) as data_info:
            client.sendmail("a@x", ["b@y"], (b"y" * 78 + b"\r\n") * 25)
        assert data_info.value.smtp_code == 552
        assert client.noop()[0] == 250
        assert client.sendmail("a@x", ["b@y"], b"small\r\n") == {}
    assert len(_messages(maildir)) == 1


def test_pipelining_in_one_write(server: SMTPServer, maildir: Path) -> None:
    batch = (
        b"EHLO pipe.test\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n"
        b"Subject: p\r\n\r\n..dot\r\n.\r\nQUIT\r\n"
    )
    got = _raw(server.port, batch, until=b"221 ")
    codes = [line[:4] for line in got.split(b"\r\n") if line[3:4] == b" "]
    assert codes == [b"220 ", b"250 ", b"250 ", b"250 ", b"250 ", b"354 ", b"250 ", b"221 "]
    [stored] = _messages(maildir)
    assert stored.endswith(b"Subject: p\n\n.dot\n")


def test_bdat_chunking(server: SMTPServer, maildir: Path) -> None:
    batch = (
        b"EHLO c.test\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
        b"BDAT 9\r\nSubject: \r\nBDAT 9 LAST\r\nc\r\n\r\n.x\r\nQUIT\r\n"
    )
    got = _raw(server.port, batch, until=b"221 ")
    assert b"250 2.0.0 9 octets received" in got
    [stored] = _messages(maildir)
    assert stored.endswith(b"Subject: c\n\n.x\n")


def test_rset_noop_vrfy_and_bad_commands(server: SMTPServer) -> None:
    batch = b"HELO h\r\nNOOP\r\nVRFY bob\r\nFOO\r\nDATA\r\nRSET\r\nQUIT\r\n"
    got = _raw(server.port, batch, until=b"221 ")
    codes = [line[:3] for line in got.split(b"\r\n") if line]
    assert codes == [b"220", b"250", b"250", b"252", b"500", b"503", b"250", b"221"]


def test_idle_timeout_answers_421(maildir: Path) -> None:
    srv = SMTPServer(maildir=maildir, timeouts=Timeouts(0.3))
    with srv.running(), socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        got = b""
        while b"421" not in got:
            piece = sock.recv(4096)
            if not piece:
                break
            got += piece
        assert b"421 4.4.2" in got
        assert sock.recv(4096) == b""


@pytest.fixture
def tls_server(maildir: Path, tls_server_context: ssl.SSLContext) -> Iterator[SMTPServer]:
    srv = SMTPServer(
        maildir=maildir,
        users={"user": "secret"},
        tls_context=tls_server_context,
        timeouts=Timeouts(5.0),
    )
    with srv.running():
        yield srv


def test_starttls_then_auth(
    tls_server: SMTPServer, maildir: Path, tls_client_context: ssl.SSLContext
) -> None:
    with smtplib.SMTP("127.0.0.1", tls_server.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")  # not before TLS
        code, _ = client.docmd("AUTH", "PLAIN AHVzZXIAc2VjcmV0")
        assert code == 530
        client.starttls(context=tls_client_context)
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.has_extn("auth")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("user", "wrong")
        client.login("user", "secret")
        assert client.sendmail("a@x", ["b@y"], b"Subject: tls\r\n\r\nsecure\r\n") == {}
    [stored] = _messages(maildir)
    assert b" with ESMTPSA\n\tfor <b@y>;" in stored


def test_starttls_injection_is_discarded(
    tls_server: SMTPServer, tls_client_context: ssl.SSLContext
) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        sock.sendall(b"EHLO x\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n")
        assert reader.readline().startswith(b"220 ")
        with tls_client_context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"NOOP\r\n")
            reply = tls.recv(4096)
            # had MAIL been processed, its reply (or a 503) would come first
            assert reply.startswith(b"250 2.0.0 OK")
            tls.sendall(b"MAIL FROM:<a@x>\r\n")
            assert tls.recv(4096).startswith(b"503")  # EHLO needed again after TLS


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_without_tls(maildir: Path, mechanism: str) -> None:
    srv = SMTPServer(maildir=maildir, users={"user": "pa55 word"}, timeouts=Timeouts(5.0))
    with srv.running(), smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN", "CRAM-MD5"]
        client.user, client.password = "user", "pa55 word"
        code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
        assert code == 235
        code, _ = client.docmd("AUTH", "PLAIN")
        assert code == 503  # already authenticated


def test_auth_cancel_and_unknown_mechanism(maildir: Path) -> None:
    srv = SMTPServer(maildir=maildir, users={"u": "p"}, timeouts=Timeouts(5.0))
    batch = b"EHLO a\r\nAUTH DIGEST-MD5\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN !!\r\nQUIT\r\n"
    with srv.running():
        got = _raw(srv.port, batch, until=b"221 ")
    lines = got.split(b"\r\n")
    final = [line[:3] for line in lines if line[3:4] == b" "]
    assert final == [b"220", b"250", b"504", b"334", b"501", b"501", b"221"], got
    assert b"334 VXNlcm5hbWU6" in got
    assert b"501 5.0.0 Authentication cancelled" in got
    assert b"501 5.5.2 Invalid" in got


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks(server: SMTPServer, maildir: Path) -> None:
    result = subprocess.run(
        [
            "swaks",
            "--server",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--from",
            "swaks@example.org",
            "--to",
            "r1@example.org,r2@example.org",
            "--header",
            "Subject: from swaks",
            "--body",
            "Hello from swaks\n.dot line",
            "--pipeline",
        ],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    [stored] = _messages(maildir)
    assert b"Subject: from swaks\n" in stored and b"\n.dot line\n" in stored
    assert b"\r" not in stored


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_cli(maildir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "protomata.cli._serve_smtp",
            "--port",
            str(port),
            "--maildir",
            str(maildir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line == f"Serving SMTP on 127.0.0.1:{port} (maildir: {maildir})\n", line
    return proc, port


def test_cli_serves_until_sigint(maildir: Path) -> None:
    proc, port = _start_cli(maildir, "--user", "u:p")
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.login("u", "p")
            assert client.sendmail("a@x", ["b@y"], b"Subject: cli\r\n\r\nvia cli\r\n") == {}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
        proc.wait()
    [stored] = _messages(maildir)
    assert stored.endswith(b"Subject: cli\n\nvia cli\n")


@pytest.mark.parametrize(
    "io", ["asyncio", "trio", "asyncio --delivery threads", "trio --delivery threads"]
)
def test_cli_serves_on_each_async_adapter(maildir: Path, io: str) -> None:
    io, *extra = io.split()
    proc, port = _start_cli(maildir, "--io", io, *extra)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            assert (
                client.sendmail("a@x", ["b@y"], b"Subject: " + io.encode() + b"\r\n\r\nhi\r\n")
                == {}
            )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
        proc.wait()
    [stored] = _messages(maildir)
    assert stored.endswith(b"Subject: " + io.encode() + b"\n\nhi\n")


def test_cli_usage_errors(tmp_path: Path) -> None:
    from protomata.cli._serve_smtp import main

    assert main(["--user", "nopassword", "--maildir", str(tmp_path)]) == 2
    assert main(["--tls-cert", "x.pem", "--maildir", str(tmp_path)]) == 2


def _agents_of(maildir: Path) -> list[int]:
    """The delivery processes (protomata.sync._deliveryagent) serving *maildir*."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"protomata.sync._deliveryagent" in args and str(maildir).encode() in args:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("io", ["sync", "asyncio", "trio"])
def test_acknowledged_message_survives_sigkill(maildir: Path, io: str) -> None:
    proc, port = _start_cli(maildir, "--io", io)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"220")
            sock.sendall(
                b"HELO k\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
                b"Subject: durable\r\n\r\nkeep me\r\n.\r\n"
            )
            replies = [reader.readline() for _ in range(5)]
            assert replies[-1].startswith(b"250 "), replies
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    [stored] = _messages(maildir)
    assert stored.endswith(b"Subject: durable\n\nkeep me\n")
    assert list((maildir / "tmp").iterdir()) == []
    if io != "sync" and Path("/proc/self/cmdline").exists():
        # the delivery process saw its input end with the server and left
        deadline = time.monotonic() + 10
        while _agents_of(maildir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _agents_of(maildir) == []


def test_starttls_handshake_failure_closes(tls_server: SMTPServer) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"EHLO x\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\n")
        assert reader.readline().startswith(b"220 ")
        sock.sendall(b"this is not a TLS hello\r\n" * 10)
        deadline = time.monotonic() + 5
        data = b"x"
        while data and time.monotonic() < deadline:
            try:
                data = sock.recv(4096)
            except ConnectionResetError:
                break
        assert time.monotonic() < deadline


class Broken:
    """A handler whose recipient check crashes and that keeps envelopes."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def rcpt_to(self, address: str, params: Any) -> Reply | None:
        if address == "crash@x":
            raise RuntimeError("lookup failed")
        return None

    def message(self, envelope: Envelope, data: bytes) -> Reply | None:
        self.envelopes.append(envelope)
        return None


def test_handler_error_answers_451_and_envelope_is_a_snapshot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Broken()
    srv = SMTPServer(handler, timeouts=Timeouts(5.0))
    with srv.running(), smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
        refused = client.sendmail("a@x", ["crash@x", "ok@x"], b"x\r\n")
        assert refused == {"crash@x": (451, b"4.3.0 Local error in processing")}
        assert client.sendmail("b@x", ["ok2@x"], b"y\r\n") == {}
    assert [(e.mail_from, e.rcpt_tos) for e in handler.envelopes] == [
        ("a@x", ["ok@x"]),
        ("b@x", ["ok2@x"]),
    ]
    assert "rcpt_to() failed" in caplog.text


def test_auth_plain_with_empty_challenge(maildir: Path) -> None:
    srv = SMTPServer(maildir=maildir, users={"u": "p"}, timeouts=Timeouts(5.0))
    with srv.running():
        got = _raw(srv.port, b"EHLO a\r\nAUTH PLAIN\r\nAHUAcA==\r\nQUIT\r\n", until=b"221 ")
    assert b"\r\n334\r\n235 2.7.0" in got or b"\r\n334 \r\n235 2.7.0" in got, got


def test_cli_parser_registration(tmp_path: Path) -> None:
    """What ``protomata serve smtp`` does once registered: add_parser + serve_smtp."""
    import argparse

    from protomata.cli._serve_smtp import add_parser

    parser = argparse.ArgumentParser()
    protocols = parser.add_subparsers(dest="protocol", required=True)
    add_parser(protocols)
    args = parser.parse_args(["smtp", "--maildir", str(tmp_path), "--user", "a:b:c"])
    assert (args.host, args.port, args.user, args.io) == ("127.0.0.1", 8025, ["a:b:c"], "sync")
