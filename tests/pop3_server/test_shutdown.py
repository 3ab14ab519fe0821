"""A graceful server shutdown thrown into the pure POP3 session."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from protomata._core._ops import ServerShutdown
from protomata.sync._pop3server import POP3Server
from tests.mail_servers_async.conftest import ADAPTERS, Adapter

from .test_server import files, make_maildir
from .test_session import Driver

GOODBYE = b"-ERR [SYS/TEMP] server shutting down\r\n"


@pytest.mark.parametrize(
    "before",
    [
        [],  # AUTHORIZATION, right after the greeting
        [b"USER alice\r\n"],  # between USER and PASS
        [b"AUTH PLAIN\r\n"],  # waiting for the SASL response
        [b"USER alice\r\nPASS pw\r\nDELE 1\r\nDELE 2\r\n"],  # TRANSACTION, marks set
        [b"USER alice\r\nPASS pw\r\nDELE 1\r\nRSET\r\n"],
    ],
)
def test_shutdown_says_goodbye_and_deletes_nothing(before: list[bytes]) -> None:
    d = Driver([*before, ServerShutdown])
    out = d.run()
    assert out.endswith(GOODBYE)
    assert out.count(b"-ERR [SYS/TEMP]") == 1
    assert not [c for c in d.calls if c[0] == "delete"]
    assert d.closed


def test_quit_before_shutdown_still_commits() -> None:
    """Only the UPDATE state, entered on QUIT, removes messages."""
    d = Driver([b"USER alice\r\nPASS pw\r\nDELE 2\r\nQUIT\r\n", ServerShutdown])
    out = d.run()
    assert ("delete", ["u2"]) in d.calls
    assert GOODBYE not in out and out.endswith(b"+OK bye (1 messages deleted)\r\n")


def test_pipelined_replies_are_flushed_before_the_goodbye() -> None:
    d = Driver([b"USER alice\r\nPASS pw\r\nSTAT\r\nNOOP\r\n", ServerShutdown])
    out = d.run()
    assert out.endswith(b"+OK 2 40\r\n+OK\r\n" + GOODBYE)


# -- end to end: each adapter tells an idle client before it closes ------------


def _idle_client_is_told(port: int, stop: Callable[[], None]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"+OK")
        sock.sendall(b"USER alice\r\nPASS s3cret\r\nDELE 1\r\n")
        for _ in range(3):
            assert reader.readline().startswith(b"+OK")
        stop()
        return reader.read()  # until the server closes


def test_blocking_server_shutdown(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    before = files(maildir)
    srv = POP3Server("127.0.0.1", 0, maildir=maildir, users={"alice": "s3cret"}, grace=5.0)
    running = srv.running()
    running.__enter__()
    try:
        rest = _idle_client_is_told(srv.port, lambda: running.__exit__(None, None, None))
    finally:
        srv.shutdown(0)
    assert rest == GOODBYE
    assert files(maildir) == before


@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_async_server_shutdown(adapter_name: str, tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    before = files(maildir)
    adapter = Adapter(adapter_name)
    server = adapter.POP3Server(
        "127.0.0.1", 0, maildir=maildir, users={"alice": "s3cret"}, grace=5.0
    )
    serving = adapter.serve(server)
    served = serving.__enter__()
    stopped: list[bool] = []

    def stop() -> None:
        stopped.append(True)
        serving.__exit__(None, None, None)

    try:
        rest = _idle_client_is_told(served.port, stop)
    finally:
        if not stopped:
            serving.__exit__(None, None, None)
    assert rest == GOODBYE
    assert files(maildir) == before
