"""Implicit TLS (SMTPS on 465, POP3S on 995) on the servers of every adapter,
against the standard library's SMTP_SSL and POP3_SSL and protomata's clients."""

from __future__ import annotations

import poplib
import smtplib
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from protomata.sync import POP3Client, SMTPClient
from protomata.sync import POP3Server as SyncPOP3Server
from protomata.sync import SMTPServer as SyncSMTPServer

from ..mail_servers_async.conftest import ADAPTERS, Adapter
from .conftest import TLS

TIMEOUT = 10.0
Serve = Callable[[Any], AbstractContextManager[Any]]


@contextmanager
def _serve_sync(server: Any) -> Iterator[Any]:
    with server.running():
        yield server


@pytest.fixture(params=["sync", *ADAPTERS])
def flavour(request: pytest.FixtureRequest) -> tuple[Any, Any, Serve]:
    """(SMTPServer class, POP3Server class, serve) of one adapter."""
    if request.param == "sync":
        return SyncSMTPServer, SyncPOP3Server, _serve_sync
    adapter = Adapter(request.param)
    return adapter.SMTPServer, adapter.POP3Server, adapter.serve


def test_smtps(flavour: tuple[Any, Any, Serve], tls: TLS, tmp_path: Path) -> None:
    smtp_server, _, serve = flavour
    maildir = tmp_path / "Maildir"
    server = smtp_server(
        maildir=maildir, users={"alice": "s3cret"}, tls_context=tls.server, implicit_tls=True
    )
    assert server.url.startswith("smtps://")
    with serve(server):
        with smtplib.SMTP_SSL(
            "127.0.0.1", server.port, context=tls.client, timeout=TIMEOUT
        ) as client:
            code, text = client.ehlo()
            assert code == 250
            assert b"STARTTLS" not in text  # already encrypted
            assert b"AUTH" in text  # offered at once: the connection is private
            client.login("alice", "s3cret")
            assert (
                client.sendmail("a@example.com", ["b@example.com"], b"Subject: 1\r\n\r\nx\r\n")
                == {}
            )
        with SMTPClient(
            "127.0.0.1",
            server.port,
            tls=True,
            verify=tls.client,
            timeout=TIMEOUT,
            username="alice",
            password="s3cret",
        ) as ours:
            assert ours.send_message(
                b"Subject: 2\r\n\r\ny\r\n", "a@example.com", "b@example.com"
            ).ok
        # Plaintext on the TLS port is no session.
        with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError, OSError)):
            smtplib.SMTP("127.0.0.1", server.port, timeout=2.0).ehlo()
    stored = sorted(p.read_bytes() for p in (maildir / "new").iterdir())
    assert len(stored) == 2
    assert all(b"with ESMTPSA" in message for message in stored)


def test_pop3s(flavour: tuple[Any, Any, Serve], tls: TLS, tmp_path: Path) -> None:
    _, pop3_server, serve = flavour
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.M1P1.host").write_bytes(b"Subject: s\n\nsecret\n")
    server = pop3_server(
        maildir=maildir, users={"alice": "s3cret"}, tls_context=tls.server, implicit_tls=True
    )
    assert server.url.startswith("pops://")
    with serve(server):
        client = poplib.POP3_SSL("127.0.0.1", server.port, context=tls.client, timeout=TIMEOUT)
        try:
            assert "STLS" not in client.capa()
            client.user("alice")
            client.pass_("s3cret")
            assert client.retr(1)[1] == [b"Subject: s", b"", b"secret"]
        finally:
            client.quit()
        with POP3Client("127.0.0.1", server.port, tls=True, verify=tls.client) as ours:
            ours.auth("CRAM-MD5", "alice", "s3cret")
            assert ours.retrieve(1) == b"Subject: s\r\n\r\nsecret\r\n"


def test_implicit_tls_needs_a_context(flavour: tuple[Any, Any, Serve], tmp_path: Path) -> None:
    smtp_server, pop3_server, _ = flavour
    with pytest.raises(ValueError, match="implicit_tls needs a tls_context"):
        smtp_server(maildir=tmp_path, implicit_tls=True)
    with pytest.raises(ValueError, match="implicit_tls needs a tls_context"):
        pop3_server(maildir=tmp_path, users={}, implicit_tls=True)


@pytest.mark.parametrize("command", ["smtp", "pop3"])
def test_cli_tls_needs_a_certificate(command: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "protomata",
            "serve",
            command,
            "--tls",
            "--port",
            "0",
            "--maildir",
            str(tmp_path),
            "--user",
            "a:b",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--tls needs --tls-cert and --tls-key" in result.stderr
