"""The asyncio side of the delivery process (:mod:`protomata.sync._deliveryagent`).

:class:`DeliveryAgent` starts the process with ``loop.subprocess_exec``,
writes each job to its standard input through the pipe transport (which
buffers, so the loop never blocks) and settles the job's future when the
result comes back on standard output.

The process is started when the server starts, and started again by the
first delivery after it died.  If it dies while it has jobs, their
futures fail with :class:`OSError`: the server answers ``451`` and the
client sends the message again later, as with any failed delivery.  If
it cannot be started at all, :meth:`DeliveryAgent.deliver` raises
:class:`AgentUnavailable` before it sends anything, so the caller can
deliver the message some other way.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from typing import Any

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


class _AgentProtocol(asyncio.SubprocessProtocol):
    """One started process: its results, and the end of its output."""

    def __init__(self, agent: DeliveryAgent) -> None:
        self.agent = agent
        self.reader = ResultReader()
        #: set once the process has exited and its pipes are closed
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 1:
            return
        try:
            results = self.reader.feed(data)
        except AgentError as exc:
            self.agent._broken(self, exc)
            return
        for job_id, delivered, text in results:
            self.agent._result(self, job_id, delivered, text)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        # The end of its output, not process_exited(), says the process is
        # gone: asyncio may report the exit before the last results.
        if fd == 1:
            self.agent._broken(self, AgentError("the delivery process ended"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class DeliveryAgent(shared.AgentClient):
    """Deliveries into the Maildir at *path* by a child process (see
    :class:`~protomata.sync._deliveryagent.AgentClient` for *threads*)."""

    def __init__(self, path: str, hostname: str, threads: int | None = None) -> None:
        super().__init__(path, hostname, threads)
        self._transport: asyncio.SubprocessTransport | None = None
        self._protocol: _AgentProtocol | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._pending: dict[int, asyncio.Future[str]] = {}
        self._starting: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._transport.get_pid() if self._transport is not None else None

    async def start(self) -> None:
        if self._closed:
            raise AgentUnavailable("the delivery agent is closed")
        if self._starting is not None:  # another task is starting it
            await asyncio.shield(self._starting)
            return
        loop = asyncio.get_running_loop()
        self._starting = loop.create_future()
        try:
            await self._start(loop)
        except BaseException as exc:
            self._starting.set_exception(exc)
            self._starting.exception()  # retrieved: the waiters, if any, re-raise it
            raise
        else:
            self._starting.set_result(None)
        finally:
            self._starting = None

    async def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        ready: asyncio.Future[str] = loop.create_future()
        self._pending[READY] = ready
        program, *args = self.command()
        try:
            transport, _ = await loop.subprocess_exec(
                self._new_protocol,
                program,
                *args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,
                env=agent_environment(),
            )
        # OSError: no such program; NotImplementedError: a loop without
        # subprocess support (asyncio's selector loop on Windows).
        except (OSError, NotImplementedError, ValueError) as exc:
            self._pending.pop(READY, None)
            self._protocol = None
            raise AgentUnavailable(f"cannot start the delivery process: {exc}") from exc
        self._transport = transport
        self._stdin = transport.get_pipe_transport(0)  # type: ignore[assignment]
        # Results are a few dozen bytes.  asyncio's pipe transport reads up to
        # max_size (256 KiB) at a time, a fresh bytes object each time, which
        # glibc serves with mmap and munmap; a smaller read is a heap block.
        stdout: Any = transport.get_pipe_transport(1)
        if isinstance(getattr(stdout, "max_size", None), int):
            stdout.max_size = shared.RESULT_READ_SIZE
        try:
            await asyncio.wait_for(ready, shared.START_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            protocol = self._protocol
            if isinstance(exc, TimeoutError):  # hung (a failure report ends it)
                with contextlib.suppress(ProcessLookupError):
                    transport.kill()
            self._forget()
            if protocol is not None:  # let it go before saying so
                await asyncio.wait({protocol.closed}, timeout=5.0)
            transport.close()
            raise AgentUnavailable(f"the delivery process did not start: {exc}") from exc

    def _new_protocol(self) -> _AgentProtocol:
        # Registered at once: its first results may come before
        # subprocess_exec() returns.
        protocol = self._protocol = _AgentProtocol(self)
        return protocol

    async def deliver(self, content: bytes) -> str:
        if self._stdin is None:
            await self.start()
        stdin = self._stdin
        if stdin is None or stdin.is_closing():
            raise AgentUnavailable("the delivery process is not running")
        job_id = next(self._ids)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[job_id] = future
        stdin.write(encode_job(job_id, content))
        try:
            return await future
        finally:
            self._pending.pop(job_id, None)

    def _result(self, protocol: _AgentProtocol, job_id: int, delivered: bool, text: str) -> None:
        if protocol is not self._protocol:
            return
        future = self._pending.pop(job_id, None)
        if future is None or future.done():
            return
        if delivered:
            future.set_result(text)
        else:
            future.set_exception(OSError(f"delivery failed: {text}"))

    def _broken(self, protocol: _AgentProtocol, error: OSError) -> None:
        """The process ended or garbled its output: fail its jobs, forget it."""
        if protocol is not self._protocol:
            return
        self._forget()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    def _forget(self) -> None:
        """Stop using the current process; it ends once its input is closed."""
        transport, protocol, stdin = self._transport, self._protocol, self._stdin
        self._transport = self._protocol = self._stdin = None
        if stdin is not None:
            stdin.close()
        if transport is not None and protocol is not None:
            # Closed once asyncio has seen the process exit: closing the
            # transport of a running process would kill it, and polling it
            # would reap it behind the child watcher's back.
            protocol.closed.add_done_callback(lambda _: transport.close())

    async def close(self, timeout: float = 30.0) -> None:
        self._closed = True
        transport, protocol, stdin = self._transport, self._protocol, self._stdin
        if transport is None or protocol is None:
            return
        if stdin is not None:
            stdin.close()  # the process finishes its jobs and exits
        try:
            await asyncio.wait_for(asyncio.shield(protocol.closed), timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                transport.kill()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.closed), 5.0)
        self._broken(protocol, AgentError("the delivery agent is closed"))
        transport.close()
