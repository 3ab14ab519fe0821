"""Each server-side SMTP/LMTP extension exercised by a client we did not write.

The peers are swaks (PIPELINING, STARTTLS, AUTH PLAIN/LOGIN/CRAM-MD5, LMTP)
and the stdlib's smtplib (SIZE, 8BITMIME, SMTPUTF8, DSN, AUTH CRAM-MD5 and
XOAUTH2, LMTP through ``smtplib.LMTP``).  Neither speaks BDAT, so CHUNKING
is covered by raw-socket tests in test_sink.py and by our own client.
"""

from __future__ import annotations

import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protomata.smtp import Reply
from protomata.smtp._server import Envelope, RecipientDSN
from protomata.sync import Timeouts
from protomata.sync._smtpserver import SMTPServer
from tests.mail_servers_async.conftest import ADAPTERS, Adapter

TIMEOUT = 10
USERS = {"user": "s3cret pass"}
swaks_only = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")


def _messages(maildir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((maildir / "new").iterdir())]


class Recorder:
    """A handler keeping every envelope and message; *verdict* answers ``message``."""

    def __init__(self, verdict: Any = None) -> None:
        self.verdict = verdict
        self.received: list[tuple[Envelope, bytes]] = []

    def message(self, envelope: Envelope, data: bytes) -> Any:
        self.received.append((envelope, data))
        return self.verdict


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "Maildir"


@pytest.fixture
def tls_server(maildir: Path, tls_server_context: ssl.SSLContext) -> Iterator[SMTPServer]:
    srv = SMTPServer(
        maildir=maildir,
        users=USERS,
        tls_context=tls_server_context,
        timeouts=Timeouts(TIMEOUT),
        hostname="mx.test",
    )
    with srv.running():
        yield srv


