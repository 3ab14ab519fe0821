"""The asyncio and trio POP3Client, and ``fetch-mail --io``, against protomata's POP3 servers.

Each client runs in its own event loop in the test thread (``asyncio.run``
or ``trio.run``, under a deadline); the servers run in background threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import io
import os
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import protomata.asyncio
from protomata.sync import POP3Server, Timeouts
from protomata.sync._maildir import Maildir

from .conftest import TLS, TLSProxy
from .test_pop3_client import (
    MESSAGES,
    MID_RESPONSE,
    USERS,
    HashSink,
    ScriptedServer,
    big_message,
    make_big_mailbox,
)

HAVE_TRIO = importlib.util.find_spec("trio") is not None
ADAPTERS = [
    "asyncio",
    pytest.param("trio", marks=pytest.mark.skipif(not HAVE_TRIO, reason="trio is not installed")),
]
#: the most any one test's client side may take (seconds)
DEADLINE = 60.0


def crlf(message: bytes) -> bytes:
    return message.replace(b"\n", b"\r\n")


def client_class(adapter: str) -> Any:
    return importlib.import_module(f"protomata.{adapter}").POP3Client


def arun(adapter: str, main: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``main(POP3Client)`` in a fresh event loop of *adapter*, under :data:`DEADLINE`."""
    cls = client_class(adapter)
    if adapter == "asyncio":

        async def with_deadline() -> Any:
            return await asyncio.wait_for(main(cls), DEADLINE)

        return asyncio.run(with_deadline())
    import trio

    async def trio_main() -> Any:
        with trio.fail_after(DEADLINE):
            return await main(cls)

    return trio.run(trio_main)


@pytest.fixture(scope="module")
def big_mailbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """See :func:`make_big_mailbox`."""
    return make_big_mailbox(tmp_path_factory.mktemp("big"))


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    box = Maildir(tmp_path / "server")
    for message in MESSAGES:
        box.deliver(message)
    return Path(box.path)


@pytest.fixture
def server(maildir: Path, tls: TLS) -> Iterator[POP3Server]:
    srv = POP3Server(
        "127.0.0.1", 0, maildir=maildir, users=USERS, tls_context=tls.server, timeouts=Timeouts(5)
    )
    with srv.running():
        yield srv


def count(maildir: Path) -> int:
    return len(list((maildir / "new").iterdir())) + len(list((maildir / "cur").iterdir()))


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_session(adapter: str, server: POP3Server) -> None:
    async def main(POP3Client: Any) -> None:
        async with POP3Client("127.0.0.1", server.port, timeout=5) as client:
            assert client.greeting.startswith("protomata POP3 server ready <")
            caps = await client.capa()
            assert "TOP" in caps and "STLS" in caps
            await client.login("alice", "s3cret")
            count, size = await client.stat()
            listing = await client.list_messages()
            assert count == 2 and sum(s for _, s in listing) == size
            uids = dict(await client.uidl())
            assert await client.message_uid(2) == uids[2]
            assert await client.message_size(1) == listing[0][1]
            assert await client.top(1, 0) == b"Subject: one\r\n\r\n"
            assert await client.retrieve(1) == crlf(MESSAGES[0])
            pieces = [chunk async for chunk in client.iter_retrieve(2)]
            assert b"".join(pieces) == crlf(MESSAGES[1])
            top = [chunk async for chunk in client.iter_retrieve(1, lines=1)]
            assert b"".join(top) == b"Subject: one\r\n\r\n.leading dot\r\n"
            sink = io.BytesIO()
            assert await client.retrieve_to(1, sink) == len(crlf(MESSAGES[0]))
            assert sink.getvalue() == crlf(MESSAGES[0])
            await client.noop()

    arun(adapter, main)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("how", ["USER", "APOP", "PLAIN", "PLAIN-no-initial"])
