"""The trio side of the delivery process (:mod:`protomata.sync._deliveryagent`).

:class:`DeliveryAgent` starts the process with
:func:`trio.lowlevel.open_process`.  A task in the nursery it is given
reads the results and wakes the job each one answers; jobs are written
one at a time under a lock.  The behaviour is that of the asyncio agent
(:mod:`protomata.asyncio._deliveryagent`): started with the server and
again by the first delivery after it died; the jobs of a process that
dies fail with :class:`OSError`; :class:`AgentUnavailable` when no process
can be started, before anything was sent.
"""

from __future__ import annotations

import contextlib
import subprocess

import trio

from ..sync import _deliveryagent as shared
from ..sync._deliveryagent import (
    READY,
    AgentError,
    AgentUnavailable,
    ResultReader,
    agent_environment,
    encode_job,
)

__all__ = ["AgentUnavailable", "DeliveryAgent"]


class _Job:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result = ""
        self.error: BaseException | None = None

    def settle(self, result: str = "", error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.result, self.error = result, error
            self.done.set()


class DeliveryAgent(shared.AgentClient):
    """Deliveries into the Maildir at *path* by a child process.

    :param nursery: where the task reading the process's results runs; it
        must outlive the agent (a server's own nursery).
    :param threads: see :class:`~protomata.sync._deliveryagent.AgentClient`.
    """

    def __init__(
        self, path: str, hostname: str, nursery: trio.Nursery, threads: int | None = None
    ) -> None:
        super().__init__(path, hostname, threads)
        self._nursery = nursery
        self._process: trio.Process | None = None
        self._pending: dict[int, _Job] = {}
        self._starting = trio.Lock()
        self._writing = trio.Lock()
        self._reader_done: trio.Event | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        async with self._starting:
            if self._closed:
                raise AgentUnavailable("the delivery agent is closed")
            if self._process is None:
                await self._start()

    async def _start(self) -> None:
        try:
            process = await trio.lowlevel.open_process(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=agent_environment(),
            )
        except (OSError, ValueError) as exc:
            raise AgentUnavailable(f"cannot start the delivery process: {exc}") from exc
        ready = self._pending[READY] = _Job()
        self._process = process
        done = self._reader_done = trio.Event()
        self._nursery.start_soon(self._read, process, done)
        with trio.move_on_after(shared.START_TIMEOUT):
            await ready.done.wait()
        if ready.done.is_set() and ready.error is None:
            return
        error = ready.error or TimeoutError("no answer")
        if self._process is process:  # hung, or said it cannot open the Maildir
            await self._forget()
        if not ready.done.is_set():
            with contextlib.suppress(OSError):
                process.kill()
        with trio.move_on_after(5.0):
            await done.wait()
        raise AgentUnavailable(f"the delivery process did not start: {error}")

    async def _read(self, process: trio.Process, done: trio.Event) -> None:
        """Hand each result to its job until the process's output ends."""
        reader = ResultReader()
        error: OSError = AgentError("the delivery process ended")
        stdout = process.stdout
        assert stdout is not None
        try:
            while True:
                data = await stdout.receive_some(shared.RESULT_READ_SIZE)
                if not data:
                    break
                for job_id, delivered, text in reader.feed(data):
                    job = self._pending.pop(job_id, None) if process is self._process else None
                    if job is not None:
                        job.settle(text, None if delivered else OSError(f"delivery failed: {text}"))
        except AgentError as exc:  # garbled output: stop using it
            error = exc
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            error = AgentError(f"the delivery process ended: {exc}")
        finally:
            if process is self._process:
                await self._forget()
                pending, self._pending = self._pending, {}
                for job in pending.values():
                    job.settle(error=error)
            with trio.CancelScope(shield=True):
                with trio.move_on_after(5.0):
                    await process.wait()  # reap it (its input is closed: it ends)
                if process.returncode is None:
                    with contextlib.suppress(OSError):
                        process.kill()
                    await process.wait()
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stdout.aclose()
            done.set()

    async def _forget(self) -> None:
        """Stop using the current process; it ends once its input is closed."""
        process, self._process = self._process, None
        if process is not None and process.stdin is not None:
            with (
                trio.CancelScope(shield=True),
                contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
            ):
                await process.stdin.aclose()

    async def deliver(self, content: bytes) -> str:
        if self._process is None:
            await self.start()
        process = self._process
        if process is None or process.stdin is None:
            raise AgentUnavailable("the delivery process is not running")
        job_id = next(self._ids)
        job = self._pending[job_id] = _Job()
        try:
            async with self._writing:
                await process.stdin.send_all(encode_job(job_id, content))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._pending.pop(job_id, None)
            raise AgentError(f"the delivery process ended: {exc}") from exc
        try:
            await job.done.wait()
        finally:
            self._pending.pop(job_id, None)
        if job.error is not None:
            raise job.error
        return job.result

    async def close(self, timeout: float = 30.0) -> None:
        self._closed = True
        process, done = self._process, self._reader_done
        if process is None or done is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await process.stdin.aclose()  # the process finishes its jobs and exits
        with trio.move_on_after(timeout):
            await done.wait()
        if not done.is_set():
            with contextlib.suppress(OSError):
                process.kill()
            await done.wait()
