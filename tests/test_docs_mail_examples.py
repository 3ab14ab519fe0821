"""The mail guides' examples, run for real.

* docs/examples/smtp_sink.py, smtp_async_sink.py (asyncio and trio) and
  pop3_mailhost.py are started as subprocesses on 127.0.0.1 with ephemeral
  ports and stopped with SIGTERM, which must end them cleanly; the standard
  library's smtplib and poplib, and raw sockets for what no well-behaved
  client sends, talk to them.
* The client examples (smtp_send.py, pop3_fetch.py) run as programs against
  those servers.
* docs/smtp.rst, pop3.rst and coming-from-stdlib-mail.rst keep their
  ``>>>`` snippets (test_docs_examples.py runs every snippet in docs/*.rst)
  and every example they include exists.
"""

from __future__ import annotations

import asyncio
import importlib.util
import poplib
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

import pytest

from protomata.smtp import Envelope
from protomata.sync import SMTPError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
TIMEOUT = 30
SERVING = re.compile(r"Serving (SMTP|POP3) on (?:smtp|pop)://127\.0\.0\.1:(\d+)/?$")


class Example:
    """An example server running as a subprocess; ``ports`` maps SMTP/POP3 to its ports."""

    def __init__(self, args: list[str], banners: int = 1) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=EXAMPLES,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ports: dict[str, int] = {}
        assert self.proc.stdout is not None
        for _ in range(banners):
            line = self.proc.stdout.readline()
            match = SERVING.match(line.strip())
            if match is None:
                self.proc.kill()
                _, err = self.proc.communicate(timeout=TIMEOUT)
                pytest.fail(f"{args} did not start: {line!r} {err!r}")
            self.ports[match.group(1)] = int(match.group(2))

    @property
    def port(self) -> int:
        return self.ports["SMTP"]

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, as a service manager would; (exit status, rest of stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=TIMEOUT)
            pytest.fail(f"did not stop on SIGTERM: {err!r}")
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=TIMEOUT)


@pytest.fixture
def start() -> Iterator[type[Example]]:
    started: list[Example] = []

    class Tracked(Example):
        def __init__(self, args: list[str], banners: int = 1) -> None:
            super().__init__(args, banners)
            started.append(self)

    yield Tracked
    for example in started:
        example.kill()


def _new(maildir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((maildir / "new").iterdir())]


