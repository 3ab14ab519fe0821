"""The trio POP3 client: the shared async client over trio streams.

Everything but the transport is :class:`protomata.sync._pop3client.AsyncPOP3ClientBase`
(and the pure operations behind it).
"""

from __future__ import annotations

from ..pop3._client import POP3Error
from ..sync._pop3client import AsyncPOP3ClientBase
from ._runner import run
from ._stream import connect_tcp

__all__ = ["POP3Client", "POP3Error"]


class POP3Client(AsyncPOP3ClientBase):
    """A trio POP3 session; ``async with POP3Client(host, port) as client: ...``.

    Entering connects, reads the greeting and does STLS if asked; leaving
    sends QUIT (committing deletions), or after an error just closes.
    Same parameters and methods as the blocking ``protomata.sync.POP3Client``,
    awaited; :meth:`iter_retrieve` is an async iterator.
    """

    _connect_tcp = staticmethod(connect_tcp)
    _runner = staticmethod(run)
