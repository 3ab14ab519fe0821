"""``send-mail`` and ``fetch-mail`` run as ``python -m protomata.cli._mail``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protomata.smtp import Reply
from protomata.sync import POP3Server, SMTPServer, Timeouts
from protomata.sync._maildir import Maildir

from .conftest import TLS, TLSProxy

MESSAGE = b"From: a@x\nTo: b@y\nSubject: cli\n\n.dot\nbody\n"


def mail_cli(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "protomata.cli._mail", *args],
        check=False,
        input=stdin,
        capture_output=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def files(maildir: Path) -> list[bytes]:
    new = maildir / "new"
    return [p.read_bytes() for p in sorted(new.iterdir())] if new.exists() else []


class RefuseBob:
    def rcpt_to(self, address: str, params: Any) -> Reply | None:
        return Reply(550, ["no"]) if address == "bob@y" else None


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SMTPServer]:
    srv = SMTPServer(RefuseBob(), maildir=tmp_path / "sink", timeouts=Timeouts(5.0))
    with srv.running():
        yield srv


def test_send_file_with_a_refused_recipient(smtp: SMTPServer, tmp_path: Path) -> None:
    path = tmp_path / "msg.eml"
    path.write_bytes(MESSAGE)
    server = f"127.0.0.1:{smtp.port}"
    result = mail_cli(
        "send-mail", "--server", server, "--from", "a@x", "--to", "bob@y", "--to", "c@z", str(path)
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.decode().splitlines() == ["bob@y: refused: 550 no", "c@z: accepted"]
    [content] = files(tmp_path / "sink")
    assert content.endswith(MESSAGE)


def test_send_stdin_all_accepted(smtp: SMTPServer, tmp_path: Path) -> None:
    server = f"127.0.0.1:{smtp.port}"
    result = mail_cli(
        "send-mail", "--server", server, "--from", "a@x", "--to", "c@z", stdin=MESSAGE
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"c@z: accepted\n"
    assert files(tmp_path / "sink")[0].endswith(MESSAGE)


def test_send_all_refused(smtp: SMTPServer, tmp_path: Path) -> None:
    server = f"127.0.0.1:{smtp.port}"
    result = mail_cli("send-mail", "--server", server, "--from", "a", "--to", "bob@y", stdin=b"x\n")
    assert result.returncode == 1
    assert result.stdout == b"bob@y: refused: 550 no\n"
    assert files(tmp_path / "sink") == []


def test_send_failures_and_usage() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once closed
    result = mail_cli("send-mail", "--server", f"127.0.0.1:{port}", "--from", "a", "--to", "b")
    assert result.returncode == 1
    assert b"protomata: error:" in result.stderr
    assert mail_cli("send-mail", "--server", "nohost", "--from", "a", "--to", "b").returncode == 2
    assert mail_cli("send-mail", "--server", "h:1", "--to", "b").returncode == 2
    assert mail_cli("send-mail", "--server", "h:1", "--from", "a", "--to", "b",
                    "--tls", "--starttls").returncode == 2  # fmt: skip


def test_send_starttls(tmp_path: Path, tls: TLS) -> None:
    srv = SMTPServer(maildir=tmp_path / "sink", tls_context=tls.server, timeouts=Timeouts(5.0))
    with srv.running():
        args = ["send-mail", "--server", f"127.0.0.1:{srv.port}", "--from", "a", "--to", "b"]
        untrusted = mail_cli(*args, "--starttls", stdin=MESSAGE)
        assert untrusted.returncode == 1
        assert b"TLS" in untrusted.stderr or b"certificate" in untrusted.stderr
        trusted = mail_cli(
            *args, "--starttls", stdin=MESSAGE, env={"SSL_CERT_FILE": str(tls.ca_file)}
        )
        assert trusted.returncode == 0, trusted.stderr
        insecure = mail_cli(*args, "--starttls", "--insecure", stdin=MESSAGE)
        assert insecure.returncode == 0, insecure.stderr
    stored = files(tmp_path / "sink")
    assert len(stored) == 2
    assert all(b"ESMTPS" in content for content in stored)


# -- fetch-mail ---------------------------------------------------------------------


@pytest.fixture
def server_box(tmp_path: Path) -> Path:
    box = Maildir(tmp_path / "server")
    box.deliver(b"Subject: one\n\n.dot\none\n")
    box.deliver(b"Subject: two\n\ntwo\n")
    return Path(box.path)


@pytest.fixture
def pop3(server_box: Path) -> Iterator[POP3Server]:
    srv = POP3Server(
        "127.0.0.1", 0, maildir=server_box, users={"al ice": "p@ss"}, timeouts=Timeouts(5.0)
    )
    with srv.running():
        yield srv


def test_fetch_keeps_messages_on_the_server(
    pop3: POP3Server, server_box: Path, tmp_path: Path
) -> None:
    url = f"pop3://al%20ice:p%40ss@127.0.0.1:{pop3.port}/"
    local = tmp_path / "local"
    result = mail_cli("fetch-mail", url, "--maildir", str(local))
    assert result.returncode == 0, result.stderr
    assert sorted(files(local)) == sorted(files(server_box))
    assert sorted(files(local)) == [b"Subject: one\n\n.dot\none\n", b"Subject: two\n\ntwo\n"]
    assert b"2 messages" in result.stdout


def test_fetch_and_delete(pop3: POP3Server, server_box: Path, tmp_path: Path) -> None:
    url = f"pop3://al%20ice:p%40ss@127.0.0.1:{pop3.port}/"
    local = tmp_path / "local"
    result = mail_cli("fetch-mail", url, "--maildir", str(local), "--delete")
    assert result.returncode == 0, result.stderr
    assert len(files(local)) == 2
    assert files(server_box) == []
    again = mail_cli("fetch-mail", url, "--maildir", str(local))
    assert again.returncode == 0
    assert len(files(local)) == 2


def test_fetch_failures(pop3: POP3Server, server_box: Path, tmp_path: Path) -> None:
    local = str(tmp_path / "local")
    wrong = mail_cli("fetch-mail", f"pop3://al%20ice:no@127.0.0.1:{pop3.port}/", "--maildir", local)
    assert wrong.returncode == 1
    assert b"protomata: error:" in wrong.stderr
    assert len(files(server_box)) == 2
    assert mail_cli("fetch-mail", "http://u:p@h/", "--maildir", local).returncode == 2
    assert mail_cli("fetch-mail", "pop3://h/", "--maildir", local).returncode == 2


def test_fetch_stls(server_box: Path, tmp_path: Path, tls: TLS) -> None:
    srv = POP3Server(
        "127.0.0.1",
        0,
        maildir=server_box,
        users={"u": "p"},
        tls_context=tls.server,
        timeouts=Timeouts(5.0),
    )
    local = tmp_path / "local"
    with srv.running():
        url = f"pop3://u:p@127.0.0.1:{srv.port}/"
        untrusted = mail_cli("fetch-mail", url, "--maildir", str(local), "--stls")
        assert untrusted.returncode == 1
        env = {"SSL_CERT_FILE": str(tls.ca_file)}
        trusted = mail_cli("fetch-mail", url, "--maildir", str(local), "--stls", env=env)
        assert trusted.returncode == 0, trusted.stderr
    assert len(files(local)) == 2


def test_fetch_pop3s(pop3: POP3Server, tmp_path: Path, tls: TLS) -> None:
    proxy = TLSProxy(tls.server, pop3.port)
    local = tmp_path / "local"
    try:
        url = f"pop3s://al%20ice:p%40ss@127.0.0.1:{proxy.port}/"
        env = {"SSL_CERT_FILE": str(tls.ca_file)}
        stls_too = mail_cli("fetch-mail", url, "--maildir", str(local), "--stls", env=env)
        assert stls_too.returncode == 2
        result = mail_cli("fetch-mail", url, "--maildir", str(local), env=env)
        assert result.returncode == 0, result.stderr
    finally:
        proxy.close()
    assert len(files(local)) == 2


def test_send_with_auth(tmp_path: Path, tls: TLS) -> None:
    srv = SMTPServer(
        maildir=tmp_path / "sink", tls_context=tls.server, users={"u": "p"}, timeouts=Timeouts(5)
    )
    env = {"SSL_CERT_FILE": str(tls.ca_file)}
    with srv.running():
        args = ["send-mail", "--server", f"127.0.0.1:{srv.port}", "--from", "a", "--to", "b"]
        args += ["--starttls", "--user", "u"]
        ok = mail_cli(*args, "--password", "p", stdin=MESSAGE, env=env)
        assert ok.returncode == 0, ok.stderr
        bad = mail_cli(*args, "--password", "x", stdin=MESSAGE, env=env)
        assert bad.returncode == 1
        assert b"535" in bad.stderr
        assert mail_cli(*args, stdin=MESSAGE, env=env).returncode == 2
    assert len(files(tmp_path / "sink")) == 1
