"""Graceful shutdown of the mail servers on every adapter.

A session waiting for its next command when the server stops is told so
in the protocol's own words (SMTP ``421 4.3.2``, POP3 ``-ERR``) before the
connection closes; a POP3 session ended that way commits no deletion, and a
message acknowledged before the shutdown is on disk.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from protomata.sync import POP3Server as SyncPOP3Server
from protomata.sync import SMTPServer as SyncSMTPServer

from .conftest import ADAPTERS, Adapter

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


class LineClient:
    """A raw client: send lines, read CRLF lines, see the end of the stream."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")

    def line(self) -> bytes:
        return self.file.readline()

    def command(self, text: bytes) -> bytes:
        self.sock.sendall(text + b"\r\n")
        return self.line()

    def smtp_reply(self) -> list[bytes]:
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return lines

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_smtp_idle_session_gets_421_and_acknowledged_mail_is_kept(
    flavour: tuple[Any, Any, Serve], tmp_path: Path
) -> None:
    smtp_server, _, serve = flavour
    maildir = tmp_path / "Maildir"
    server = smtp_server(maildir=maildir)
    with serve(server):
        client = LineClient(server.port)
        assert client.line().startswith(b"220 ")
        client.sock.sendall(b"EHLO test\r\n")
        assert client.smtp_reply()[-1].startswith(b"250 ")
        assert client.command(b"MAIL FROM:<a@example.com>").startswith(b"250")
        assert client.command(b"RCPT TO:<b@example.com>").startswith(b"250")
        assert client.command(b"DATA").startswith(b"354")
        client.sock.sendall(b"Subject: kept\r\n\r\nbody\r\n.\r\n")
        assert client.line().startswith(b"250")
        # The session now waits for the next command; the server stops.
    goodbye = client.line()
    assert goodbye.startswith(b"421 4.3.2 "), goodbye
    assert client.line() == b""  # then the connection is closed
    client.close()
    stored = list((maildir / "new").iterdir())
    assert len(stored) == 1
    assert stored[0].read_bytes().endswith(b"Subject: kept\n\nbody\n")


def test_pop3_idle_session_gets_err_and_commits_nothing(
    flavour: tuple[Any, Any, Serve], tmp_path: Path
) -> None:
    _, pop3_server, serve = flavour
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1000.M1P1.host").write_bytes(b"Subject: one\n\nbody\n")
    server = pop3_server(maildir=maildir, users={"alice": "s3cret"})
    with serve(server):
        client = LineClient(server.port)
        assert client.line().startswith(b"+OK")
        assert client.command(b"USER alice").startswith(b"+OK")
        assert client.command(b"PASS s3cret").startswith(b"+OK")
        assert client.command(b"DELE 1").startswith(b"+OK")
        # Marked deleted, but no QUIT: the server stops.
    goodbye = client.line()
    assert goodbye.startswith(b"-ERR "), goodbye
    assert client.line() == b""
    client.close()
    remaining = [p.name for sub in ("new", "cur") for p in (maildir / sub).iterdir()]
    assert len(remaining) == 1  # the deletion was not committed
