"""The worker threads that do the asyncio mail servers' file work."""

from __future__ import annotations

import asyncio
import smtplib
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from protomata.asyncio import SMTPServer
from protomata.asyncio._threads import WorkerThreads


def arun(coro: Any, timeout: float = 10.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("protomata-worker-")}


def test_results_and_exceptions_come_back_from_the_threads() -> None:
    async def main() -> None:
        pool = WorkerThreads(2)
        try:
            assert await pool.run(pow, 2, 10) == 1024
            assert await pool.run(threading.current_thread) is not threading.main_thread()
            with pytest.raises(ZeroDivisionError):
                await pool.run(divmod, 1, 0)
            assert await pool.run(sum, [1, 2, 3]) == 6  # a failure leaves the thread working
        finally:
            pool.close()

    arun(main())


def test_jobs_run_in_parallel_up_to_the_size() -> None:
    async def main() -> None:
        size = 3
        pool = WorkerThreads(size)
        barrier = threading.Barrier(size, timeout=5)  # breaks unless all three run at once
        try:
            assert await asyncio.gather(*(pool.run(barrier.wait) for _ in range(size)))
        finally:
            pool.close()

    arun(main())


def test_a_cancelled_wait_leaves_the_pool_working() -> None:
    async def main() -> None:
        pool = WorkerThreads(1)
        release = threading.Event()
        try:
            task = asyncio.ensure_future(pool.run(release.wait, 5))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            release.set()  # the job ends; its result goes to a cancelled future
            assert await pool.run(len, "abc") == 3
        finally:
            pool.close()

    arun(main())


def test_close_ends_the_threads_and_refuses_more_work() -> None:
    async def main() -> None:
        before = _workers()
        pool = WorkerThreads(2)
        await pool.run(len, "")
        started = _workers() - before
        assert len(started) == 2
        pool.close()
        deadline = time.monotonic() + 5
        while any(t.is_alive() for t in started) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert not any(t.is_alive() for t in started)
        with pytest.raises(RuntimeError):
            await pool.run(len, "")

    arun(main())
    with pytest.raises(ValueError):
        WorkerThreads(0)


def test_smtp_server_delivers_through_its_threads_and_ends_them_on_shutdown() -> None:
    async def main(maildir: Path) -> None:
        before = _workers()
        server = SMTPServer(host="127.0.0.1", port=0, maildir=maildir)
        async with server.running():
            loop = asyncio.get_running_loop()

            def send() -> None:
                with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
                    client.sendmail("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\nhi\r\n")

            await loop.run_in_executor(None, send)
            assert _workers() - before  # the delivery ran in the server's threads
        deadline = time.monotonic() + 5
        while _workers() - before and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert not _workers() - before
        assert len(list((maildir / "new").iterdir())) == 1

    with tempfile.TemporaryDirectory() as tmp:
        arun(main(Path(tmp) / "Maildir"))
