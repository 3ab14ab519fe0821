"""protomata's POP3 servers (blocking, asyncio, trio) fetched from by real clients.

fetchmail, mpop and curl (Debian packages of the same names) talk to the
server on loopback: STLS with certificate checks, USER/PASS, APOP, SASL PLAIN
(mpop, curl), UIDL-based "only new mail", keep and delete.  Each client's
output is compared with what the Maildir held, byte for byte (fetchmail keeps
the CRLF wire form with ``no stripcr``; mpop stores LF line ends).
"""

from __future__ import annotations

import getpass
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from protomata.pop3._server import to_crlf
from protomata.sync import POP3Server, Timeouts

from ..mail_servers_async.conftest import ADAPTERS, Adapter

#: seconds a client run may take before the test fails
CLIENT_TIMEOUT = 60

USER, PASSWORD = "alice", "s3cret pw"

MSG_DOTS = (
    b"From: a@example.com\r\nSubject: dots\r\n\r\n"
    b".leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n. space\r\n"
)
MSG_LF = b"From: b@example.com\nSubject: bare LF\n\nline 1\n.dot line\nlast\n"
MSG_NO_EOL = b"From: c@example.com\r\nSubject: three\r\n\r\nb1\r\nb2"  # no final line end


class Served:
    """A running POP3 server over a Maildir, with the CA file that verifies it."""

    def __init__(self, port: int, maildir: Path, ca_file: Path) -> None:
        self.port = port
        self.maildir = maildir
        self.ca_file = ca_file
        self._names = 0

    def deliver(self, message: bytes) -> str:
        self._names += 1
        name = f"{1_700_000_000 + self._names}.M{self._names}P1.test"
        (self.maildir / "new" / name).write_bytes(message)
        return name

    def stored(self) -> list[bytes]:
        paths = [p for sub in ("new", "cur") for p in (self.maildir / sub).iterdir()]
        return [p.read_bytes() for p in sorted(paths)]


