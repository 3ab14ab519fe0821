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
from ..sync._asyncmail import AsyncPOP3Service, AsyncSMTPSink
from ..sync._maildir import Maildir
from ._deliveryagent import DeliveryAgent
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

    async def _start_agent(self, maildir: Maildir) -> DeliveryAgent:
        agent = DeliveryAgent(maildir.path, maildir.hostname)
        await agent.start()
        return agent


class POP3Server(_Loop, AsyncPOP3Service, TCPServer):
    __doc__ = AsyncPOP3Service.__doc__
