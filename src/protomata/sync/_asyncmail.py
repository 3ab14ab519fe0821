"""The loop-agnostic halves of the asyncio and trio mail servers.

The dialogues are :func:`protomata.smtp._server.serve_session` and
:func:`protomata.pop3._server.serve_session`; these mixins only carry out
their calls.  Every file operation (creating the Maildir, delivering,
listing, reading and deleting messages) runs in a worker thread through the
adapter's ``_to_thread``, so the event loop never waits on the disk.  Each
async adapter combines a mixin with its own ``TCPServer`` and supplies
``_to_thread`` and ``_run`` (its runner); nothing here imports an event
loop.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..smtp._events import Reply
from ..smtp._maildir import maildir_content
from ..smtp._server import Envelope
from ._maildir import Maildir
from ._mailservice import POP3ServiceBase, SMTPServiceBase

__all__ = ["AsyncPOP3Service", "AsyncSMTPSink"]

logger = logging.getLogger("protomata.smtp")


class _Event(Protocol):
    """What both ``asyncio.Event`` and ``trio.Event`` offer."""

    def set(self) -> None: ...

    async def wait(self) -> Any: ...


class _Slot:
    """One message waiting for its group to be written."""

    __slots__ = ("content", "event", "lead", "outcome")

    def __init__(self, content: bytes, event: _Event) -> None:
        self.content = content
        self.event = event
        self.lead = False  # handed the next group to write, not yet written
        self.outcome: str | BaseException | None = None


class _GroupCommit:
    """Maildir deliveries in groups: one worker-thread hop and one ``new/`` fsync each.

    While one group is being written (in a worker thread, through the
    adapter's *to_thread*), the messages that arrive wait in ``pending``;
    when the group is done, its sessions are woken and the first pending
    session writes everything that waits by then as the next group.  Under
    load this turns a thread hop, a loop wake-up and an fsync of ``new/``
    per message into one per group, which is what made the asyncio sink
    faster in bench/smtp_bench.py (docs/performance.rst); with one message
    at a time it is the plain delivery.  Only the event loop's thread
    touches this object.
    """

    def __init__(
        self,
        maildir: Maildir,
        to_thread: Callable[..., Awaitable[Any]],
        new_event: Callable[[], _Event],
    ) -> None:
        self.maildir = maildir
        self._to_thread = to_thread
        self._new_event = new_event
        self._pending: list[_Slot] = []
        self._busy = False

    async def deliver(self, content: bytes) -> str:
        """Store *content* durably (see :meth:`Maildir.deliver_many`); its path."""
        slot = _Slot(content, self._new_event())
        self._pending.append(slot)
        if self._busy:
            await slot.event.wait()
            if slot.lead:
                await self._write_group()
        else:
            self._busy = True
            await self._write_group()
        if isinstance(slot.outcome, BaseException):
            raise slot.outcome
        assert slot.outcome is not None
        return slot.outcome

    async def _write_group(self) -> None:
        group, self._pending = self._pending, []
        outcomes: list[str | BaseException]
        try:
            outcomes = list(
                await self._to_thread(self.maildir.deliver_many, [s.content for s in group])
            )
        except BaseException as exc:
            # Cancelled (or the thread could not start): the group may or may
            # not be on disk, so its sessions answer a temporary failure.
            failure = OSError(f"delivery interrupted: {exc!r}")
            outcomes = [failure] * len(group)
            raise
        finally:
            for slot, outcome in zip(group, outcomes, strict=True):
                slot.outcome = outcome
                slot.event.set()
            if self._pending:
                successor = self._pending[0]
                successor.lead = True
                successor.event.set()
            else:
                self._busy = False


class AsyncSMTPSink(SMTPServiceBase):
    __doc__ = SMTPServiceBase.__doc__

    # Supplied by the adapter class that mixes this in.
    _to_thread: Callable[..., Awaitable[Any]]
    _run: Callable[..., Awaitable[Any]]
    _new_event: Callable[[], _Event]

    #: the :class:`~protomata.sync._maildir.Maildir`, once the server started
    maildir: Maildir | None = None
    _group: _GroupCommit | None = None

    async def on_startup(self) -> None:
        """Create the Maildir (in a worker thread) before accepting connections.

        A subclass overriding it must await ``super().on_startup()``.
        """
        if self.maildir_path is not None and self.maildir is None:
            self.maildir = await self._to_thread(Maildir, self.maildir_path, self.hostname)
        if self.maildir is not None and self._group is None:
            self._group = _GroupCommit(self.maildir, self._to_thread, self._new_event)

    async def _store(self, envelope: Envelope, data: bytes) -> Reply | None:
        group = self._group
        if group is None:
            raise RuntimeError("the server has not started")
        content = maildir_content(envelope, data, group.maildir.hostname, self._received_date())
        await group.deliver(content)
        return None

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