@pytest.fixture(params=["sync", *ADAPTERS])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """Our POP3 server with STLS, on the blocking, asyncio and trio adapters."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # fetchmail checks the common name (sslcommonname), mpop the address.
    ca.issue_cert("127.0.0.1", "localhost", common_name="localhost").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    settings: dict[str, Any] = {
        "maildir": maildir,
        "users": {USER: PASSWORD},
        "tls_context": context,
        "timeouts": Timeouts(10.0),
        # mpop sends its password setting as the XOAUTH2 token
        "authenticate_xoauth2": lambda user, token: (user, token) == (USER, PASSWORD),
    }
    running: AbstractContextManager[Any]
    if request.param == "sync":
        srv: Any = POP3Server("127.0.0.1", 0, **settings)
        running = srv.running()
    else:
        adapter = Adapter(request.param)
        srv = adapter.POP3Server("127.0.0.1", 0, **settings)
        running = adapter.serve(srv)
    with running:
        yield Served(srv.port, maildir, ca_file)


def _needs(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (Debian package {program})")


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)  # both clients refuse a readable password file
    return path


class Run:
    """What a client run left: its exit status, its log and the messages it delivered."""

    def __init__(self, returncode: int, log: str, delivered: list[bytes]) -> None:
        self.returncode = returncode
        self.log = log
        self.delivered = delivered

    @classmethod
    def of(cls, result: subprocess.CompletedProcess[str], delivered: list[bytes]) -> Run:
        return cls(result.returncode, result.stdout + result.stderr, delivered)


# -- fetchmail ------------------------------------------------------------------------


@contextmanager
def _outbox(tmp_path: Path, name: str) -> Iterator[Path]:
    out = tmp_path / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    yield out


def fetchmail(
    tmp_path: Path,
    served: Served,
    *,
    keep: bool = True,
    protocol: str = "POP3",
    password: str = PASSWORD,
    auth: str = "password",
) -> Run:
    """One fetchmail poll (STLS, certificate checked); the messages its MDA got."""
    _needs("fetchmail")
    home = tmp_path / "fetchmail-home"  # .fetchids (the UIDL memory) and the lock
    home.mkdir(exist_ok=True)
    with _outbox(tmp_path, "fetchmail-out") as out:
        rc = _private(
            tmp_path / "fetchmailrc",
            f"set no syslog\n"
            f"set invisible\n"
            f"poll localhost via 127.0.0.1 with protocol {protocol} port {served.port} uidl\n"
            f"  auth {auth}\n"
            f'  user "{USER}" there with password "{password}" is "{getpass.getuser()}" here\n'
            f"  options {'keep' if keep else 'no keep'} no rewrite no stripcr\n"
            f"  sslproto 'tls1.2+' sslcertck sslcertfile \"{served.ca_file}\"\n"
            f'  sslcommonname "localhost"\n'
            f'  mda "cat > {out}/msg.$$"\n',
        )
        result = subprocess.run(
            ["fetchmail", "-f", str(rc), "--nodetach", "-v"],
            env={**os.environ, "FETCHMAILHOME": str(home)},
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )
        return Run.of(result, [p.read_bytes() for p in out.iterdir()])


def test_fetchmail_stls_keep_and_uidl(tmp_path: Path, server: Served) -> None:
    messages = [MSG_DOTS, MSG_LF, MSG_NO_EOL]
    for message in messages:
        server.deliver(message)
    first = fetchmail(tmp_path, server)
    assert first.returncode == 0, first.log
    assert "POP3> STLS" in first.log and "POP3> USER alice" in first.log
    assert sorted(first.delivered) == sorted(to_crlf(m) for m in messages)
    assert server.stored() == messages  # kept, untouched
    again = fetchmail(tmp_path, server)
    assert again.returncode == 1, again.log  # 1: no new mail (UIDL remembered)
    assert again.delivered == []
    server.deliver(b"Subject: late\r\n\r\nnew one\r\n")
    third = fetchmail(tmp_path, server)
    assert third.returncode == 0, third.log
    assert third.delivered == [b"Subject: late\r\n\r\nnew one\r\n"]


def test_fetchmail_deletes_without_keep(tmp_path: Path, server: Served) -> None:
    server.deliver(MSG_DOTS)
    server.deliver(MSG_LF)
    run = fetchmail(tmp_path, server, keep=False)
    assert run.returncode == 0, run.log
    assert "POP3> DELE 1" in run.log and "POP3> DELE 2" in run.log
    assert sorted(run.delivered) == sorted([MSG_DOTS, to_crlf(MSG_LF)])
    assert server.stored() == []


def test_fetchmail_apop(tmp_path: Path, server: Served) -> None:
    server.deliver(MSG_DOTS)
    run = fetchmail(tmp_path, server, protocol="APOP", keep=False)
    assert run.returncode == 0, run.log
    assert "POP3> APOP alice" in run.log
    assert run.delivered == [MSG_DOTS]
    assert server.stored() == []


@pytest.mark.parametrize("auth", ["password", "cram-md5"])
def test_fetchmail_failed_login_keeps_mail(tmp_path: Path, server: Served, auth: str) -> None:
    server.deliver(MSG_DOTS)
    run = fetchmail(tmp_path, server, password="wrong", auth=auth, keep=False)
    assert run.returncode == 3, run.log  # 3: authentication failed
    assert run.delivered == []
    assert server.stored() == [MSG_DOTS]


def test_fetchmail_sasl_cram_md5(tmp_path: Path, server: Served) -> None:
    server.deliver(MSG_DOTS)
    run = fetchmail(tmp_path, server, auth="cram-md5", keep=False)
    assert run.returncode == 0, run.log
    assert "POP3> AUTH CRAM-MD5" in run.log
    assert run.delivered == [MSG_DOTS]
    assert server.stored() == []


def test_fetchmail_multi_megabyte_message(tmp_path: Path, server: Served) -> None:
    line = b".%06d " + b"y" * 90 + b"\r\n"
    message = b"Subject: big\r\n\r\n" + b"".join(
        line % i if i % 2 else line[1:] % i for i in range(30_000)
    )
    server.deliver(message)
    run = fetchmail(tmp_path, server, keep=False)
    assert run.returncode == 0, run.log
    assert run.delivered == [message]
    assert server.stored() == []


# -- mpop -------------------------------------------------------------------------------


def mpop(tmp_path: Path, served: Served, *, auth: str = "user", keep: bool = True) -> Run:
    """One mpop run (STLS, certificate checked) delivering to a Maildir."""
    _needs("mpop")
    with _outbox(tmp_path, "mpop-out") as out:
        for sub in ("new", "cur", "tmp"):
            (out / sub).mkdir()
        rc = _private(
            tmp_path / "mpoprc",
            f"account default\n"
            f"host 127.0.0.1\n"
            f"port {served.port}\n"
            f"user {USER}\n"
            f"password {PASSWORD}\n"
            f"auth {auth}\n"
            f"tls on\n"
            f"tls_starttls on\n"
            f"tls_trust_file {served.ca_file}\n"
            f"received_header off\n"
            f"delivery maildir {out}\n"
            f"keep {'on' if keep else 'off'}\n"
            f"uidls_file {tmp_path / 'mpop-uidls'}\n",
        )
        result = subprocess.run(
            ["mpop", "-C", str(rc), "--debug"],
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )
        delivered = [p.read_bytes() for p in sorted((out / "new").iterdir())]
        return Run.of(result, delivered)


def _lf(message: bytes) -> bytes:
    return to_crlf(message).replace(b"\r\n", b"\n")


@pytest.mark.parametrize("auth", ["user", "plain", "apop", "xoauth2"])
def test_mpop_logins_keep_and_uidl(tmp_path: Path, server: Served, auth: str) -> None:
    messages = [MSG_DOTS, MSG_LF, MSG_NO_EOL]
    for message in messages:
        server.deliver(message)
    first = mpop(tmp_path, server, auth=auth)
    assert first.returncode == 0, first.log
    assert "--> STLS" in first.log
    expected = {
        "user": "--> USER alice",
        "plain": "--> AUTH PLAIN",
        "apop": "--> APOP alice",
        "xoauth2": "--> AUTH XOAUTH2",
    }
    assert expected[auth] in first.log
    assert sorted(first.delivered) == sorted(_lf(m) for m in messages)
    assert server.stored() == messages
    again = mpop(tmp_path, server, auth=auth)
    assert again.returncode == 0, again.log
    assert again.delivered == []  # already fetched, by UIDL


def test_mpop_deletes_without_keep(tmp_path: Path, server: Served) -> None:
    server.deliver(MSG_DOTS)
    server.deliver(MSG_LF)
    run = mpop(tmp_path, server, keep=False)
    assert run.returncode == 0, run.log
    assert "--> DELE 1" in run.log and "--> DELE 2" in run.log
    assert sorted(run.delivered) == sorted([_lf(MSG_DOTS), _lf(MSG_LF)])
    assert server.stored() == []


# -- curl ---------------------------------------------------------------------------------


def curl(served: Served, path: str, *options: str) -> Run:
    """One curl POP3 request over STLS (``--ssl-reqd``), certificate checked."""
    _needs("curl")
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--verbose",
            "--max-time",
            str(CLIENT_TIMEOUT),
            "--ssl-reqd",
            "--cacert",
            str(served.ca_file),
            "--user",
            f"{USER}:{PASSWORD}",
            *options,
            f"pop3://127.0.0.1:{served.port}{path}",
        ],
        capture_output=True,
        timeout=CLIENT_TIMEOUT + 10,
        check=False,
    )
    # curl writes what it fetched to stdout and its protocol log to stderr
    return Run(result.returncode, result.stderr.decode(errors="replace"), [result.stdout])


@pytest.mark.parametrize(
    ("login_options", "expected_login"),
    [
        ((), "> AUTH CRAM-MD5"),  # curl picks the strongest mechanism offered
        (("--login-options", "AUTH=PLAIN"), "> AUTH PLAIN"),
        (("--login-options", "AUTH=LOGIN"), "> AUTH LOGIN"),
        (("--login-options", "AUTH=+APOP"), "> APOP alice"),
    ],
    ids=["sasl-cram-md5", "sasl-plain", "sasl-login", "apop"],
)
def test_curl_list_and_retr(
    server: Served, login_options: tuple[str, ...], expected_login: str
) -> None:
    server.deliver(MSG_DOTS)
    server.deliver(MSG_LF)
    listing = curl(server, "/", *login_options)
    assert listing.returncode == 0, listing.log
    assert expected_login in listing.log and "> STLS" in listing.log
    sizes = [len(to_crlf(m)) for m in (MSG_DOTS, MSG_LF)]
    assert listing.delivered == [b"1 %d\r\n2 %d\r\n" % tuple(sizes)]
    for number, message in enumerate((MSG_DOTS, MSG_LF), 1):
        got = curl(server, f"/{number}", *login_options)
        assert got.returncode == 0, got.log
        assert got.delivered == [to_crlf(message)]
    assert server.stored() == [MSG_DOTS, MSG_LF]


def test_curl_uidl_and_dele(server: Served) -> None:
    names = [server.deliver(MSG_DOTS), server.deliver(MSG_LF)]
    uidl = curl(server, "/", "--request", "UIDL")
    assert uidl.returncode == 0, uidl.log
    assert uidl.delivered == [f"1 {names[0]}\r\n2 {names[1]}\r\n".encode()]
    dele = curl(server, "/1", "--request", "DELE", "--head")
    assert dele.returncode == 0, dele.log
    assert "> DELE 1" in dele.log
    assert server.stored() == [MSG_LF]  # so curl ended with QUIT (its log omits it)
