"""A handler's own password check, and refusing mail before AUTH (a
submission server), on every adapter, with smtplib as the client."""

from __future__ import annotations

import smtplib
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from protomata.sync import SMTPServer as SyncSMTPServer

from ..mail_servers_async.conftest import ADAPTERS, Adapter

TIMEOUT = 10.0
Serve = Callable[[Any], AbstractContextManager[Any]]
MESSAGE = b"Subject: hi\r\n\r\nbody\r\n"


@contextmanager
def _serve_sync(server: Any) -> Iterator[Any]:
    with server.running():
        yield server


@pytest.fixture(params=["sync", *ADAPTERS])
def flavour(request: pytest.FixtureRequest) -> tuple[str, Any, Serve]:
    if request.param == "sync":
        return "sync", SyncSMTPServer, _serve_sync
    adapter = Adapter(request.param)
    return request.param, adapter.SMTPServer, adapter.serve


class Directory:
    """A handler whose password check is its own (here: a dict it keeps)."""

    def __init__(self) -> None:
        self.checked: list[tuple[str, str]] = []

    def authenticate(self, username: str, password: str) -> bool:
        self.checked.append((username, password))
        return (username, password) == ("carol", "from-the-db")


class AsyncDirectory(Directory):
    async def authenticate(self, username: str, password: str) -> bool:  # type: ignore[override]
        return Directory.authenticate(self, username, password)


@pytest.mark.parametrize("handler_class", [Directory, AsyncDirectory])
def test_handler_checks_passwords(
    flavour: tuple[str, Any, Serve], handler_class: type[Directory], tmp_path: Path
) -> None:
    name, smtp_server, serve = flavour
    handler = handler_class()
    if name == "sync" and handler_class is AsyncDirectory:
        # The blocking server cannot await: the check fails (454), and a
        # coroutine is never mistaken for a yes.
        server = smtp_server(handler, maildir=tmp_path / "Maildir")
        with serve(server), smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client:
            client.ehlo()
            with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
                client.login("carol", "from-the-db")
            assert failure.value.smtp_code == 454
        return
    server = smtp_server(handler, maildir=tmp_path / "Maildir")
    with serve(server), smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client:
        client.ehlo()
        mechanisms = client.esmtp_features["auth"].split()
        assert sorted(mechanisms) == ["LOGIN", "PLAIN"]  # no plaintext passwords: no CRAM-MD5
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("carol", "guess")
        client.login("carol", "from-the-db")
        assert client.sendmail("c@example.com", ["d@example.com"], MESSAGE) == {}
    # smtplib tries PLAIN, then LOGIN, with the wrong password; then logs in.
    assert set(handler.checked[:-1]) == {("carol", "guess")}
    assert handler.checked[-1] == ("carol", "from-the-db")


def test_auth_required_refuses_mail_before_login(
    flavour: tuple[str, Any, Serve], tmp_path: Path
) -> None:
    _, smtp_server, serve = flavour
    maildir = tmp_path / "Maildir"
    server = smtp_server(maildir=maildir, users={"dave": "pw"}, auth_required=True)
    with serve(server), smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert client.mail("d@example.com") == (530, b"5.7.0 Authentication required")
        client.login("dave", "pw")
        assert client.sendmail("d@example.com", ["e@example.com"], MESSAGE) == {}
    assert len(list((maildir / "new").iterdir())) == 1


def test_auth_required_needs_a_way_to_log_in(
    flavour: tuple[str, Any, Serve], tmp_path: Path
) -> None:
    _, smtp_server, _ = flavour
    with pytest.raises(ValueError, match="auth_required needs users"):
        smtp_server(maildir=tmp_path, auth_required=True)


def test_cli_auth_required_needs_users(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "protomata",
            "serve",
            "smtp",
            "--auth-required",
            "--port",
            "0",
            "--maildir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "--auth-required needs --user" in result.stderr
