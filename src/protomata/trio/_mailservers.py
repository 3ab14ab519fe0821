"""The trio SMTP sink and POP3 server.

Everything but the event loop comes from :mod:`protomata.sync._asyncmail`
(shared with the other async adapter); this module supplies :func:`trio.to_thread.run_sync`
for file work, the trio client of the delivery process and the trio runner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from .._core._ops import Call, Operation
from ..sync._asyncmail import AsyncPOP3Service, AsyncSMTPSink
from ..sync._maildir import Maildir
from ._deliveryagent import AgentUnavailable, DeliveryAgent
from ._runner import run
from ._server import TCPServer

__all__ = ["POP3Server", "SMTPServer"]


class _Loop:
    """The trio side of the shared mail servers: file work and the runner."""

    async def _to_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(func, *args)

    async def _run(self, op: Operation[Any], stream: Any, on_call: Callable[[Call], Any]) -> Any:
        return await run(op, stream, on_call)


class SMTPServer(_Loop, AsyncSMTPSink, TCPServer):
    __doc__ = AsyncSMTPSink.__doc__

    async def _start_agent(self, maildir: Maildir) -> DeliveryAgent:
        if self.services is None:
            raise AgentUnavailable("the server is not serving")
        agent = DeliveryAgent(maildir.path, maildir.hostname, self.services)
        await agent.start()
        return agent


class POP3Server(_Loop, AsyncPOP3Service, TCPServer):
    __doc__ = AsyncPOP3Service.__doc__