def _raw_smtp(port: int, commands: bytes, replies: int) -> list[bytes]:
    """Send *commands* after the greeting in one write; return the next *replies* reply lines."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        sock.sendall(commands)
        lines: list[bytes] = []
        while len(lines) < replies:
            line = reader.readline()
            assert line, f"connection closed after {lines!r}"
            if line[3:4] != b"-":
                lines.append(line)
        return lines


# -- smtp_sink.py: a blocking server with a handler -----------------------------------


@pytest.fixture
def sink(start: type[Example], tmp_path: Path) -> Example:
    return start(["smtp_sink.py", "--maildir", str(tmp_path / "mail"), "--port", "0"])


def test_sink_accepts_refuses_and_stores(sink: Example, tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=TIMEOUT) as client:
        code, features = client.ehlo("client.test")
        assert code == 250
        assert features.startswith(b"sink.example\n")
        for keyword in (b"SIZE 1000000", b"PIPELINING", b"ENHANCEDSTATUSCODES", b"8BITMIME"):
            assert keyword in features.split(b"\n")
        # One recipient refused by rcpt_to(), the other accepted: a result per recipient.
        refused = client.sendmail(
            "alice@example.net",
            ["bob@example.org", "carol@example.com"],
            b"Subject: hello\r\n\r\n.a line with a dot\r\nHi Bob!\r\n",
        )
        assert refused == {
            "carol@example.com": (550, b"5.1.1 Only mail for example.org is accepted here")
        }
        # message() refuses a message without Subject.
        with pytest.raises(smtplib.SMTPDataError) as data_error:
            client.sendmail("alice@example.net", ["bob@example.org"], b"From: a\r\n\r\nx\r\n")
        assert (data_error.value.smtp_code, data_error.value.smtp_error) == (
            554,
            b"5.6.0 A Subject header is required",
        )
        # mail_from() refuses a blocked sender.
        with pytest.raises(smtplib.SMTPSenderRefused) as sender_error:
            client.sendmail("spammer@example.net", ["bob@example.org"], b"Subject: x\r\n\r\nx\r\n")
        assert sender_error.value.smtp_code == 550
        # The SIZE limit: refused at MAIL FROM, before the data is sent.
        with pytest.raises(smtplib.SMTPSenderRefused) as size_error:
            client.sendmail(
                "alice@example.net", ["bob@example.org"], b"Subject: big\r\n\r\n" + b"x" * 1_000_001
            )
        assert size_error.value.smtp_code == 552
    [stored] = _new(maildir)
    assert stored.startswith(b"Return-Path: <alice@example.net>\nReceived: from client.test (")
    assert b"by sink.example (protomata) with ESMTP" in stored
    assert stored.endswith(b"\nSubject: hello\n\n.a line with a dot\nHi Bob!\n")
    assert list((maildir / "tmp").iterdir()) == []
    status, out, err = sink.stop()
    assert status == 0, err
    assert out == "Stored 47 bytes from <alice@example.net> to bob@example.org\nStopped\n"


def test_sink_smuggling_attempt_stays_one_message(sink: Example, tmp_path: Path) -> None:
    """Bare LF "." bare LF is body data: the smuggled commands never run."""
    smuggled = (
        b"Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<ceo@example.org>\n"
        b"RCPT TO:<bob@example.org>\nDATA\nSubject: forged\n\nsecond\r\n.\r\n"
    )
    replies = _raw_smtp(
        sink.port,
        b"EHLO client.test\r\nMAIL FROM:<alice@example.net>\r\n"
        b"RCPT TO:<bob@example.org>\r\nDATA\r\n" + smuggled + b"QUIT\r\n",
        replies=6,
    )
    assert [line[:3] for line in replies] == [b"250", b"250", b"250", b"354", b"250", b"221"]
    [stored] = _new(tmp_path / "mail")
    assert b"Return-Path: <alice@example.net>\n" in stored
    assert stored.endswith(
        b"\nSubject: one\n\nfirst\n.\nMAIL FROM:<ceo@example.org>\n"
        b"RCPT TO:<bob@example.org>\nDATA\nSubject: forged\n\nsecond\n"
    )
    assert sink.stop()[0] == 0


def test_sink_discards_what_is_pipelined_after_starttls(sink: Example) -> None:
    """Nothing may follow STARTTLS in a pipelined group (RFC 3207): it is dropped unread.

    The example offers no STARTTLS, so the command gets 502; the NOOP sent
    in the same write is discarded (it gets no reply), and the session goes
    on with what the client sends next.
    """
    with socket.create_connection(("127.0.0.1", sink.port), timeout=TIMEOUT) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        sock.sendall(b"HELO client.test\r\nSTARTTLS\r\nNOOP injected\r\n")
        assert reader.readline().startswith(b"250 ")
        assert reader.readline().startswith(b"502 ")
        sock.sendall(b"RSET\r\nQUIT\r\n")
        assert reader.readline().startswith(b"250 2.0.0 OK")
        assert reader.readline().startswith(b"221 ")
        assert reader.readline() == b""
    assert sink.stop()[0] == 0


def test_sink_says_421_to_idle_sessions_on_sigterm(sink: Example) -> None:
    with socket.create_connection(("127.0.0.1", sink.port), timeout=TIMEOUT) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        sock.sendall(b"EHLO client.test\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        status, out, err = sink.stop()
        assert reader.readline() == b"421 4.3.2 sink.example Service shutting down\r\n"
        assert reader.readline() == b""
    assert (status, out) == (0, "Stopped\n"), err


# -- smtp_async_sink.py: asyncio and trio ---------------------------------------------


@pytest.mark.parametrize("io", ["asyncio", "trio"])
def test_async_sink(start: type[Example], io: str) -> None:
    if io == "trio":
        pytest.importorskip("trio")
    server = start(["smtp_async_sink.py", "--io", io, "--port", "0"])
    message = EmailMessage()
    message["From"] = "app@example.org"
    message["To"] = "user@example.org, bounce-7@example.org"
    message["Subject"] = "Your order"
    message.set_content("Thanks!\n.\nA line with only a dot, above.\n")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client:
        refused = client.send_message(message)
        assert refused == {"bounce-7@example.org": (550, b"5.1.1 No such mailbox")}
        assert client.sendmail("a@example.org", ["b@example.org"], b"Subject: two\r\n\r\n") == {}
    status, out, err = server.stop()
    assert status == 0, err
    lines = out.splitlines()
    assert re.fullmatch(
        r"#1 <app@example\.org> -> user@example\.org: 'Your order' \(\d+ bytes, ESMTP\)", lines[0]
    )
    assert lines[1] == "#2 <a@example.org> -> b@example.org: 'two' (16 bytes, ESMTP)"
    assert lines[2:] == ["Caught 2 messages"]


# -- pop3_mailhost.py: SMTP in, POP3 out ----------------------------------------------


@pytest.fixture
def mailhost(start: type[Example], tmp_path: Path) -> Example:
    return start(
        [
            "pop3_mailhost.py",
            "--maildir",
            str(tmp_path / "mail"),
            "--user",
            "bob:tanstaaf",
            "--smtp-port",
            "0",
            "--pop3-port",
            "0",
        ],
        banners=2,
    )


def _deliver(port: int, *subjects: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as client:
        for subject in subjects:
            body = f"Subject: {subject}\r\n\r\n.leading dot\r\nend\r\n"
            assert client.sendmail("alice@example.net", ["bob@example.org"], body.encode()) == {}


def test_mailhost_smtp_in_pop3_out(mailhost: Example, tmp_path: Path) -> None:
    _deliver(mailhost.ports["SMTP"], "first", "second", "third")
    pop = poplib.POP3("127.0.0.1", mailhost.ports["POP3"], timeout=TIMEOUT)
    capabilities = pop.capa()
    for tag in ("TOP", "UIDL", "USER", "SASL", "RESP-CODES"):
        assert tag in capabilities
    assert "PLAIN" in capabilities["SASL"]
    pop.user("bob")
    pop.pass_("tanstaaf")
    count, size = pop.stat()
    assert count == 3
    _, listing, _ = pop.list()
    assert sum(int(line.split()[1]) for line in listing) == size
    _, uids_before, _ = pop.uidl()
    _, top, _ = pop.top(2, 0)
    assert b"Subject: second" in top and b".leading dot" not in top
    pop.dele(1)
    # A second session is refused while this one holds the mailbox.
    other = poplib.POP3("127.0.0.1", mailhost.ports["POP3"], timeout=TIMEOUT)
    other.user("bob")
    with pytest.raises(poplib.error_proto, match=r"IN-USE"):
        other.pass_("tanstaaf")
    other.quit()
    assert pop.quit().startswith(b"+OK")
    # The next session (APOP this time) sees two messages, with the same unique-ids.
    pop = poplib.POP3("127.0.0.1", mailhost.ports["POP3"], timeout=TIMEOUT)
    pop.apop("bob", "tanstaaf")
    _, uids_after, _ = pop.uidl()
    assert [u.split()[1] for u in uids_after] == [u.split()[1] for u in uids_before[1:]]
    pop.quit()
    assert len(_new(tmp_path / "mail")) == 2
    status, out, err = mailhost.stop()
    assert (status, out) == (0, "Stopped\n"), err


def _pop3_login(port: int) -> tuple[socket.socket, BinaryIO]:
    """A raw POP3 session logged in as bob (waiting while a closing session holds the lock)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"+OK")
        sock.sendall(b"USER bob\r\nPASS tanstaaf\r\n")
        assert reader.readline().startswith(b"+OK")
        reply = reader.readline()
        if reply.startswith(b"+OK"):
            return sock, reader
        assert reply.startswith(b"-ERR [IN-USE]") and time.monotonic() < deadline, reply
        sock.close()
        time.sleep(0.05)


