"""The asyncio and trio POP3 servers over a Maildir, driven by poplib from the test thread."""

from __future__ import annotations

import poplib
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest

from protomata.pop3._server import to_crlf
from protomata.sync._maildir import MaildirMailbox

from .conftest import Adapter

TIMEOUT = 5.0

MSG1 = b"From: a@example.com\nSubject: one\n\nline 1\n.dot line\n..two dots\nlast\n"
MSG2 = b"From: b@example.com\r\nSubject: two\r\n\r\nalready crlf\r\n"
MSG3 = b"Subject: three\n\nb1\nb2"


def make_maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "1000.M1P1.host").write_bytes(MSG1)
    (root / "new" / "1001.M2P1.host").write_bytes(MSG2)
    (root / "cur" / "1002.M3P1.host:2,S").write_bytes(MSG3)
    return root


def files(maildir: Path) -> list[str]:
    return sorted(p.name for sub in ("new", "cur") for p in (maildir / sub).iterdir())


def login(port: int, password: str = "s3cret") -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", port, timeout=TIMEOUT)
    client.user("alice")
    client.pass_(password)
    return client


def test_stat_uidl_retr_dele_quit(
    adapter: Adapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    for method in ("messages", "read", "delete"):
        original = getattr(MaildirMailbox, method)

        def recording(self: MaildirMailbox, *args: object, _original: object = original) -> object:
            threads.append(threading.current_thread())
            return _original(self, *args)  # type: ignore[operator]

        monkeypatch.setattr(MaildirMailbox, method, recording)
    maildir = make_maildir(tmp_path / "Maildir")
    server = adapter.POP3Server(
        maildir=maildir, users={"alice": "s3cret"}, timeouts=adapter.Timeouts(TIMEOUT)
    )
    with adapter.serve(server):
        assert server.url == f"pop://127.0.0.1:{server.port}/"
        client = login(server.port)
        sizes = [len(to_crlf(m)) for m in (MSG1, MSG2, MSG3)]
        assert client.stat() == (3, sum(sizes))
        _, listing, _ = client.uidl()
        assert listing == [b"1 1000.M1P1.host", b"2 1001.M2P1.host", b"3 1002.M3P1.host"]
        _, lines, octets = client.retr(1)
        assert lines == MSG1.rstrip(b"\n").split(b"\n")  # dots unstuffed by poplib
        assert octets >= sizes[0]
        assert client.dele(1).startswith(b"+OK")
        assert client.dele(3).startswith(b"+OK")
        assert client.stat()[0] == 1
        assert len(files(maildir)) == 3  # nothing is removed before QUIT
        assert client.quit().startswith(b"+OK")
        assert files(maildir) == ["1001.M2P1.host"]
        client = login(server.port)
        try:
            assert client.stat() == (1, sizes[1])
            assert client.uidl(1) == b"+OK 1 1001.M2P1.host"
        finally:
            client.quit()
    assert len(threads) == 4  # list, read, delete, list again
    assert adapter.loop_thread is not None and adapter.off_loop(threads)


def test_dropped_connection_deletes_nothing_and_releases_lock(
    adapter: Adapter, tmp_path: Path
) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    server = adapter.POP3Server(
        maildir=maildir, users={"alice": "s3cret"}, timeouts=adapter.Timeouts(TIMEOUT)
    )
    with adapter.serve(server):
        first = login(server.port)
        with pytest.raises(poplib.error_proto, match="IN-USE"):
            login(server.port)
        first.dele(1)
        first.close()  # no QUIT: nothing deleted, the lock is released
        for _ in range(50):
            try:
                second = login(server.port)
            except poplib.error_proto:
                threading.Event().wait(0.05)  # the server may not have seen the close yet
                continue
            break
        else:
            pytest.fail("the mailbox lock was never released")
        assert second.stat()[0] == 3
        second.quit()
        with pytest.raises(poplib.error_proto):
            login(server.port, password="wrong")
    assert len(files(maildir)) == 3


def test_stls(
    adapter: Adapter,
    tmp_path: Path,
    tls_server_context: ssl.SSLContext,
    tls_client_context: ssl.SSLContext,
) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    server = adapter.POP3Server(
        maildir=maildir,
        users={"alice": "s3cret"},
        tls_context=tls_server_context,
        timeouts=adapter.Timeouts(TIMEOUT),
    )
    with adapter.serve(server):
        client = poplib.POP3("127.0.0.1", server.port, timeout=TIMEOUT)
        try:
            assert "STLS" in client.capa()
            assert client.stls(tls_client_context).startswith(b"+OK")
            client.user("alice")
            client.pass_("s3cret")
            assert client.stat()[0] == 3
            assert client.retr(2)[1] == MSG2.rstrip(b"\r\n").split(b"\r\n")
        finally:
            client.quit()


def test_xoauth2_with_a_coroutine_token_check(adapter: Adapter, tmp_path: Path) -> None:
    """An async server awaits a coroutine function given as authenticate_xoauth2."""
    from protomata.pop3 import POP3Error
    from protomata.sync import POP3Client

    seen: list[tuple[str, str]] = []

    if adapter.name == "asyncio":
        import asyncio

        sleep: Any = asyncio.sleep
    else:
        import trio

        sleep = trio.sleep

    async def check(user: str, token: str) -> bool:
        seen.append((user, token))
        await sleep(0.01)  # it may wait, e.g. for a token service
        return token == "good-token"

    server = adapter.POP3Server(
        maildir=make_maildir(tmp_path / "Maildir"),
        users={"alice": "s3cret"},
        timeouts=adapter.Timeouts(TIMEOUT),
        authenticate_xoauth2=check,
    )
    with adapter.serve(server), POP3Client("127.0.0.1", server.port, timeout=TIMEOUT) as client:
        with pytest.raises(POP3Error, match=r"\[AUTH\]"):
            client.auth("XOAUTH2", "alice", "stale-token")
        client.auth("XOAUTH2", "alice", "good-token")
        assert client.stat()[0] == 3
    assert seen == [("alice", "stale-token"), ("alice", "good-token")]


def test_the_mailbox_is_free_once_quit_is_answered(adapter: Adapter, tmp_path: Path) -> None:
    # RFC 1939: QUIT ends the UPDATE state; a client that has read the reply
    # may log in again at once and must not find its own mailbox locked.
    maildir = make_maildir(tmp_path / "Maildir")
    server = adapter.POP3Server(
        maildir=maildir, users={"alice": "s3cret"}, timeouts=adapter.Timeouts(TIMEOUT)
    )
    with adapter.serve(server):
        for round_ in range(10):
            client = login(server.port)
            if round_ == 0:
                assert client.dele(1).startswith(b"+OK")  # an UPDATE with work to do
            assert client.quit().startswith(b"+OK")
            assert not server._locked  # released before the reply was sent
        assert files(maildir) == ["1001.M2P1.host", "1002.M3P1.host:2,S"]
