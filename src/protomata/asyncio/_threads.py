"""Worker threads for the mail servers' file work, lighter than ``asyncio.to_thread``.

Theory of operation
-------------------
A delivery is one call into a worker thread and one result back.
``asyncio.to_thread`` wraps that call in a context copy, a
``concurrent.futures`` future with its lock and condition, the executor's
work item and idle semaphore, and an asyncio future chained to the first:
all Python code that worker threads run while holding the GIL, contending
with the event loop's thread for it.  In the SMTP benchmark that was
about a fifth of the server's time per message (docs/performance.rst).

Here a job is a tuple on a :class:`queue.SimpleQueue` (a C-level queue),
and the worker settles the asyncio future with one
``loop.call_soon_threadsafe``.  The threads start on the first job, all
at once, and leave when :meth:`WorkerThreads.close` hands each one ``None``.
They are daemon threads: a process that exits without closing the pool
does not hang on them.  The called function sees no context variables
(file work needs none).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["WorkerThreads"]

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return  # the waiting task went away; the work was done anyway
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class WorkerThreads:
    """A fixed set of threads that run blocking calls for coroutines.

    :param size: how many threads; by default what
        :class:`concurrent.futures.ThreadPoolExecutor` would use,
        ``min(32, os.cpu_count() + 4)``.
    """

    def __init__(self, size: int | None = None) -> None:
        self.size = size if size is not None else min(32, (os.cpu_count() or 1) + 4)
        if self.size < 1:
            raise ValueError("a pool needs at least one thread")
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` in a worker thread; its result, or its exception raised."""
        if self._closed:
            raise RuntimeError("the worker threads are closed")
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((loop, future, func, args))
        return await future

    def _start(self) -> None:
        for number in range(self.size):
            thread = threading.Thread(
                target=self._work, name=f"protomata-worker-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        get = self._jobs.get
        while True:
            job = get()
            if job is None:
                return
            loop, future, func, args = job
            result: Any = None
            error: BaseException | None = None
            try:
                result = func(*args)
            except BaseException as exc:  # handed to the waiting coroutine
                error = exc
            del job, func, args
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                loop.call_soon_threadsafe(_settle, future, result, error)
            del loop, future, result, error

    def close(self) -> None:
        """Let the threads finish the jobs they have, then end (no waiting here)."""
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        self._threads.clear()
