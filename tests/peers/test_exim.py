"""Exim's smtp transport delivering to protomata's blocking SMTP server.

Exim is the one widely deployed client here that speaks CHUNKING (RFC 3030):
its smtp transport sends ``BDAT`` whenever the server offers CHUNKING
(``hosts_try_chunking``).  smtplib, swaks, postfix's smtp client and aiosmtpd
only send ``DATA``, so this is the test of our BDAT handling against a client
we did not write.

How exim runs here without being installed (it conflicts with postfix as a
Debian MTA package):

* ``apt-get download exim4-daemon-light`` and ``dpkg-deb -x`` it into a
  cache directory keyed by the package version
  (``/tmp/protomata-exim-<version>/``, reused by later runs); the binary
  needs no library that a Debian system with postfix lacks;
* the binary looks up the compiled-in user ``Debian-exim`` before it reads
  any configuration and refuses to run without it (or as uid 0).  Instead
  of adding a system user, every exim command runs in a private mount
  namespace (``unshare -m``) where copies of ``/etc/passwd`` and
  ``/etc/group`` with that user appended are bind-mounted over the real
  ones; the system files are never written;
* each test gets its own directory under ``/tmp`` (not ``tmp_path``, whose
  0700 parents the exim user cannot enter) with ``exim.conf``, the spool
  and the logs.  ``-C`` points exim at that configuration; as root we keep
  enough privilege to deliver, and ``exim_path`` makes the ``-Mc`` re-exec
  use the extracted binary;
* ``exim -odi -oi -f SENDER RCPT...`` reads the message from stdin and
  delivers it in the foreground before it exits, through a ``manualroute``
  router (``self = send``) and an ``smtp`` transport to ``127.0.0.1:PORT``.

Needs root (for ``unshare`` and the bind mounts) and a working
``apt-get download`` (a reachable Debian mirror); otherwise the tests are
skipped with the reason.  Exim's log is printed at teardown, so a failure
shows it.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import random
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from protomata.smtp import Reply
from protomata.smtp._server import Envelope
from protomata.sync import Timeouts
from protomata.sync._smtpserver import SMTPServer

from ..mail_servers_async.conftest import ADAPTERS, Adapter

#: The Debian package holding the exim binary (``/usr/sbin/exim4``).
EXIM_PACKAGE = "exim4-daemon-light"

#: The user name compiled into Debian's exim.
EXIM_USER = "Debian-exim"

#: Every exim command (and the download) must end within this many seconds.
COMMAND_TIMEOUT = 60.0

_CACHE_PREFIX = "/tmp/protomata-exim-"

_CONFIG = """\
exim_path = {binary}
primary_hostname = exim.test
spool_directory = {root}/spool
log_file_path = {root}/log/%slog
log_selector = +all
keep_environment =
message_size_limit = 50M
# No TLS as a server (exim only reads a message from stdin here).
tls_advertise_hosts =

begin routers

to_protomata:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = protomata_smtp

begin transports

protomata_smtp:
  driver = smtp
  port = {port}
  allow_localhost
  connect_timeout = 5s
  command_timeout = 10s
  data_timeout = 20s
  hosts_try_chunking = *
  message_linelength_limit = 100000
{tls}
begin retry

* * F,1m,1m
"""

_PLAIN = "  hosts_avoid_tls = *\n"

_TLS = """\
  hosts_require_tls = *
  tls_verify_hosts = *
  tls_verify_certificates = {ca}
  tls_verify_cert_hostnames = *
"""


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, capture_output=True, timeout=COMMAND_TIMEOUT, check=False, **kwargs)


def _package_version() -> str:
    got = _run(["apt-cache", "show", "--no-all-versions", EXIM_PACKAGE])
    match = re.search(rb"^Version: (\S+)$", got.stdout, re.MULTILINE)
    if got.returncode != 0 or match is None:
        pytest.skip(f"apt-cache knows no {EXIM_PACKAGE}: {got.stderr.decode(errors='replace')}")
    return match.group(1).decode("ascii").replace(":", "_")


def _download(cache: Path) -> None:
    """Download and extract the package into *cache* (atomically: build, then rename)."""
    work = Path(tempfile.mkdtemp(prefix=cache.name + "-", dir=cache.parent))
    try:
        got = _run(["apt-get", "download", EXIM_PACKAGE], cwd=work)
        debs = list(work.glob("*.deb"))
        if got.returncode != 0 or len(debs) != 1:
            pytest.skip(
                f"apt-get download {EXIM_PACKAGE} failed: {got.stderr.decode(errors='replace')}"
            )
        got = _run(["dpkg-deb", "-x", str(debs[0]), str(work / "root")])
        if got.returncode != 0:
            pytest.skip(f"dpkg-deb -x failed: {got.stderr.decode(errors='replace')}")
        debs[0].unlink()
        work.chmod(0o755)
        try:
            work.rename(cache)
        except OSError:  # another run got there first
            if not cache.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unused_id() -> int:
    """A uid (used as gid too) that no user has: exim's user must not be root."""
    taken = {entry.pw_uid for entry in pwd.getpwall()} | {entry.gr_gid for entry in grp.getgrall()}
    return next(uid for uid in range(61234, 65000) if uid not in taken)


