"""The asyncio SMTP sink and POP3 server.

Everything but the event loop comes from :mod:`protomata.sync._asyncmail`
(shared with the other async adapter); this module supplies worker threads
for file work (:class:`~protomata.asyncio._threads.WorkerThreads`, one set
per server, closed when it shuts down) and the asyncio runner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._core._ops import Call, Operation
from ..sync._asyncmail import AsyncPOP3Service, AsyncSMTPSink, logger
from ..sync._maildir import Maildir
from ._deliveryagent import AgentUnavailable, DeliveryAgent
from ._runner import run
from ._server import TCPServer
from ._threads import WorkerThreads

__all__ = ["POP3Server", "SMTPServer"]


class _Loop:
    """The asyncio side of the shared mail servers: file work and the runner."""

    _threads: WorkerThreads | None = None

    async def _to_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        threads = self._threads
        if threads is None:
            threads = self._threads = WorkerThreads()
        return await threads.run(func, *args)

    async def on_shutdown(self) -> None:
        """End the worker threads.  A subclass overriding it must await
        ``super().on_shutdown()``."""
        await super().on_shutdown()  # type: ignore[misc]
        if self._threads is not None:
            self._threads.close()
            self._threads = None

    async def _run(self, op: Operation[Any], stream: Any, on_call: Callable[[Call], Any]) -> Any:
        return await run(op, stream, on_call)


class SMTPServer(_Loop, AsyncSMTPSink, TCPServer):
    __doc__ = AsyncSMTPSink.__doc__

    #: Deliver into the Maildir from a child process (the default) rather
    #: than from worker threads; see :mod:`protomata.sync._deliveryagent`.
    #: Set it to False before the server starts to keep all file work in
    #: this process.  Without a usable child process (no ``sys.executable``,
    #: a loop without subprocess support) the server falls back to threads.
    delivery_process: bool = True
    _agent: DeliveryAgent | None = None

    async def on_startup(self) -> None:
        await super().on_startup()
        maildir = self.maildir
        if not self.delivery_process or maildir is None or self._message != self._store:
            return
        agent = DeliveryAgent(maildir.path, maildir.hostname)
        try:
            await agent.start()
        except AgentUnavailable as exc:
            logger.warning("%s; delivering in worker threads", exc)
        else:
            self._agent = agent

    async def _deliver(self, maildir: Maildir, content: bytes) -> None:
        agent = self._agent
        if agent is not None:
            try:
                await agent.deliver(content)
                return
            except AgentUnavailable as exc:  # nothing was sent: threads from now on
                logger.warning("%s; delivering in worker threads", exc)
                if self._agent is agent:
                    self._agent = None
        await super()._deliver(maildir, content)

    async def on_shutdown(self) -> None:
        agent, self._agent = self._agent, None
        if agent is not None:
            await agent.close()
        await super().on_shutdown()


class POP3Server(_Loop, AsyncPOP3Service, TCPServer):
    __doc__ = AsyncPOP3Service.__doc__
