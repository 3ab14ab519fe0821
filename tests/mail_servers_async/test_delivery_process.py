"""The delivery process of the asyncio and trio SMTP servers, and its wire format."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from protomata.asyncio import _deliveryagent as asyncio_agent
from protomata.sync import _deliveryagent as shared
from protomata.sync._deliveryagent import (
    MAX_TEXT,
    READY,
    AgentError,
    AgentUnavailable,
    JobReader,
    ResultReader,
    encode_job,
    encode_result,
)
from protomata.sync._maildir import Maildir

from .conftest import Adapter

TIMEOUT = 10.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pids")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): it counts as gone
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _wait_gone(pid: int, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def _new_files(maildir: Path) -> list[bytes]:
    return sorted(p.read_bytes() for p in (maildir / "new").iterdir())


# -- the wire format ----------------------------------------------------------


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


@settings(max_examples=200, deadline=None)
@given(
    results=st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.booleans(), st.text(max_size=50)), max_size=8
    ),
    cuts=st.lists(st.integers(0, 600), max_size=10),
)
def test_results_decode_whatever_the_chunking(
    results: list[tuple[int, bool, str]], cuts: list[int]
) -> None:
    wire = b"".join(encode_result(*r) for r in results)
    reader = ResultReader()
    decoded: list[tuple[int, bool, str]] = []
    for piece in _cut(wire, cuts):
        decoded.extend(reader.feed(piece))
    assert decoded == results


@settings(max_examples=200, deadline=None)
@given(
    jobs=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=300)), max_size=8),
    cuts=st.lists(st.integers(0, 3000), max_size=10),
)
def test_jobs_decode_whatever_the_chunking(jobs: list[tuple[int, bytes]], cuts: list[int]) -> None:
    wire = b"".join(encode_job(*job) for job in jobs)
    reader = JobReader()
    decoded: list[tuple[int, bytes]] = []
    for piece in _cut(wire, cuts):
        decoded.extend(reader.feed(piece))
    assert decoded == jobs


def test_malformed_results_are_refused() -> None:
    good = encode_result(7, True, "/m/new/x")
    with pytest.raises(AgentError):
        ResultReader().feed(good[:4] + b"\x02" + good[5:])  # no status 2
    with pytest.raises(AgentError):
        ResultReader().feed(good[:5] + (MAX_TEXT + 1).to_bytes(4, "little"))
    long = encode_result(1, False, "e" * (MAX_TEXT + 100))
    assert ResultReader().feed(long) == [(1, False, "e" * MAX_TEXT)]  # cut, not refused


# -- the process on its own ---------------------------------------------------


def _agent(maildir: Path, threads: int = 2) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "protomata.sync._deliveryagent",
            str(maildir),
            "host.test",
            str(threads),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def test_the_process_delivers_its_jobs_and_ends_with_its_input(tmp_path: Path) -> None:
    Maildir(tmp_path / "md")
    process = _agent(tmp_path / "md")
    jobs = b"".join(encode_job(n, b"Subject: %d\n\nbody\n" % n) for n in (1, 2, 3))
    output, _ = process.communicate(jobs, timeout=TIMEOUT)
    assert process.returncode == 0
    results = ResultReader().feed(output)
    assert results[0] == (READY, True, str(tmp_path / "md"))
    answered = {job_id: (ok, path) for job_id, ok, path in results[1:]}
    assert sorted(answered) == [1, 2, 3] and all(ok for ok, _ in answered.values())
    for job_id, (_, path) in answered.items():
        assert Path(path).parent == tmp_path / "md" / "new"
        assert Path(path).read_bytes() == b"Subject: %d\n\nbody\n" % job_id
        assert ".host.test" in Path(path).name
    assert list((tmp_path / "md" / "tmp").iterdir()) == []


def test_the_process_says_why_it_cannot_open_the_maildir(tmp_path: Path) -> None:
    process = _agent(tmp_path / "missing")
    output, _ = process.communicate(b"", timeout=TIMEOUT)
    assert process.returncode == 1
    [(job_id, ok, text)] = ResultReader().feed(output)
    assert job_id == READY and not ok and "not a Maildir" in text


def test_the_process_ignores_sigint_and_finishes_its_jobs(tmp_path: Path) -> None:
    Maildir(tmp_path / "md")
    process = _agent(tmp_path / "md")
    assert process.stdout is not None and process.stdin is not None
    ResultReader().feed(process.stdout.read(9 + len(str(tmp_path / "md"))))  # ready
    process.send_signal(signal.SIGINT)
    process.stdin.write(encode_job(5, b"kept\n"))
    process.stdin.close()
    output = process.stdout.read()
    assert process.wait(TIMEOUT) == 0
    [(job_id, ok, _)] = ResultReader().feed(output)
    assert (job_id, ok) == (5, True)
    assert _new_files(tmp_path / "md") == [b"kept\n"]


# -- DeliveryAgent, asyncio's and trio's ----------------------------------------


class Loop:
    """Runs a test body with one adapter's DeliveryAgent, in that adapter's loop."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, maildir: str, body: Callable[[Any], Awaitable[Any]], threads: int = 2) -> Any:
        if self.name == "asyncio":

            async def in_asyncio() -> Any:
                agent = asyncio_agent.DeliveryAgent(maildir, "host.test", threads=threads)
                try:
                    return await body(agent)
                finally:
                    await agent.close()

            return asyncio.run(asyncio.wait_for(in_asyncio(), 30.0))
        from protomata.trio import _deliveryagent as trio_agent

        async def in_trio() -> Any:
            with trio.fail_after(30.0):
                async with trio.open_nursery() as nursery:
                    agent = trio_agent.DeliveryAgent(maildir, "host.test", nursery, threads=threads)
                    try:
                        return await body(agent)
                    finally:
                        await agent.close()

        return trio.run(in_trio)

    async def sleep(self, seconds: float) -> None:
        await (asyncio.sleep(seconds) if self.name == "asyncio" else trio.sleep(seconds))

    async def until(self, condition: Callable[[], bool]) -> bool:
        for _ in range(500):
            if condition():
                return True
            await self.sleep(0.01)
        return condition()

    async def outcomes(self, *calls: Callable[[], Awaitable[Any]]) -> list[Any]:
        """Run *calls* concurrently; each one's result, or the exception it raised."""
        results: list[Any] = [None] * len(calls)

        async def one(i: int) -> None:
            try:
                results[i] = await calls[i]()
            except Exception as exc:
                results[i] = exc

        if self.name == "asyncio":
            await asyncio.gather(*(one(i) for i in range(len(calls))))
        else:
            async with trio.open_nursery() as nursery:
                for i in range(len(calls)):
                    nursery.start_soon(one, i)
        return results