def _swaks(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--from", "swaks@example.org", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# -- swaks ---------------------------------------------------------------------


@swaks_only
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_starttls_pipelining_and_auth(
    tls_server: SMTPServer, maildir: Path, mechanism: str
) -> None:
    result = _swaks(
        tls_server.port,
        "--to",
        "r1@example.org,r2@example.org",
        "--tls",
        "--pipeline",
        "--auth",
        mechanism,
        "--auth-user",
        "user",
        "--auth-password",
        USERS["user"],
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    # STARTTLS before AUTH, AUTH offered only inside TLS ("~" marks TLS lines)
    assert re.search(r"^<-  250[- ]STARTTLS$", out, re.M) and "<-  250 AUTH" not in out
    assert "<~  250 AUTH PLAIN LOGIN CRAM-MD5" in out
    assert f"~> AUTH {mechanism}" in out and "<~  235 2.7.0" in out
    # PIPELINING: the envelope went in one batch, the replies came after it
    envelope = out.index("~> MAIL FROM:")
    assert out.index("~> DATA", envelope) < out.index("<~  250 2.1.0 Sender OK", envelope)
    [stored] = _messages(maildir)
    assert b" with ESMTPSA;" in stored


@swaks_only
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_wrong_password_is_refused(
    tls_server: SMTPServer, maildir: Path, mechanism: str
) -> None:
    result = _swaks(
        tls_server.port,
        "--to",
        "r@example.org",
        "--tls",
        "--auth",
        mechanism,
        "--auth-user",
        "user",
        "--auth-password",
        "wrong",
    )
    assert result.returncode != 0
    assert "535 5.7.8 Authentication credentials invalid" in result.stdout
    assert not (maildir / "new").exists() or not _messages(maildir)


@swaks_only
def test_swaks_finds_no_auth_before_starttls(tls_server: SMTPServer) -> None:
    result = _swaks(
        tls_server.port,
        "--to",
        "r@example.org",
        "--auth",
        "PLAIN",
        "--auth-user",
        "user",
        "--auth-password",
        USERS["user"],
    )
    assert result.returncode != 0
    assert "AUTH" not in "".join(
        line for line in result.stdout.splitlines() if line.startswith("<-  250")
    )


@swaks_only
def test_swaks_lmtp_gets_one_reply_per_recipient(maildir: Path) -> None:
    handler = Recorder({"bad@example.org": Reply(550, "no such user", "5.1.1")})
    srv = SMTPServer(handler, timeouts=Timeouts(TIMEOUT), hostname="lmtp.test", lmtp=True)
    with srv.running():
        result = _swaks(
            srv.port,
            "--protocol",
            "LMTP",
            "--pipeline",
            "--to",
            "good@example.org,bad@example.org,also@example.org",
        )
    out = result.stdout
    assert "-> LHLO " in out and "<-  220 lmtp.test LMTP" in out
    after_dot = out[out.index(" -> .\n") :]
    assert "<-  250 2.0.0 <good@example.org> delivered" in after_dot
    assert "<** 550 5.1.1 no such user" in after_dot
    assert "<-  250 2.0.0 <also@example.org> delivered" in after_dot
    [(envelope, _data)] = handler.received
    assert envelope.protocol == "LMTP"
    assert envelope.rcpt_tos == ["good@example.org", "bad@example.org", "also@example.org"]


# -- smtplib -------------------------------------------------------------------


class RecordingSMTP(smtplib.SMTP):
    """smtplib.SMTP keeping every command line it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[bytes] = []
        super().__init__(*args, **kwargs)

    def send(self, s: Any) -> None:
        self.sent.append(s.encode(self.command_encoding) if isinstance(s, str) else bytes(s))
        super().send(s)


def test_smtplib_login_uses_cram_md5(maildir: Path) -> None:
    srv = SMTPServer(maildir=maildir, users=USERS, timeouts=Timeouts(TIMEOUT))
    with srv.running(), RecordingSMTP("127.0.0.1", srv.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN", "CRAM-MD5"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("user", "wrong")
        assert refused.value.smtp_code == 535
        code, _ = client.login("user", USERS["user"])
        assert code == 235
        # smtplib tries CRAM-MD5 first, then (after a 535) PLAIN and LOGIN
        auths = [line.split()[:2] for line in client.sent if line.startswith(b"AUTH")]
        assert auths == [[b"AUTH", m] for m in (b"CRAM-MD5", b"PLAIN", b"LOGIN", b"CRAM-MD5")]
        assert client.sendmail("a@x", ["b@y"], b"Subject: cram\r\n\r\nhi\r\n") == {}
    [stored] = _messages(maildir)
    assert b" with ESMTPA\n\tfor <b@y>;" in stored


def test_smtplib_smtputf8_8bitmime_and_dsn_parameters() -> None:
    handler = Recorder()
    srv = SMTPServer(handler, timeouts=Timeouts(TIMEOUT))
    body = "Subject: caf\u00e9\r\n\r\nd\u00e9j\u00e0 vu\r\n".encode()
    with srv.running(), smtplib.SMTP("127.0.0.1", srv.port, timeout=TIMEOUT) as client:
        client.ehlo()
        for name in ("smtputf8", "8bitmime", "dsn", "size"):
            assert client.has_extn(name), name
        refused = client.sendmail(
            "s\u00e9nder@ex\u00e4mple.org",
            ["r\u00fcdiger@example.org", "plain@example.org"],
            body,
            mail_options=["SMTPUTF8", "BODY=8BITMIME", "RET=HDRS", "ENVID=QQ+2Bid+3D1"],
            rcpt_options=["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;orig+2Btag@example.org"],
        )
        assert refused == {}
    [(envelope, data)] = handler.received
    assert data == body
    assert envelope.mail_from == "s\u00e9nder@ex\u00e4mple.org"
    assert envelope.rcpt_tos == ["r\u00fcdiger@example.org", "plain@example.org"]
    assert envelope.protocol == "UTF8SMTP"
    assert (envelope.dsn_ret, envelope.dsn_envid) == ("HDRS", "QQ+id=1")
    assert (
        envelope.rcpt_dsn
        == [RecipientDSN(("SUCCESS", "DELAY"), ("rfc822", "orig+tag@example.org"))] * 2
    )
    # smtplib declares the size (as "size=")
    assert ("SIZE", str(len(body))) in [(k.upper(), v) for k, v in envelope.mail_params]


@pytest.mark.parametrize(
    ("mail_options", "rcpt_options", "code"),
    [
        (["RET=EVERYTHING"], [], 501),
        (["ENVID=not=xtext"], [], 501),
        ([], ["NOTIFY=NEVER,FAILURE"], 501),
        ([], ["ORCPT=missing-type@example.org"], 501),
        ([], ["XFORWARD=1"], 555),
    ],
)
def test_smtplib_bad_dsn_values_are_refused(
    mail_options: list[str], rcpt_options: list[str], code: int
) -> None:
    handler = Recorder()
    srv = SMTPServer(handler, timeouts=Timeouts(TIMEOUT))
    with srv.running(), smtplib.SMTP("127.0.0.1", srv.port, timeout=TIMEOUT) as client:
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused)) as err:
            client.sendmail("a@x", ["b@y"], b"x\r\n", mail_options, rcpt_options)
        exc = err.value
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            assert exc.recipients["b@y"][0] == code
        else:
            assert isinstance(exc, smtplib.SMTPSenderRefused) and exc.smtp_code == code
        assert client.noop()[0] == 250  # the session goes on
    assert handler.received == []


def test_smtplib_size_is_checked_on_mail(maildir: Path) -> None:
    srv = SMTPServer(maildir=maildir, max_message_size=200, timeouts=Timeouts(TIMEOUT))
    with srv.running(), smtplib.SMTP("127.0.0.1", srv.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "200"
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@x", ["b@y"], b"x" * 300)
        assert refused.value.smtp_code == 552
        assert client.sendmail("a@x", ["b@y"], b"small\r\n") == {}
    assert len(_messages(maildir)) == 1


class TokenChecker(Recorder):
    """A handler accepting one OAuth 2.0 bearer token."""

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[tuple[str, str]] = []

    def authenticate_xoauth2(self, user: str, token: str) -> bool:
        self.checked.append((user, token))
        return (user, token) == ("alice@example.org", "ya29.good")


def _xoauth2(user: str, token: str) -> Any:
    def respond(challenge: bytes | None = None) -> str:
        # the first call makes the initial response; a 334 error is answered empty
        return f"user={user}\x01auth=Bearer {token}\x01\x01" if challenge is None else ""

    return respond


def test_smtplib_xoauth2() -> None:
    handler = TokenChecker()
    srv = SMTPServer(handler, timeouts=Timeouts(TIMEOUT))
    with srv.running(), smtplib.SMTP("127.0.0.1", srv.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["XOAUTH2"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.auth("XOAUTH2", _xoauth2("alice@example.org", "ya29.bad"))
        assert refused.value.smtp_code == 535
        code, _ = client.auth("XOAUTH2", _xoauth2("alice@example.org", "ya29.good"))
        assert code == 235
        assert client.sendmail("alice@example.org", ["b@y"], b"Subject: oauth\r\n\r\n") == {}
    assert handler.checked == [
        ("alice@example.org", "ya29.bad"),
        ("alice@example.org", "ya29.good"),
    ]
    [(envelope, _data)] = handler.received
    assert envelope.authenticated_user == "alice@example.org"
    assert envelope.protocol == "ESMTPA"


@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_async_servers_offer_cram_md5_and_xoauth2(adapter_name: str) -> None:
    adapter = Adapter(adapter_name)
    checked: list[tuple[str, str]] = []

    class AsyncTokenChecker(Recorder):
        async def authenticate_xoauth2(self, user: str, token: str) -> bool:
            checked.append((user, token))
            return token == "ya29.good"

    server = adapter.SMTPServer(AsyncTokenChecker(), users=USERS, timeouts=Timeouts(TIMEOUT))
    with adapter.serve(server) as served:
        with RecordingSMTP("127.0.0.1", served.port, timeout=TIMEOUT) as client:
            client.ehlo()
            assert client.esmtp_features["auth"].split() == [
                "PLAIN",
                "LOGIN",
                "CRAM-MD5",
                "XOAUTH2",
            ]
            assert client.login("user", USERS["user"])[0] == 235
            assert client.sent[-2].startswith(b"AUTH CRAM-MD5")
        with smtplib.SMTP("127.0.0.1", served.port, timeout=TIMEOUT) as client:
            client.ehlo()
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.auth("XOAUTH2", _xoauth2("bob@example.org", "ya29.bad"))
            assert client.auth("XOAUTH2", _xoauth2("bob@example.org", "ya29.good"))[0] == 235
    assert checked == [("bob@example.org", "ya29.bad"), ("bob@example.org", "ya29.good")]


# -- LMTP with smtplib.LMTP, on every adapter ----------------------------------

LMTP_RCPTS = ["a@example.org", "b@example.org", "c@example.org"]
LMTP_VERDICT = {"b@example.org": Reply(552, "mailbox full", "5.2.2")}


def _lmtp_exchange(port: int) -> list[tuple[int, bytes]]:
    """Deliver to three recipients with smtplib.LMTP; every reply after the data."""
    with smtplib.LMTP("127.0.0.1", port, timeout=TIMEOUT) as client:
        code, _ = client.ehlo("client.test")  # smtplib.LMTP sends LHLO
        assert code == 250 and client.does_esmtp
        assert client.sendmail("s@example.org", LMTP_RCPTS, b"Subject: lmtp\r\n\r\nhi\r\n") == {}
        # smtplib reads only the first reply after the data; the others follow
        replies = [client.getreply() for _ in LMTP_RCPTS[1:]]
        assert client.noop()[0] == 250  # in step again
    return replies


def test_smtplib_lmtp_on_the_blocking_server() -> None:
    handler = Recorder(LMTP_VERDICT)
    srv = SMTPServer(handler, timeouts=Timeouts(TIMEOUT), lmtp=True)
    with srv.running():
        assert srv.url.startswith("lmtp://")
        replies = _lmtp_exchange(srv.port)
    assert replies == [(552, b"5.2.2 mailbox full"), (250, b"2.0.0 <c@example.org> delivered")]
    [(envelope, _data)] = handler.received
    assert envelope.rcpt_tos == LMTP_RCPTS and envelope.protocol == "LMTP"


@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_smtplib_lmtp_on_the_async_servers(adapter_name: str) -> None:
    adapter = Adapter(adapter_name)
    seen: list[Envelope] = []

    class AsyncHandler:
        async def message(self, envelope: Envelope, data: bytes) -> Any:
            seen.append(envelope)
            return [None, LMTP_VERDICT["b@example.org"], None]

    server = adapter.SMTPServer(AsyncHandler(), timeouts=Timeouts(TIMEOUT), lmtp=True)
    with adapter.serve(server) as served:
        replies = _lmtp_exchange(served.port)
    assert replies == [(552, b"5.2.2 mailbox full"), (250, b"2.0.0 <c@example.org> delivered")]
    assert [env.rcpt_tos for env in seen] == [LMTP_RCPTS]


def test_smtplib_smtp_client_is_refused_by_an_lmtp_server() -> None:
    srv = SMTPServer(Recorder(), timeouts=Timeouts(TIMEOUT), lmtp=True)
    with srv.running(), smtplib.SMTP("127.0.0.1", srv.port, timeout=TIMEOUT) as client:
        with pytest.raises(smtplib.SMTPHeloError) as refused:
            client.sendmail("a@x", ["b@y"], b"x\r\n")  # tries EHLO, then HELO
        assert refused.value.smtp_code == 500  # RFC 2033 4.1: both are refused
        assert client.ehlo()[0] == 500


# -- graceful shutdown, end to end -------------------------------------------


def _idle_session_sees_shutdown(port: int, stop: Any, hostname: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        sock.sendall(b"EHLO client.test\r\nMAIL FROM:<a@x>\r\n")
        while not reader.readline().startswith(b"250 2.1.0"):
            pass
        stop()
        rest = reader.read()  # until the server closes
    assert rest == f"421 4.3.2 {hostname} Service shutting down\r\n".encode()
    return rest


def test_shutdown_says_421_to_an_idle_session(maildir: Path) -> None:
    srv = SMTPServer(maildir=maildir, timeouts=Timeouts(TIMEOUT), hostname="mx.test", grace=5.0)
    running = srv.running()
    running.__enter__()
    try:
        _idle_session_sees_shutdown(srv.port, lambda: running.__exit__(None, None, None), "mx.test")
    finally:
        srv.shutdown(0)


@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_async_shutdown_says_421_to_an_idle_session(adapter_name: str, maildir: Path) -> None:
    adapter = Adapter(adapter_name)
    server = adapter.SMTPServer(
        Recorder(), timeouts=Timeouts(TIMEOUT), hostname="mx.test", grace=5.0
    )
    serving = adapter.serve(server)
    served = serving.__enter__()
    stopped: list[bool] = []

    def stop() -> None:
        stopped.append(True)
        serving.__exit__(None, None, None)

    try:
        _idle_session_sees_shutdown(served.port, stop, "mx.test")
    finally:
        if not stopped:
            serving.__exit__(None, None, None)


# -- the CLI -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("io", ["sync", "asyncio"])
def test_cli_serve_smtp_lmtp(maildir: Path, io: str) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "protomata.cli._serve_smtp",
            "--lmtp",
            "--io",
            io,
            "--port",
            str(port),
            "--maildir",
            str(maildir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        assert banner == f"Serving LMTP on 127.0.0.1:{port} (maildir: {maildir})\n"
        with smtplib.LMTP("127.0.0.1", port, timeout=TIMEOUT) as client:
            assert client.sendmail("a@x", ["b@y", "c@y"], b"Subject: cli\r\n\r\nhi\r\n") == {}
            assert client.getreply() == (250, b"2.0.0 <c@y> delivered")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0
    [stored] = _messages(maildir)
    assert b" with LMTP;" in stored and b"Subject: cli\n" in stored
