"""The asyncio SMTP sink and POP3 server.

Everything but the event loop comes from :mod:`protomata.sync._asyncmail`
(shared with the other async adapter); this module supplies :func:`asyncio.to_thread`
for file work and the asyncio runner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .._core._ops import Call, Operation
from ..sync._asyncmail import AsyncPOP3Service, AsyncSMTPSink
from ._runner import run
from ._server import TCPServer

__all__ = ["POP3Server", "SMTPServer"]


class _Loop:
    """The asyncio side of the shared mail servers: file work and the runner."""

    async def _to_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(func, *args)

    async def _run(self, op: Operation[Any], stream: Any, on_call: Callable[[Call], Any]) -> Any:
        return await run(op, stream, on_call)


class SMTPServer(_Loop, AsyncSMTPSink, TCPServer):
    __doc__ = AsyncSMTPSink.__doc__


class POP3Server(_Loop, AsyncPOP3Service, TCPServer):
    __doc__ = AsyncPOP3Service.__doc__
