"""A private postfix on loopback, started by the tests in this folder.

The instance lives in a throwaway directory (``/tmp/protomata-postfix-*``;
not under pytest's ``tmp_path``, whose 0700 parents postfix's unprivileged
daemons cannot enter) holding its ``main.cf``/``master.cf``, queue, data
directory, log file (``maillog``, written by ``postlogd``) and mailboxes.
It never reads ``/etc/postfix/main.cf`` and never touches the system
instance: it is started with ``postfix -c DIR start`` and stopped with
``postfix -c DIR stop`` (then SIGKILL if ``master`` lingers), and the
directory is removed when the module's tests end, whatever their outcome.

What it is set up for:

* its SMTP server listens on ``127.0.0.1:port`` and offers PIPELINING,
  SIZE, 8BITMIME, SMTPUTF8, CHUNKING, DSN and STARTTLS (a trustme
  certificate for ``localhost``/``127.0.0.1``); on ``sasl_port`` it also
  offers AUTH once TLS is on, checking passwords with the dovecot auth
  service a test starts on ``sasl_socket`` (``smtpd_sasl_type = dovecot``);
* ``virt.test`` is a virtual mailbox domain delivered by ``virtual(8)`` to
  ``mail/<user>/Maildir/`` (owned by ``nobody``; no system users needed),
  with the users of :data:`USERS`; any other ``@virt.test`` recipient is
  refused with 550 at RCPT;
* ``relay.test`` is relayed by postfix's SMTP client to
  ``127.0.0.1:relay_port`` and must use verified TLS there (``secure``,
  matching ``localhost``, trusting the trustme CA): the port where a test
  runs a protomata server;
* ``lmtp.test`` goes by LMTP, in plain text, to ``127.0.0.1:lmtp_port``;
* ``auth.test``, ``auth-plain.test`` and ``auth-login.test`` are relayed
  like ``relay.test`` to ``127.0.0.1:auth_port``, where postfix logs in
  with SASL as :data:`SASL_USER` (any mechanism it likes, PLAIN only, LOGIN
  only: Cyrus SASL client plugins from ``libsasl2-modules``).

Needs root (``master`` starts as root and drops to the ``postfix`` user)
and the Debian package ``postfix``; otherwise the tests are skipped with
the reason.  On a failure, pytest shows what postfix logged during the test
("Captured stdout teardown").
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Mailbox users of the ``virt.test`` domain: address -> Maildir under ``mail/``.
USERS = {
    "alice@virt.test": "alice/Maildir/",
    "bob@virt.test": "bob/Maildir/",
    "carol@virt.test": "carol/Maildir/",
    "δοκιμή@virt.test": "utf8/Maildir/",
}

#: The user name and password postfix's SMTP client logs in with at ``auth_port``.
SASL_USER = ("postfix-relay", "s3cret pass")

#: The largest message postfix accepts (``message_size_limit``), in bytes.
MESSAGE_SIZE_LIMIT = 200_000

_SBIN = "/usr/sbin:/usr/bin:/sbin:/bin"

# Every service runs without chroot, so nothing needs copying into the queue.
_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{sasl_port} inet n - n - - smtpd
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path={sasl_socket}
  -o smtpd_tls_auth_only=yes
pickup     unix n - n 60 1 pickup
cleanup    unix n - n - 0 cleanup
qmgr       unix n - n 300 1 qmgr
tlsmgr     unix - - n 1000? 1 tlsmgr
rewrite    unix - - n - - trivial-rewrite
bounce     unix - - n - 0 bounce
defer      unix - - n - 0 bounce
trace      unix - - n - 0 bounce
verify     unix - - n - 1 verify
flush      unix n - n 1000? 0 flush
proxymap   unix - - n - - proxymap
showq      unix n - n - - showq
error      unix - - n - - error
retry      unix - - n - - error
discard    unix - - n - - discard
smtp       unix - - n - - smtp
relay      unix - - n - - smtp
smtp-plain unix - - n - - smtp -o smtp_sasl_mechanism_filter=plain
smtp-login unix - - n - - smtp -o smtp_sasl_mechanism_filter=login
lmtp       unix - - n - - lmtp
virtual    unix - n n - - virtual
anvil      unix - - n - 1 anvil
scache     unix - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtputf8_enable = yes
message_size_limit = {size_limit}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_error_sleep_time = 0
smtpd_timeout = 30s
smtp_dns_support_level = disabled
smtp_connect_timeout = 5s
smtp_connection_cache_on_demand = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
virtual_mailbox_domains = virt.test
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{etc}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
relay_domains = relay.test, lmtp.test, auth.test, auth-plain.test, auth-login.test
transport_maps = texthash:{etc}/transport
smtpd_tls_chain_files = {etc}/server.pem
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtp_tls_security_level = may
smtp_tls_CAfile = {etc}/ca.pem
smtp_tls_policy_maps = texthash:{etc}/tls_policy
smtp_tls_loglevel = 1
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = texthash:{etc}/sasl_passwd
smtp_sasl_security_options = noanonymous
smtp_sasl_tls_security_options = noanonymous
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def skip_reason() -> str | None:
    """Why a private postfix cannot run here, or None when it can."""
    if shutil.which("postfix", path=_SBIN) is None:
        return "postfix is not installed (Debian: apt-get install postfix)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "the postfix system user is missing (install the Debian package postfix)"
    if os.geteuid() != 0:
        return "a private postfix needs root: its master process starts as root"
    return None


class Postfix:
    """A private postfix instance under *root* (see the module docstring)."""

    def __init__(self, root: Path, ca: Any) -> None:
        self.root = root
        self.etc = root / "etc"
        self.mail = root / "mail"
        self.log_file = root / "maillog"
        self.ca_file = self.etc / "ca.pem"
        #: postfix's SMTP server port on 127.0.0.1
        self.port = _free_port()
        #: a second SMTP server port offering AUTH after STARTTLS; it asks
        #: a dovecot auth service listening on :attr:`sasl_socket`
        self.sasl_port = _free_port()
        self.sasl_socket = root / "dovecot-auth"
        #: where mail for ``relay.test`` goes (a test runs its server here)
        self.relay_port = _free_port()
        #: where mail for ``lmtp.test`` goes over LMTP (plain TCP)
        self.lmtp_port = _free_port()
        #: where mail for ``auth*.test`` goes (over TLS, with SASL)
        self.auth_port = _free_port()
        #: seconds from ``postfix start`` until the SMTP port greeted
        self.start_seconds = 0.0
        #: where the current test's part of the log begins (see :meth:`wait_for_log`)
        self.log_mark = 0
        self._ca = ca
        self._env = {**os.environ, "PATH": _SBIN + ":" + os.environ.get("PATH", "")}

    def write_config(self) -> None:
        """Write ``etc/``, the maps, the certificate and the mailbox base."""
        self.etc.mkdir(parents=True)
        (self.root / "queue").mkdir()
        data = self.root / "data"
        data.mkdir()
        postfix_user = pwd.getpwnam("postfix")
        os.chown(data, postfix_user.pw_uid, postfix_user.pw_gid)
        nobody = pwd.getpwnam("nobody")
        self.mail.mkdir()
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        cert = self._ca.issue_cert("localhost", "127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(str(self.etc / "server.pem"))
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        (self.etc / "vmailbox").write_text(
            "".join(f"{address} {path}\n" for address, path in USERS.items()), "utf-8"
        )
        (self.etc / "transport").write_text(
            f"relay.test smtp:[127.0.0.1]:{self.relay_port}\n"
            f"lmtp.test lmtp:[127.0.0.1]:{self.lmtp_port}\n"
            f"auth.test smtp:[127.0.0.1]:{self.auth_port}\n"
            f"auth-plain.test smtp-plain:[127.0.0.1]:{self.auth_port}\n"
            f"auth-login.test smtp-login:[127.0.0.1]:{self.auth_port}\n"
        )
        (self.etc / "tls_policy").write_text(
            f"[127.0.0.1]:{self.relay_port} secure match=localhost\n"
            f"[127.0.0.1]:{self.auth_port} secure match=localhost\n"
        )
        (self.etc / "sasl_passwd").write_text(
            f"[127.0.0.1]:{self.auth_port} {SASL_USER[0]}:{SASL_USER[1]}\n"
        )
        (self.etc / "master.cf").write_text(
            _MASTER_CF.format(
                port=self.port, sasl_port=self.sasl_port, sasl_socket=self.sasl_socket
            )
        )
        (self.etc / "main.cf").write_text(
            _MAIN_CF.format(
                root=self.root,
                etc=self.etc,
                uid=nobody.pw_uid,
                gid=nobody.pw_gid,
                size_limit=MESSAGE_SIZE_LIMIT,
            )
        )

    def command(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``postfix -c etc ARGS``."""
        return subprocess.run(
            ["postfix", "-c", str(self.etc), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env,
            check=False,
        )

    def start(self, timeout: float = 20.0) -> float:
        """Start the instance; return the seconds until its SMTP port answered."""
        began = time.monotonic()
        result = self.command("start", timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"postfix start failed:\n{result.stderr}\n{self.log_text()}")
        deadline = began + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                    sock.settimeout(max(0.1, deadline - time.monotonic()))
                    if sock.recv(512).startswith(b"220 "):
                        return time.monotonic() - began
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix did not answer in {timeout} s:\n{self.log_text()}")
            time.sleep(0.05)

    def _master_pid(self) -> int | None:
        try:
            return int((self.root / "queue" / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the instance: ``postfix stop``, then SIGKILL if master lingers."""
        pid = self._master_pid()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.command("stop", timeout=timeout)
        if pid is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    # -- what happened ---------------------------------------------------

    def log_text(self) -> str:
        """Everything postfix logged so far."""
        try:
            return self.log_file.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """Wait until a line logged during this test matches *pattern*; return the match."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text()[self.log_mark :])
            if match is not None:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"postfix never logged {pattern!r}:\n{self.log_text()}")
            time.sleep(0.05)

    def queue_id(self, message_id: str, timeout: float = 15.0) -> str:
        """The queue id of the message whose ``Message-ID`` is ``<message_id>``."""
        match = self.wait_for_log(rf"(\w+): message-id=<{re.escape(message_id)}>", timeout)
        return match.group(1)

    def log_for(self, queue_id: str) -> list[str]:
        """The log lines about one queued message."""
        return [line for line in self.log_text().splitlines() if f" {queue_id}: " in line]

    def wait_until_done(self, message_id: str, timeout: float = 15.0) -> list[str]:
        """Wait until postfix removed the message from its queue; return its log lines."""
        queue_id = self.queue_id(message_id, timeout)
        self.wait_for_log(rf" {queue_id}: removed$", timeout)
        return self.log_for(queue_id)

    def mailbox(self, address: str) -> list[bytes]:
        """The messages delivered to a ``virt.test`` user, oldest first."""
        new = self.mail / USERS[address] / "new"
        if not new.is_dir():
            return []
        paths = sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p.read_bytes() for p in paths]

    def wait_for_mail(self, address: str, token: bytes, timeout: float = 15.0) -> bytes:
        """Wait for the message containing *token* in *address*'s Maildir."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.mailbox(address) if token in m]
            if found:
                assert len(found) == 1, f"{len(found)} messages contain {token!r}"
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no message with {token!r} for {address}:\n{self.log_text()}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def postfix_instance(tls_ca: Any) -> Iterator[Postfix]:
    """One private postfix for a test module (started in about a second)."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="protomata-postfix-"))
    root.chmod(0o755)  # postfix's daemons run as the postfix user
    instance = Postfix(root, tls_ca)
    try:
        instance.write_config()
        instance.start_seconds = instance.start()
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postfix(postfix_instance: Postfix) -> Iterator[Postfix]:
    """The module's postfix; prints what it logged during the test (shown on failure)."""
    postfix_instance.log_mark = len(postfix_instance.log_text())
    yield postfix_instance
    print(postfix_instance.log_text()[postfix_instance.log_mark :])
