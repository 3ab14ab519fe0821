"""The loop-agnostic halves of the asyncio and trio mail servers.

The dialogues are :func:`protomata.smtp._server.serve_session` and
:func:`protomata.pop3._server.serve_session`; these mixins only carry out
their calls.  Every file operation (creating the Maildir, delivering,
listing, reading and deleting messages) runs in a worker thread through the
adapter's ``_to_thread``, so the event loop never waits on the disk,
except that messages go to the Maildir through a delivery process when
the adapter can start one (``_start_agent``).  Each
async adapter combines a mixin with its own ``TCPServer`` and supplies
``_to_thread`` and ``_run`` (its runner); nothing here imports an event
loop.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..smtp._events import Reply
from ..smtp._maildir import maildir_content
from ..smtp._server import Envelope
from ._deliveryagent import AgentUnavailable
from ._maildir import Maildir
from ._mailservice import POP3ServiceBase, SMTPServiceBase

__all__ = ["AsyncPOP3Service", "AsyncSMTPSink"]

logger = logging.getLogger("protomata.smtp")


class AsyncSMTPSink(SMTPServiceBase):
    __doc__ = SMTPServiceBase.__doc__

    # Supplied by the adapter class that mixes this in.
    _to_thread: Callable[..., Awaitable[Any]]
    _run: Callable[..., Awaitable[Any]]

    #: the :class:`~protomata.sync._maildir.Maildir`, once the server started
    maildir: Maildir | None = None

    #: Deliver into the Maildir from a child process (see
    #: :mod:`protomata.sync._deliveryagent`) rather than from worker threads
    #: of this process, whose system calls would take the GIL from the event
    #: loop.  Set it to False before the server starts to keep all file work
    #: in this process.  Without a usable child process (no
    #: ``sys.executable``, a loop without subprocess support) the server
    #: logs a warning and uses threads.
    delivery_process: bool = True
    # The running delivery process's client (the adapter's DeliveryAgent).
    _agent: Any = None

    async def on_startup(self) -> None:
        """Create the Maildir (in a worker thread) before accepting connections,
        and start the delivery process.

        A subclass overriding it must await ``super().on_startup()``.
        """
        if self.maildir_path is not None and self.maildir is None:
            self.maildir = await self._to_thread(Maildir, self.maildir_path, self.hostname)
        maildir = self.maildir
        if self.delivery_process and maildir is not None and self._message == self._store:
            try:
                self._agent = await self._start_agent(maildir)
            except AgentUnavailable as exc:
                logger.warning("%s; delivering in worker threads", exc)

    async def on_shutdown(self) -> None:
        """End the delivery process once it has written what it was given.

        A subclass overriding it must await ``super().on_shutdown()``.
        """
        agent, self._agent = self._agent, None
        if agent is not None:
            await agent.close()
        await super().on_shutdown()  # type: ignore[misc]

    async def _start_agent(self, maildir: Maildir) -> Any:
        """A started delivery process client for *maildir* (the adapter's part)."""
        raise AgentUnavailable("this adapter has no delivery process")

    async def _store(self, envelope: Envelope, data: bytes) -> Reply | None:
        maildir = self.maildir
        if maildir is None:
            raise RuntimeError("the server has not started")
        content = maildir_content(envelope, data, maildir.hostname, self._received_date())
        await self._deliver(maildir, content)
        return None

    async def _deliver(self, maildir: Maildir, content: bytes) -> None:
        """Write one message's file: by the delivery process, else in a thread."""
        agent = self._agent
        if agent is not None:
            try:
                await agent.deliver(content)
                return
            except AgentUnavailable as exc:  # nothing was sent: threads from now on
                logger.warning("%s; delivering in worker threads", exc)
                if self._agent is agent:
                    self._agent = None
        await self._to_thread(maildir.deliver, content)

    async def _invoke(self, name: str, method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        try:
            result = method(*args)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            logger.exception("the SMTP handler's %s() failed", name)
            raise
        return result

    async def handle_connection(self, stream: Any) -> None:
        """Serve one SMTP (or LMTP) session on *stream*."""
        await self._run(self._session(stream), stream, self._on_call)


class AsyncPOP3Service(POP3ServiceBase):
    __doc__ = POP3ServiceBase.__doc__

    # Supplied by the adapter class that mixes this in.
    _to_thread: Callable[..., Awaitable[Any]]
    _run: Callable[..., Awaitable[Any]]

    def _file_work(self, func: Callable[..., Any], *args: Any) -> Any:
        return self._to_thread(func, *args)  # the lock set is only touched on the loop

    async def handle_connection(self, stream: Any) -> None:
        """Run one POP3 session over *stream*."""
        session, on_call, held = self._session(stream)
        try:
            await self._run(session, stream, on_call)
        finally:
            for name in held:
                self._release_mailbox(name)