def test_mailhost_dele_without_quit_deletes_nothing(mailhost: Example, tmp_path: Path) -> None:
    # A message another program put into the Maildir, with LF line ends and
    # a line longer than poplib's 2048-byte limit.
    (tmp_path / "mail" / "new" / "1700000000.1_1.other").write_bytes(
        b"Subject: keep me\n\n.leading dot\n" + b"L" * 3000 + b"\nend\n"
    )
    sock, reader = _pop3_login(mailhost.ports["POP3"])
    with sock:
        sock.sendall(b"DELE 1\r\nRETR 1\r\n")
        assert reader.readline().startswith(b"+OK ")
        assert reader.readline().startswith(b"-ERR ")  # marked deleted: invisible
        # Now end the connection without QUIT, and wait until the server has closed it.
        sock.shutdown(socket.SHUT_WR)
        assert reader.read() == b""
    sock, reader = _pop3_login(mailhost.ports["POP3"])
    with sock:
        sock.sendall(b"RETR 1\r\n")
        assert reader.readline().startswith(b"+OK")
        body = b""
        while not body.endswith(b"\r\n.\r\n"):
            line = reader.readline()
            assert line
            body += line
        sock.sendall(b"QUIT\r\n")
        assert reader.readline().startswith(b"+OK")
    # The long line came through whole, with CRLF; the leading dot is stuffed on the wire.
    assert b"\r\n" + b"L" * 3000 + b"\r\n" in body
    assert b"\r\n..leading dot\r\n" in body
    assert len(_new(tmp_path / "mail")) == 1
    assert mailhost.stop()[0] == 0