def test_logins(adapter: str, how: str, server: POP3Server) -> None:
    async def main(POP3Client: Any) -> None:
        async with POP3Client("127.0.0.1", server.port, timeout=5) as client:
            if how in ("USER", "APOP"):
                with pytest.raises(protomata.asyncio.POP3Error, match="failed"):
                    await client.login("alice", "wrong", apop=how == "APOP")
                await client.login("alice", "s3cret", apop=how == "APOP")
            else:
                initial = how == "PLAIN"
                with pytest.raises(protomata.asyncio.POP3Error, match="AUTH PLAIN failed"):
                    await client.auth("PLAIN", "alice", "wrong", initial_response=initial)
                await client.auth("PLAIN", "alice", "s3cret", initial_response=initial)
            assert (await client.stat())[0] == 2

    arun(adapter, main)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_stls_and_implicit_tls(adapter: str, server: POP3Server, tls: TLS) -> None:
    proxy = TLSProxy(tls.server, server.port)

    async def main(POP3Client: Any) -> None:
        async with POP3Client(
            "127.0.0.1", server.port, stls=True, verify=tls.client, timeout=5
        ) as client:
            assert client.conn.tls_active
            assert "STLS" not in await client.capa()
            await client.login("alice", "s3cret")
            assert await client.retrieve(2) == crlf(MESSAGES[1])
        async with POP3Client("127.0.0.1", proxy.port, tls=True, verify=tls.client) as client:
            assert client.stream.tls_context is tls.client
            await client.auth("PLAIN", "alice", "s3cret")
            assert await client.retrieve(1) == crlf(MESSAGES[0])
        with pytest.raises(ssl.SSLCertVerificationError):
            async with POP3Client("127.0.0.1", server.port, stls=True, timeout=5):
                pass

    try:
        arun(adapter, main)
    finally:
        proxy.close()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_quit_commits_and_close_drops(adapter: str, server: POP3Server, maildir: Path) -> None:
    async def main(POP3Client: Any) -> None:
        client = POP3Client("127.0.0.1", server.port, timeout=5)
        await client.connect()
        await client.login("alice", "s3cret")
        await client.delete(1)
        await client.close()  # no QUIT: nothing deleted
        assert count(maildir) == 2
        async with POP3Client("127.0.0.1", server.port, timeout=5) as client:
            await client.login("alice", "s3cret")
            await client.delete(2)
            await client.rset()
            await client.delete(1)
        assert count(maildir) == 1
        async with POP3Client("127.0.0.1", server.port, timeout=5) as client:
            await client.login("alice", "s3cret")
            assert await client.retrieve(1) == crlf(MESSAGES[1])

    arun(adapter, main)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_err_and_abandoned_iteration(adapter: str, server: POP3Server) -> None:
    async def main(POP3Client: Any) -> None:
        async with POP3Client("127.0.0.1", server.port, timeout=5) as client:
            await client.login("alice", "s3cret")
            with pytest.raises(protomata.asyncio.POP3Error, match="no such message") as info:
                await client.retrieve(7)
            assert info.value.text == "no such message"
            with pytest.raises(protomata.asyncio.POP3Error, match="no such message"):
                async for _chunk in client.iter_retrieve(7):
                    pass
            async for _chunk in client.iter_retrieve(1):
                break  # the rest is read and dropped before the next command
            assert await client.retrieve(2) == crlf(MESSAGES[1])
        with pytest.raises(RuntimeError, match="not connected"):
            await client.stat()

    arun(adapter, main)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_server_closing_mid_response(adapter: str, reset: bool) -> None:
    scripted = ScriptedServer(list(MID_RESPONSE), reset=reset)

    async def main(POP3Client: Any) -> None:
        async with POP3Client("127.0.0.1", scripted.port, timeout=5) as client:
            await client.login("alice", "pw")
            with pytest.raises(protomata.asyncio.POP3Error):
                await client.retrieve(1)
            assert not client.session.usable

    try:
        arun(adapter, main)
    finally:
        scripted.close()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_streaming_20mb(adapter: str, big_mailbox: tuple[Path, bytes]) -> None:
    path, digest = big_mailbox
    srv = POP3Server("127.0.0.1", 0, maildir=path, users=USERS, timeouts=Timeouts(30))

    async def main(POP3Client: Any) -> None:
        async with POP3Client("127.0.0.1", srv.port, max_line_length=1 << 20) as client:
            await client.login("alice", "s3cret")
            sink = HashSink()
            size = await client.retrieve_to(1, sink)
            assert sink.hash.digest() + size.to_bytes(8, "big") == digest
            assert sink.largest <= 1 << 20 and sink.writes > 100
            check = hashlib.sha256()
            total = 0
            async for chunk in client.iter_retrieve(1):
                check.update(chunk)
                total += len(chunk)
            assert check.digest() + total.to_bytes(8, "big") == digest

    with srv.running():
        arun(adapter, main)


# -- against the same adapter's own POP3 server --------------------------------------------