class EximBinary:
    """The extracted exim and the facts about how it was obtained."""

    def __init__(self, path: Path, version: str, fetch_seconds: float) -> None:
        self.path = path
        self.version = version
        #: seconds spent downloading and extracting (0 when the cache had it)
        self.fetch_seconds = fetch_seconds


@pytest.fixture(scope="session")
def exim_binary() -> EximBinary:
    """Exim's binary from the Debian package, extracted once and cached by version."""
    if os.geteuid() != 0:
        pytest.skip("exim without installing it needs root (unshare -m, bind mounts)")
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "unshare", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing")
    if _run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("unshare -m is not permitted here (no CAP_SYS_ADMIN)")
    version = _package_version()
    cache = Path(_CACHE_PREFIX + version)
    started = time.monotonic()
    if not cache.is_dir():
        _download(cache)
    fetch_seconds = time.monotonic() - started
    print(f"{EXIM_PACKAGE} {version} ready in {cache} after {fetch_seconds:.2f} s")
    binary = cache / "root" / "usr" / "sbin" / "exim4"
    if not binary.is_file():
        pytest.skip(f"{EXIM_PACKAGE} {version} holds no usr/sbin/exim4")
    return EximBinary(binary, version, fetch_seconds)


class Exim:
    """One throw-away exim setup: configuration, spool and logs under *root*."""

    def __init__(self, binary: EximBinary, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.config = root / "exim.conf"
        self.ca_file = root / "ca.pem"
        uid = _unused_id()
        passwd = Path("/etc/passwd").read_text("utf-8").rstrip("\n")
        group = Path("/etc/group").read_text("utf-8").rstrip("\n")
        if not re.search(rf"^{EXIM_USER}:", passwd, re.MULTILINE):
            passwd += f"\n{EXIM_USER}:x:{uid}:{uid}:exim:/nonexistent:/usr/sbin/nologin"
            group += f"\n{EXIM_USER}:x:{uid}:"
        (root / "passwd").write_text(passwd + "\n", "utf-8")
        (root / "group").write_text(group + "\n", "utf-8")
        user = re.search(rf"^{EXIM_USER}:[^:]*:(\d+):(\d+):", passwd, re.MULTILINE)
        assert user is not None
        for name in ("spool", "log"):
            (root / name).mkdir()
            os.chown(root / name, int(user.group(1)), int(user.group(2)))

    def configure(self, port: int, *, tls_ca: Any = None) -> None:
        """Send every message to ``127.0.0.1:port``.

        With *tls_ca* (a trustme CA), over STARTTLS only, and only to a
        server whose certificate that CA signed for ``127.0.0.1``.
        """
        options = _PLAIN
        if tls_ca is not None:
            tls_ca.cert_pem.write_to_path(str(self.ca_file))
            options = _TLS.format(ca=self.ca_file)
        self.config.write_text(
            _CONFIG.format(binary=self.binary.path, root=self.root, port=port, tls=options)
        )

    def command(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        """Run ``exim -C exim.conf ARGS`` with the private passwd/group mounted."""
        script = (
            f"mount --bind {self.root}/passwd /etc/passwd"
            f" && mount --bind {self.root}/group /etc/group"
            ' && exec "$@"'
        )
        return _run(
            [
                *("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"),
                *(str(self.binary.path), "-C", str(self.config), *args),
            ],
            input=stdin,
        )

    def send(self, message: bytes, sender: str, *recipients: str) -> float:
        """Have exim take *message* and deliver it at once; returns the seconds it took."""
        started = time.monotonic()
        got = self.command("-odi", "-oi", "-f", sender, "--", *recipients, stdin=message)
        elapsed = time.monotonic() - started
        assert got.returncode == 0, (got.returncode, got.stderr, self.log())
        return elapsed

    def log(self) -> str:
        """Exim's main log so far."""
        path = self.root / "log" / "mainlog"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def deliveries(self) -> list[str]:
        """The ``=>`` / ``->`` (delivered) log lines."""
        return [line for line in self.log().splitlines() if " => " in line or " -> " in line]

    def queue(self) -> str:
        """``exim -bp``: the messages still queued (empty when all were delivered)."""
        return self.command("-bp").stdout.decode("utf-8", "replace")


@pytest.fixture
def exim(exim_binary: EximBinary) -> Iterator[Exim]:
    """A fresh exim setup for one test; its log is printed at teardown."""
    root = Path(tempfile.mkdtemp(prefix="protomata-exim-run-"))
    root.chmod(0o755)
    try:
        instance = Exim(exim_binary, root)
        yield instance
        print(instance.log())
    finally:
        shutil.rmtree(root, ignore_errors=True)


class RecordingProxy:
    """A loopback TCP relay to *target_port* that records what clients send."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._relay, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.target_port), 30) as upstream:
            client.settimeout(30)
            replies = threading.Thread(target=self._pump, args=(upstream, client, False))
            replies.start()
            self._pump(client, upstream, True)
            replies.join(35)

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if record:
                    with self._lock:
                        self.sent += data
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)

    def commands(self) -> list[bytes]:
        """The client's command lines (BDAT chunks skipped), CRLF removed."""
        data = bytes(self.sent)
        lines: list[bytes] = []
        pos = 0
        while pos < len(data):
            end = data.find(b"\r\n", pos)
            if end < 0:
                break
            line = data[pos:end]
            lines.append(line)
            pos = end + 2
            match = re.fullmatch(rb"BDAT (\d+)( LAST)?", line, re.IGNORECASE)
            if match:
                pos += int(match.group(1))
        return lines


Serve = Callable[..., AbstractContextManager[Any]]


@pytest.fixture(params=["sync", *ADAPTERS])
def serve(request: pytest.FixtureRequest) -> Serve:
    """Run an SMTP server built from keyword arguments: blocking, asyncio or trio."""
    kind: str = request.param

    @contextmanager
    def running(**kwargs: Any) -> Iterator[Any]:
        if kind == "sync":
            server = SMTPServer(hostname="sink.test", **kwargs)
            with server.running():
                yield server
        else:
            adapter = Adapter(kind)
            with adapter.serve(adapter.SMTPServer(hostname="sink.test", **kwargs)) as server:
                yield server

    return running


class Recorder:
    """An SMTP handler that refuses ``bad@`` recipients and records every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, bytes]] = []

    def rcpt_to(self, address: str, params: object) -> Reply | None:
        if address.startswith("bad@"):
            return Reply(550, "no such user here", "5.1.1")
        return None

    def message(self, envelope: Envelope, data: bytes) -> Reply | None:
        self.messages.append((envelope.copy(), data))
        return None


def _stored(maildir: Path) -> list[bytes]:
    new = maildir / "new"
    return [path.read_bytes() for path in sorted(new.iterdir())] if new.is_dir() else []


def _body(stored: bytes) -> bytes:
    """What follows the header block of a stored (LF) message."""
    return stored.split(b"\n\n", 1)[1]


def _delivery_flags(line: str) -> set[str]:
    """The bare flags (``K`` = CHUNKING, ``L`` = PIPELINING) of an exim delivery line."""
    return {word for word in line.split() if word in ("K", "L", "L*")}


def test_small_message_goes_by_bdat(exim: Exim, serve: Serve, tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    with (
        serve(maildir=maildir, timeouts=Timeouts(10.0)) as server,
        RecordingProxy(server.port) as proxy,
    ):
        exim.configure(proxy.port)
        message = b"Subject: chunked\n\nhello over BDAT\n.\n..\nbye\n"
        exim.send(message, "sender@example.org", "rcpt@example.net")
    assert exim.queue() == ""
    [delivery] = exim.deliveries()
    assert "H=127.0.0.1 [127.0.0.1]" in delivery
    assert "K" in _delivery_flags(delivery), delivery
    assert 'C="250 ' in delivery
    commands = proxy.commands()
    verbs = [line.split(b" ", 1)[0].upper() for line in commands]
    assert verbs[:3] == [b"EHLO", b"MAIL", b"RCPT"]
    assert b"DATA" not in verbs
    bdats = [line for line in commands if line.upper().startswith(b"BDAT ")]
    assert bdats and bdats[-1].upper().endswith(b" LAST")
    assert verbs[-1] == b"QUIT"
    [stored] = _stored(maildir)
    assert stored.startswith(b"Return-Path: <sender@example.org>\nReceived: from exim.test (")
    # BDAT carries the lines as they are: no dot-stuffing, nothing lost.
    assert _body(stored) == b"hello over BDAT\n.\n..\nbye\n"


def _big_body(size: int) -> bytes:
    """Dot lines, long lines, 8-bit bytes and ``From `` lines, LF-terminated."""
    rng = random.Random(3030)
    eight_bit = bytes(b for b in range(1, 256) if b not in (10, 13))
    pieces = [b".\n", b"..\n", b".leading dot\n", b"From the start\n", b"\n"]
    lines: list[bytes] = []
    total = 0
    while total < size:
        kind = rng.randrange(5)
        if kind == 0:
            line = rng.choice(pieces)
        elif kind == 1:
            line = b"." * rng.randrange(1, 4) + b"x" * rng.randrange(0, 80) + b"\n"
        elif kind == 2:
            line = bytes(rng.choice(eight_bit) for _ in range(rng.randrange(1, 200))) + b"\n"
        elif kind == 3:
            line = b"L" * rng.randrange(990, 20_000) + b"\n"
        else:
            line = b"plain text line %d\n" % total
        lines.append(line)
        total += len(line)
    return b"".join(lines)


def test_three_megabyte_message_is_stored_byte_exact(
    exim: Exim, serve: Serve, tmp_path: Path
) -> None:
    maildir = tmp_path / "Maildir"
    body = _big_body(3 * 1024 * 1024)
    message = b"Subject: big\nMIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n\n" + body
    with (
        serve(maildir=maildir, timeouts=Timeouts(20.0)) as server,
        RecordingProxy(server.port) as proxy,
    ):
        exim.configure(proxy.port)
        seconds = exim.send(message, "sender@example.org", "rcpt@example.net")
    print(f"exim delivered {len(message)} bytes in {seconds:.2f} s")
    assert exim.queue() == ""
    [delivery] = exim.deliveries()
    assert "K" in _delivery_flags(delivery), delivery
    bdats = [line for line in proxy.commands() if line.upper().startswith(b"BDAT ")]
    assert bdats and bdats[-1].upper().endswith(b" LAST")
    assert b"\r\nDATA\r\n" not in proxy.sent
    [stored] = _stored(maildir)
    assert _body(stored) == body


def test_refused_recipient_is_reported_by_exim(exim: Exim, serve: Serve) -> None:
    recorder = Recorder()
    with serve(handler=recorder, timeouts=Timeouts(10.0)) as server:
        exim.configure(server.port)
        exim.send(
            b"Subject: several\n\nfor three of four\n",
            "sender@example.org",
            "one@example.net",
            "bad@example.net",
            "two@example.net",
            "three@example.net",
        )
        # Exim's bounce to the sender goes through the same route.
        deadline = time.monotonic() + 15
        while len(recorder.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    log = exim.log()
    refused = [line for line in log.splitlines() if " ** bad@example.net" in line]
    assert len(refused) == 1, log
    assert "550 5.1.1 no such user here" in refused[0]
    assert "after RCPT TO:<bad@example.net>" in refused[0]
    delivered = sorted(re.findall(r" [=-]> (\S+@example\.\w+)", log))
    assert delivered == [
        "one@example.net",
        "sender@example.org",
        "three@example.net",
        "two@example.net",
    ]
    assert all("K" in _delivery_flags(line) for line in exim.deliveries())
    [(envelope, data), (bounce, report)] = recorder.messages
    assert envelope.mail_from == "sender@example.org"
    assert envelope.rcpt_tos == ["one@example.net", "two@example.net", "three@example.net"]
    assert data.endswith(b"\r\n\r\nfor three of four\r\n")
    assert (bounce.mail_from, bounce.rcpt_tos) == ("", ["sender@example.org"])
    assert b"bad@example.net" in report and b"550 5.1.1 no such user here" in report
    assert exim.queue() == ""


def test_starttls_with_a_verified_certificate(
    exim: Exim, serve: Serve, tmp_path: Path, tls_ca: Any, tls_server_context: Any
) -> None:
    maildir = tmp_path / "Maildir"
    with (
        serve(maildir=maildir, tls_context=tls_server_context, timeouts=Timeouts(10.0)) as server,
        RecordingProxy(server.port) as proxy,
    ):
        exim.configure(proxy.port, tls_ca=tls_ca)
        exim.send(b"Subject: secret\n\n.over TLS\n", "sender@example.org", "rcpt@example.net")
    assert exim.queue() == ""
    [delivery] = exim.deliveries()
    assert re.search(r" X=TLS1\.[23]\S* CV=yes ", delivery), delivery
    assert {"K", "L"} <= _delivery_flags(delivery), delivery
    # In clear text only EHLO and STARTTLS; the rest is encrypted.
    assert [line.split(b" ")[0].upper() for line in proxy.commands()[:2]] == [b"EHLO", b"STARTTLS"]
    assert b"MAIL FROM" not in proxy.sent.upper()
    [stored] = _stored(maildir)
    assert b"with ESMTPS" in stored.split(b"\n\n", 1)[0]
    assert _body(stored) == b".over TLS\n"


def test_header_and_body_chunks_add_up(exim: Exim, serve: Serve) -> None:
    recorder = Recorder()
    body = b"0123456789abcdef\n" * 40_000
    with (
        serve(handler=recorder, timeouts=Timeouts(20.0)) as server,
        RecordingProxy(server.port) as proxy,
    ):
        exim.configure(proxy.port)
        exim.send(b"Subject: sizes\n\n" + body, "sender@example.org", "rcpt@example.net")
    bdats = [line for line in proxy.commands() if line.upper().startswith(b"BDAT ")]
    # Exim pipelines the header block as one chunk and sends the body as the last.
    assert len(bdats) >= 2, bdats
    assert not any(line.upper().endswith(b" LAST") for line in bdats[:-1])
    assert bdats[-1].upper().endswith(b" LAST")
    [(_, data)] = recorder.messages
    assert sum(int(line.split()[1]) for line in bdats) == len(data)
    assert data.endswith(b"\r\n\r\n" + body.replace(b"\n", b"\r\n"))


def test_server_ends_tls_with_close_notify(
    exim: Exim,
    serve: Serve,
    tmp_path: Path,
    tls_ca: Any,
    tls_server_context: Any,
) -> None:
    with serve(
        maildir=tmp_path / "Maildir", tls_context=tls_server_context, timeouts=Timeouts(10.0)
    ) as server:
        exim.configure(server.port, tls_ca=tls_ca)
        exim.send(b"Subject: bye\n\nclosing\n", "sender@example.org", "rcpt@example.net")
    assert exim.queue() == ""
    [delivery] = exim.deliveries()
    assert " CV=yes " in delivery
    # After QUIT, exim waits for the server's close_notify; a bare TCP close
    # makes GnuTLS report "The TLS connection was non-properly terminated."
    assert "TLS error" not in exim.log()


def test_replies_owed_before_a_half_close_are_sent(serve: Serve, tmp_path: Path) -> None:
    """Exim's pattern without exim: pipeline to QUIT, shut the write side, read."""
    maildir = tmp_path / "Maildir"
    content = b"Subject: half\r\n\r\nclosed\r\n"
    commands = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
    commands += b"BDAT %d LAST\r\n%sQUIT\r\n" % (len(content), content)
    with (
        serve(maildir=maildir, timeouts=Timeouts(10.0)) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        replies = b""
        sock.sendall(b"EHLO client.test\r\n")
        while not re.search(rb"^250 ", replies, re.MULTILINE):
            replies += sock.recv(4096) or pytest.fail(f"closed after {replies!r}")
        sock.sendall(commands)
        sock.shutdown(socket.SHUT_WR)
        replies = b""
        while piece := sock.recv(4096):
            replies += piece
    codes = [line[:3] for line in replies.split(b"\r\n") if line]
    assert codes == [b"250", b"250", b"250", b"221"], replies
    [stored] = _stored(maildir)
    assert _body(stored) == b"closed\n"


@pytest.mark.parametrize("trusted", [False, True], ids=["unknown-ca", "wrong-name"])
def test_exim_refuses_a_certificate_it_cannot_verify(
    exim: Exim, tmp_path: Path, tls_ca: Any, trusted: bool
) -> None:
    """Shows that the verified-TLS tests above would notice a bad certificate."""
    trustme = pytest.importorskip("trustme")
    issuer = tls_ca if trusted else trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issuer.issue_cert("other.test" if trusted else "127.0.0.1").configure_cert(context)
    maildir = tmp_path / "Maildir"
    server = SMTPServer(
        maildir=maildir, tls_context=context, timeouts=Timeouts(10.0), hostname="sink.test"
    )
    with server.running():
        exim.configure(server.port, tls_ca=tls_ca)
        exim.send(b"Subject: no\n\nnot for you\n", "sender@example.org", "rcpt@example.net")
    assert exim.deliveries() == []
    assert re.search(r" == rcpt@example\.net .* defer .*(certificate|verify)", exim.log(), re.I), (
        exim.log()
    )
    assert "rcpt@example.net" in exim.queue()
    assert _stored(maildir) == []
