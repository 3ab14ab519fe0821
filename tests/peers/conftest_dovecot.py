"""A private dovecot on loopback, started by the tests (POP3, POP3S, LMTP, submission).

A test module uses the fixtures by binding them to module names
(``dovecot = conftest_dovecot.dovecot``); this is not ``conftest.py`` so that
the postfix fixtures there stay separate.  On a failure, pytest shows the
lines dovecot logged during the test ("Captured stdout teardown").

The instance runs in the foreground (``dovecot -F -c FILE``) under a
throwaway directory that holds its configuration, sockets, state, log, a
trustme certificate and the users' homes.  Users live in a passwd-file with
plaintext passwords (so APOP and CRAM-MD5 work); each test gets a fresh user
with an empty Maildir.  Mail is owned by ``nobody`` because dovecot refuses
to access mail as root.  The daemon is stopped (SIGTERM, then SIGKILL) and
the directory removed when the module's tests end, whatever their outcome.
Submission relays to a protomata ``SMTPServer`` that keeps what it gets.

Needs root (dovecot drops privileges to its login and mail users) and the
Debian packages ``dovecot-pop3d`` and ``dovecot-lmtpd``; otherwise the tests
are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protomata.smtp import Reply
from protomata.smtp._server import Envelope
from protomata.sync import SMTPServer, Timeouts

#: how long dovecot may take to listen on every port
STARTUP_TIMEOUT = 15.0
#: how long dovecot may take to exit after SIGTERM before it is killed
STOP_TIMEOUT = 10.0

#: accounts made before dovecot starts (it rereads a changed passwd-file only
#: now and then, so accounts are not added while it runs)
ACCOUNTS = 100

#: a user whose quota (4 KiB) a bigger message exceeds
SMALL_QUOTA_USER = "smallquota"

#: the unprivileged owner of the test mailboxes
MAIL_USER = "nobody"

_CONFIG = """\
# Private test instance written by tests/peers/conftest_dovecot.py.
base_dir = {root}/run
state_dir = {root}/state
instance_name = protomata-test-{instance}
listen = 127.0.0.1
protocols = {protocols}
hostname = localhost
log_path = {root}/dovecot.log
# Processes would otherwise wait for the stats service at shutdown.
stats_writer_socket_path =
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login cram-md5 apop
mail_location = maildir:~/Maildir
first_valid_uid = 1
first_valid_gid = 1
lmtp_save_to_detail_mailbox = no
# Quota is checked at delivery, so LMTP refuses an over-quota user after DATA.
mail_plugins = $mail_plugins quota
plugin {{
  quota = maildir:User quota
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
"""


#: added when dovecot-submissiond is installed
_SUBMISSION_CONFIG = """\
# Submission relays every accepted message to our own SMTP server (the sink).
submission_relay_host = 127.0.0.1
submission_relay_port = {relay}
submission_relay_ssl = no
service submission-login {{
  inet_listener submission {{
    address = 127.0.0.1
    port = {submission}
  }}
}}
"""

#: where distributions put dovecot's service binaries
_LIBEXEC_DIRS = ("/usr/lib/dovecot", "/usr/libexec/dovecot")


def _has_service(name: str) -> bool:
    return any(os.access(os.path.join(d, name), os.X_OK) for d in _LIBEXEC_DIRS)


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now (dovecot binds them a moment later)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


#: the relay sink refuses recipients whose local part starts with this
REFUSED_PREFIX = "refuse-"


class _RelaySink:
    """The SMTP handler of the relay sink: it keeps what it is given."""

    def __init__(self, relayed: list[tuple[Envelope, bytes]]) -> None:
        self.relayed = relayed

    def rcpt_to(self, address: str, params: object) -> Reply | None:
        if address.startswith(REFUSED_PREFIX):
            return Reply(550, "no such mailbox here", "5.1.1")
        return None

    def message(self, envelope: Envelope, data: bytes) -> None:
        self.relayed.append((envelope, data))


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


class Account:
    """A dovecot user with its own Maildir (``deliver`` puts mail straight into ``new/``)."""

    def __init__(self, name: str, password: str, home: Path, uid: int, gid: int) -> None:
        self.name = name
        self.password = password
        self.home = home
        self.maildir = home / "Maildir"
        self._uid = uid
        self._gid = gid
        self._names = itertools.count(1)
        for path in (home, self.maildir, *(self.maildir / s for s in ("new", "cur", "tmp"))):
            path.mkdir(exist_ok=True)
            os.chown(path, uid, gid)

    def deliver(self, message: bytes) -> str:
        """Store *message* in ``new/`` as the mail user would; return its file name."""
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._names)}.protomata-test"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(message)
        os.chown(tmp, self._uid, self._gid)
        os.rename(tmp, self.maildir / "new" / name)
        return name

    def stored(self) -> list[bytes]:
        """The messages now in ``new/`` and ``cur/``, in file name order."""
        paths = [p for sub in ("new", "cur") for p in (self.maildir / sub).iterdir()]
        return [p.read_bytes() for p in sorted(paths, key=lambda p: p.name)]


class Dovecot:
    """A running private dovecot: ports, TLS trust, accounts and the log."""

    def __init__(self, root: Path, ca_file: Path) -> None:
        self.root = root
        self.ca_file = ca_file
        self.pop3_port, self.pop3s_port, self.lmtp_port, self.submission_port = _free_ports(4)
        #: what dovecot's submission service relayed: ``(envelope, data)``
        self.relayed: list[tuple[Envelope, bytes]] = []
        self.relay = SMTPServer(_RelaySink(self.relayed), "127.0.0.1", 0, timeouts=Timeouts(10.0))
        entry = pwd.getpwnam(MAIL_USER)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self.password = "s3cret pw"
        self.passwd = root / "passwd"
        self.passwd.write_text(
            "".join(
                f"{name}:{{PLAIN}}{self.password}:{self.uid}:{self.gid}::{self._home(name)}::"
                f"{extra}\n"
                for name, extra in [
                    *((self._user(n), "") for n in range(1, ACCOUNTS + 1)),
                    (SMALL_QUOTA_USER, "userdb_quota_rule=*:storage=4K"),
                ]
            )
        )
        self.config = root / "dovecot.conf"
        #: whether dovecot-submissiond is installed (the submission tests skip if not)
        self.has_submission = _has_service("submission")
        protocols = "pop3 lmtp submission" if self.has_submission else "pop3 lmtp"
        submission = (
            _SUBMISSION_CONFIG.format(relay=self.relay.port, submission=self.submission_port)
            if self.has_submission
            else ""
        )
        self.config.write_text(
            _CONFIG.format(
                protocols=protocols,
                root=root,
                instance=os.getpid(),
                pop3=self.pop3_port,
                pop3s=self.pop3s_port,
                lmtp=self.lmtp_port,
            )
            + submission
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0
        self._accounts = itertools.count(1)

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the instance's certificate."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def log(self) -> str:
        """Dovecot's log so far."""
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_lines(self, needle: str, timeout: float = 10.0) -> list[str]:
        """The log lines containing *needle*, waiting until there is one
        (dovecot's log process writes a moment after the event)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log().splitlines() if needle in line]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def start(self) -> None:
        """Start dovecot and wait until every port listens (or raise with its log)."""
        started = time.perf_counter()
        command = ["dovecot", "-F", "-c", str(self.config)]
        if shutil.which("setpriv"):  # util-linux: SIGTERM dovecot if this process dies
            command = ["setpriv", "--pdeathsig", "TERM", *command]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        ports = [self.pop3_port, self.pop3s_port, self.lmtp_port]
        if self.has_submission:
            ports.append(self.submission_port)
        deadline = started + STARTUP_TIMEOUT
        while ports:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read() if self.process.stderr else b""
                raise RuntimeError(
                    f"dovecot exited with {self.process.returncode}: "
                    f"{stderr.decode(errors='replace')}\n{self.log()}"
                )
            if time.perf_counter() > deadline:
                raise RuntimeError(
                    f"dovecot did not listen within {STARTUP_TIMEOUT}s\n{self.log()}"
                )
            if _listening(ports[0]):
                ports.pop(0)
            else:
                time.sleep(0.01)
        self.startup_seconds = time.perf_counter() - started

    def stop(self) -> float:
        """Stop the daemon (its children follow the master); return the seconds it took."""
        process, self.process = self.process, None
        if process is None:
            return 0.0
        started = time.perf_counter()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        if process.stderr:
            process.stderr.close()
        return time.perf_counter() - started

    @staticmethod
    def _user(n: int) -> str:
        return f"user{n}"

    def _home(self, name: str) -> Path:
        return self.root / "home" / name

    def add_account(self) -> Account:
        """An unused user with an empty Maildir."""
        n = next(self._accounts)
        if n > ACCOUNTS:
            raise RuntimeError(f"more than {ACCOUNTS} accounts: raise ACCOUNTS")
        return self._account(self._user(n))

    def small_quota_account(self) -> Account:
        """The user with a 4 KiB quota (its Maildir is emptied first)."""
        shutil.rmtree(self._home(SMALL_QUOTA_USER), ignore_errors=True)
        return self._account(SMALL_QUOTA_USER)

    def _account(self, name: str) -> Account:
        return Account(name, self.password, self._home(name), self.uid, self.gid)


def _skip_reason() -> str | None:
    if shutil.which("dovecot") is None:
        return "dovecot is not installed (Debian: dovecot-pop3d dovecot-lmtpd)"
    for service in ("pop3", "pop3-login", "lmtp"):
        if not _has_service(service):
            return f"dovecot's {service} service is missing (Debian: dovecot-pop3d dovecot-lmtpd)"
    if os.geteuid() != 0:
        return "a private dovecot needs root here (it drops privileges itself)"
    try:
        pwd.getpwnam(MAIL_USER)
        pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")
    except KeyError as exc:
        return f"missing system user {exc}"
    return None


@pytest.fixture(scope="module")
def dovecot_server() -> Iterator[Dovecot]:
    """One dovecot for the tests of a module (start ~20 ms, stop ~1 s)."""
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    trustme = pytest.importorskip("trustme")
    # Not under pytest's tmp dir: that is private to root, and dovecot's
    # mail processes (running as MAIL_USER) must reach the homes.
    root = Path(tempfile.mkdtemp(prefix="protomata-dovecot-"))
    try:
        root.chmod(0o755)
        (root / "home").mkdir(mode=0o755)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        with (root / "cert.pem").open("wb") as chain:
            for pem in cert.cert_chain_pems:
                chain.write(pem.bytes())
        cert.private_key_pem.write_to_path(str(root / "key.pem"))
        (root / "key.pem").chmod(0o600)
        ca.cert_pem.write_to_path(str(root / "ca.pem"))
        server = Dovecot(root, root / "ca.pem")
        with server.relay.running():
            try:
                server.start()
                yield server
            finally:
                server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Iterator[Dovecot]:
    """The module's dovecot, checked to be still running."""
    process = dovecot_server.process
    assert process is not None and process.poll() is None, dovecot_server.log()
    seen = len(dovecot_server.log())
    yield dovecot_server
    # Captured output is shown only when the test fails: then this log helps.
    print(f"--- dovecot log during the test ---\n{dovecot_server.log()[seen:]}")


@pytest.fixture
def account(dovecot: Dovecot) -> Account:
    """A fresh dovecot user with an empty Maildir."""
    return dovecot.add_account()