# -- the client examples ---------------------------------------------------------------


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _program(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=EXAMPLES,
        input=stdin,
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_send_program_reports_each_recipient(sink: Example, tmp_path: Path) -> None:
    result = _program(
        [
            "smtp_send.py",
            "--server",
            f"127.0.0.1:{sink.port}",
            "--from",
            "alice@example.net",
            "--to",
            "bob@example.org",
            "--to",
            "carol@example.com",
            "--subject",
            "Grüße",
        ],
        stdin="Hello Bob,\n.\nthe line above is a single dot.\n",
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "bob@example.org: accepted",
        "carol@example.com: refused: 550 5.1.1 Only mail for example.org is accepted here",
    ]
    [stored] = _new(tmp_path / "mail")
    assert b"\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n" in stored
    assert stored.endswith(b"\n\nHello Bob,\n.\nthe line above is a single dot.\n")
    assert sink.stop()[0] == 0


def test_send_function_and_failure(sink: Example) -> None:
    send = _load_example("smtp_send").send
    result = send(
        "127.0.0.1", sink.port, "a@example.net", ["b@example.org"], subject="Hi", body="B\n"
    )
    assert result.ok
    assert list(result.accepted) == ["b@example.org"]
    assert result.refused == {}
    assert result.reply is not None and result.reply.code == 250
    # Nobody accepted: nothing is sent, and the result says why for each address.
    result = send(
        "127.0.0.1", sink.port, "a@example.net", ["x@example.com"], subject="Hi", body="B\n"
    )
    assert not result.ok and result.accepted == {}
    assert result.refused["x@example.com"].code == 550
    # A refused message fails the transaction as a whole: SMTPError.
    with pytest.raises(SMTPError) as error:
        send(
            "127.0.0.1", sink.port, "spammer@example.net", ["b@example.org"], subject="Hi", body=""
        )
    assert error.value.reply is not None and error.value.reply.code == 550
    assert sink.stop()[0] == 0


def test_send_program_without_a_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connecting is refused
        result = _program(
            ["smtp_send.py", "--server", f"127.0.0.1:{port}", "--from", "a@b.c", "--to", "d@e.f"]
        )
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr.startswith("not sent: ")


@pytest.mark.parametrize("io", ["asyncio", "trio"])
def test_async_send_program_against_the_catcher(start: type[Example], io: str) -> None:
    if io == "trio":
        pytest.importorskip("trio")
    catcher = start(["smtp_async_sink.py", "--io", io, "--port", "0"])
    recipients = [f"user{i}@example.org" for i in range(5)] + ["bounce-1@example.org"]
    result = _program(
        [
            "smtp_async_send.py",
            "--server",
            f"127.0.0.1:{catcher.port}",
            "--from",
            "reports@example.org",
            "--sessions",
            "2",
            *recipients,
        ]
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        *(f"{r}: accepted" for r in recipients[:-1]),
        "bounce-1@example.org: refused: 550 No such mailbox",
    ]
    status, out, err = catcher.stop()
    assert status == 0, err
    caught = out.splitlines()
    assert caught[-1] == "Caught 5 messages"
    assert sorted(line.split(" -> ")[1].split(":")[0] for line in caught[:-1]) == recipients[:-1]


def test_async_send_reuses_its_sessions() -> None:
    """Six messages over two sessions: the server sees at most two client ports."""
    from protomata.asyncio import SMTPServer

    send_all = _load_example("smtp_async_send").send_all
    peers: list[tuple[str, int]] = []
    bodies: list[bytes] = []

    class Handler:
        async def message(self, envelope: Envelope, data: bytes) -> None:
            peers.append(envelope.peer)
            bodies.append(data)

    async def scenario() -> dict[str, str]:
        server = SMTPServer(Handler(), "127.0.0.1", 0, hostname="test")
        task = asyncio.create_task(server.serve_forever(handle_signals=False))
        try:
            recipients = [f"u{i}@example.org" for i in range(6)]
            return await asyncio.wait_for(
                send_all("127.0.0.1", server.port, "r@example.org", recipients, 2), TIMEOUT
            )
        finally:
            await server.shutdown()
            await task

    outcome = asyncio.run(scenario())
    assert outcome == {f"u{i}@example.org": "accepted" for i in range(6)}
    assert len(bodies) == 6
    assert 1 <= len(set(peers)) <= 2
    assert all(b"Subject: Your weekly report\r\n" in body for body in bodies)


def test_fetch_program_leaves_mail_on_the_server(mailhost: Example, tmp_path: Path) -> None:
    into = tmp_path / "fetched"
    args = [
        "pop3_fetch.py",
        "--server",
        f"127.0.0.1:{mailhost.ports['POP3']}",
        "--user",
        "bob",
        "--password",
        "tanstaaf",
        "--into",
        str(into),
    ]
    _deliver(mailhost.ports["SMTP"], "first", "second")
    assert _program(args).stdout == "Fetched 2 new messages; 0 seen before\n"
    _deliver(mailhost.ports["SMTP"], "third")
    assert _program(args).stdout == "Fetched 1 new messages; 2 seen before\n"
    files = sorted(into.glob("*.eml"))
    assert len(files) == 3
    assert len((into / ".seen").read_text().split()) == 3
    # Each file holds the message as sent by the server: CRLF, trace fields, unstuffed dots.
    bodies = [path.read_bytes() for path in files]
    assert all(b.startswith(b"Return-Path: <alice@example.net>\r\n") for b in bodies)
    assert sorted(b.split(b"Subject: ")[1].split(b"\r\n")[0] for b in bodies) == [
        b"first",
        b"second",
        b"third",
    ]
    assert all(b.endswith(b"\r\n\r\n.leading dot\r\nend\r\n") for b in bodies)
    assert len(_new(tmp_path / "mail")) == 3  # left on the server
    result = _program([*args, "--delete"])
    assert result.stdout == "Fetched 0 new messages; 3 seen before\n"
    assert _new(tmp_path / "mail") == []
    bad = _program([*args[:-4], "--password", "wrong", "--into", str(into)])
    assert bad.returncode == 1 and bad.stderr.startswith("failed: ")
    assert mailhost.stop()[0] == 0


def test_fetch_function(mailhost: Example, tmp_path: Path) -> None:
    fetch = _load_example("pop3_fetch").fetch
    _deliver(mailhost.ports["SMTP"], "only")
    port = mailhost.ports["POP3"]
    assert fetch("127.0.0.1", port, "bob", "tanstaaf", tmp_path / "a", delete=True) == (1, 0)
    assert fetch("127.0.0.1", port, "bob", "tanstaaf", tmp_path / "a") == (0, 0)
    assert mailhost.stop()[0] == 0


# -- the pages -------------------------------------------------------------------------

MAIL_PAGES = ["smtp.rst", "pop3.rst", "coming-from-stdlib-mail.rst"]


@pytest.mark.parametrize("name", MAIL_PAGES)
def test_mail_pages_have_snippets_and_their_examples_exist(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    assert "\n>>> " in text, f"{name} lost its >>> examples"
    for included in re.findall(r"\.\. literalinclude:: (\S+)", text):
        assert (DOCS / included).is_file(), included


def test_mail_pages_are_in_the_toctree() -> None:
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    toctree = index.split(".. toctree::", 1)[1]
    for name in MAIL_PAGES:
        assert f"\n   {name.removesuffix('.rst')}\n" in toctree