@pytest.fixture(params=["asyncio", "trio"])
def loop(request: pytest.FixtureRequest) -> Loop:
    return Loop(request.param)


def test_agent_delivers_and_restarts_after_it_was_killed(tmp_path: Path, loop: Loop) -> None:
    maildir = Maildir(tmp_path / "md")

    async def body(agent: Any) -> None:
        await agent.start()
        first = agent.pid
        assert first is not None and first != os.getpid()
        calls = [lambda n=n: agent.deliver(b"m%d\n" % n) for n in range(20)]
        paths = await loop.outcomes(*calls)
        assert len(set(paths)) == 20 and all(isinstance(p, str) for p in paths)
        assert agent.pending == 0
        os.kill(first, signal.SIGKILL)
        assert await loop.until(lambda: not agent.running)  # the loop hears of the death
        await agent.deliver(b"after\n")  # started again
        assert agent.pid not in (None, first)
        await agent.close()
        assert not agent.running
        with pytest.raises(AgentUnavailable):
            await agent.deliver(b"closed\n")

    loop.run(maildir.path, body)
    assert len(_new_files(tmp_path / "md")) == 21


def test_jobs_of_a_dying_agent_fail(tmp_path: Path, loop: Loop) -> None:
    maildir = Maildir(tmp_path / "md")

    async def body(agent: Any) -> None:
        await agent.start()
        pid = agent.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the job stays unanswered

        async def kill_when_pending() -> None:
            assert await loop.until(lambda: agent.pending == 1)
            await loop.sleep(0.05)
            os.kill(pid, signal.SIGKILL)

        outcome, _ = await loop.outcomes(lambda: agent.deliver(b"lost?\n"), kill_when_pending)
        assert isinstance(outcome, OSError)
        assert not isinstance(outcome, AgentUnavailable)  # it was sent: 451, not a fallback

    loop.run(maildir.path, body, threads=1)