@pytest.fixture(params=ADAPTERS)
def own_server(request: pytest.FixtureRequest, tmp_path: Path, tls: TLS) -> Iterator[Any]:
    from tests.mail_servers_async.conftest import Adapter

    adapter = Adapter(request.param)
    box = Maildir(tmp_path / "own")
    for message in MESSAGES:
        box.deliver(message)
    server = adapter.POP3Server(
        maildir=box.path, users=USERS, tls_context=tls.server, timeouts=Timeouts(5)
    )
    with adapter.serve(server):
        server.test_adapter = request.param
        server.test_maildir = Path(box.path)
        yield server


def test_each_client_with_its_own_server(own_server: Any, tls: TLS) -> None:
    async def main(POP3Client: Any) -> None:
        port = own_server.port
        async with POP3Client("127.0.0.1", port, stls=True, verify=tls.client) as client:
            await client.auth("PLAIN", "alice", "s3cret")
            assert await client.top(2, 0) == b"Subject: two\r\n\r\n"
            sink = HashSink()
            await client.retrieve_to(1, sink)
            assert sink.hash.digest() == hashlib.sha256(crlf(MESSAGES[0])).digest()
            await client.delete(1)
        assert count(own_server.test_maildir) == 1

    arun(own_server.test_adapter, main)


# -- fetch-mail --io ------------------------------------------------------------------------------


def fetch_cli(*args: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "protomata.cli._mail", "fetch-mail", *args],
        check=False,
        capture_output=True,
        timeout=60,
        env={**os.environ},
    )


def stored(maildir: Path) -> list[bytes]:
    new = maildir / "new"
    return sorted(p.read_bytes() for p in new.iterdir()) if new.exists() else []


@pytest.mark.parametrize("io_adapter", ["sync", *ADAPTERS])
def test_fetch_mail_each_io(
    io_adapter: Any, server: POP3Server, maildir: Path, tmp_path: Path
) -> None:
    local = tmp_path / f"local-{io_adapter}"
    url = f"pop3://alice:s3cret@127.0.0.1:{server.port}/"
    kept = fetch_cli(url, "--maildir", str(local), "--io", io_adapter, "--auth", "plain")
    assert kept.returncode == 0, kept.stderr
    assert stored(local) == sorted(MESSAGES) and count(maildir) == 2
    wrong = fetch_cli(f"pop3://alice:no@127.0.0.1:{server.port}/", "--maildir", str(local))
    assert wrong.returncode == 1 and b"PASS failed" in wrong.stderr
    moved = fetch_cli(url, "--maildir", str(local), "--io", io_adapter, "--delete", "--apop")
    assert moved.returncode == 0, moved.stderr
    assert b"2 messages stored" in moved.stdout and b"deleted on the server" in moved.stdout
    assert len(stored(local)) == 4 and count(maildir) == 0
    assert not list((local / "tmp").iterdir())


@pytest.mark.parametrize("io_adapter", ["sync", *ADAPTERS])
def test_fetch_mail_streams_a_big_message(
    io_adapter: Any, big_mailbox: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, _digest = big_mailbox
    srv = POP3Server("127.0.0.1", 0, maildir=path, users=USERS, timeouts=Timeouts(30))
    local = tmp_path / "local"
    with srv.running():
        url = f"pop3://alice:s3cret@127.0.0.1:{srv.port}/"
        if io_adapter == "sync":
            # The default line limit (64 KiB) refuses the 300 KB lines: nothing half-stored.
            refused = fetch_cli(url, "--maildir", str(local))
            assert refused.returncode == 1 and b"exceeds the limit" in refused.stderr
            assert not list((local / "tmp").iterdir()) and stored(local) == []
        limit = str(1 << 20)
        result = fetch_cli(
            url, "--maildir", str(local), "--io", io_adapter, "--max-line-length", limit
        )
    assert result.returncode == 0, result.stderr
    [message] = (local / "new").iterdir()
    assert hashlib.sha256(message.read_bytes()).digest() == hashlib.sha256(big_message()).digest()
    assert not list((local / "tmp").iterdir())


@pytest.mark.parametrize("io_adapter", ["sync", *ADAPTERS])
def test_fetch_mail_mid_response_close(io_adapter: Any, tmp_path: Path) -> None:
    listing = b"+OK 1 messages\r\n1 900\r\n.\r\n"
    scripted = ScriptedServer([*MID_RESPONSE[:2], listing, MID_RESPONSE[2]])
    local = tmp_path / "local"
    try:
        url = f"pop3://alice:pw@127.0.0.1:{scripted.port}/"
        result = fetch_cli(url, "--maildir", str(local), "--io", io_adapter)
    finally:
        scripted.close()
    assert result.returncode == 1
    assert b"0 messages stored, none deleted" in result.stderr
    assert not list((local / "tmp").iterdir())