def test_agent_that_cannot_start_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: Loop
) -> None:
    maildir = Maildir(tmp_path / "md")

    async def body(agent: Any) -> None:
        with pytest.raises(AgentUnavailable):
            await agent.start()
        with pytest.raises(AgentUnavailable):
            await agent.deliver(b"x\n")  # nothing sent
        assert agent.pending == 0

    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    loop.run(maildir.path, body)
    monkeypatch.undo()

    async def refused(agent: Any) -> None:
        with pytest.raises(AgentUnavailable, match="not a Maildir"):
            await agent.start()

    loop.run(str(tmp_path / "not-a-maildir"), refused)


def test_agent_that_never_answers_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: Loop
) -> None:
    maildir = Maildir(tmp_path / "md")
    mute = tmp_path / "mute-python"
    mute.write_text("#!/bin/sh\nexec sleep 60\n")
    mute.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(mute))
    monkeypatch.setattr(shared, "START_TIMEOUT", 0.5)

    async def body(agent: Any) -> None:
        with pytest.raises(AgentUnavailable, match="did not start"):
            await agent.start()
        assert not agent.running

    loop.run(maildir.path, body)
    assert not _running_with_cmdline(b"sleep\x0060\x00")  # killed, not left sleeping


def _running_with_cmdline(cmdline: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == cmdline and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# -- the servers ----------------------------------------------------------------


def _send(port: int, subject: str) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as client:
        message = f"Subject: {subject}\r\n\r\nbody\r\n".encode()
        return client.sendmail("a@example.org", ["b@example.org"], message)


def test_server_ends_its_agent_and_replaces_a_dead_one(tmp_path: Path, adapter: Adapter) -> None:
    server = adapter.SMTPServer(maildir=tmp_path / "md", timeouts=adapter.Timeouts(TIMEOUT))
    with adapter.serve(server):
        agent = server._agent
        assert agent is not None
        first = agent.pid
        assert first is not None
        assert _send(server.port, "one") == {}
        os.kill(first, signal.SIGKILL)
        assert _wait_gone(first)
        deadline = time.monotonic() + TIMEOUT
        while agent.running and time.monotonic() < deadline:  # the loop hears of it
            time.sleep(0.01)
        assert not agent.running
        assert _send(server.port, "two") == {}  # a new process took the message
        second = agent.pid
        assert second not in (None, first)
    assert server._agent is None
    assert _wait_gone(second)  # type: ignore[arg-type]
    files = _new_files(tmp_path / "md")
    assert len(files) == 2 and all(b"Subject: " in f for f in files)


def test_server_without_a_usable_python_delivers_in_threads(
    tmp_path: Path,
    adapter: Adapter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    server = adapter.SMTPServer(maildir=tmp_path / "md", timeouts=adapter.Timeouts(TIMEOUT))
    with caplog.at_level(logging.WARNING, logger="protomata.smtp"), adapter.serve(server):
        assert server._agent is None
        assert _send(server.port, "threads") == {}
    assert "delivering in worker threads" in caplog.text
    assert len(_new_files(tmp_path / "md")) == 1


def test_server_with_a_handler_starts_no_agent(tmp_path: Path, adapter: Adapter) -> None:
    class Handler:
        def __init__(self) -> None:
            self.got: list[bytes] = []

        def message(self, envelope: Any, data: bytes) -> None:
            self.got.append(data)

    handler = Handler()
    server = adapter.SMTPServer(
        handler, maildir=tmp_path / "md", timeouts=adapter.Timeouts(TIMEOUT)
    )
    with adapter.serve(server):
        assert server._agent is None
        assert _send(server.port, "handled") == {}
    assert len(handler.got) == 1 and _new_files(tmp_path / "md") == []


def test_twenty_megabytes_through_the_delivery_process(tmp_path: Path, adapter: Adapter) -> None:
    from ..mail_clients.test_large_round_trip import make_message

    message = make_message(998)
    server = adapter.SMTPServer(maildir=tmp_path / "md", timeouts=adapter.Timeouts(60.0))
    with adapter.serve(server):
        assert server._agent is not None
        with smtplib.SMTP("127.0.0.1", server.port, timeout=60.0) as client:
            assert client.sendmail("a@example.org", ["b@example.org"], message) == {}
    [stored] = _new_files(tmp_path / "md")
    assert stored.startswith(b"Return-Path: <a@example.org>\n")
    assert stored.endswith(message.replace(b"\r\n", b"\n"))
