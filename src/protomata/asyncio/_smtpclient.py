"""The asyncio SMTP/LMTP client: :class:`SMTPClient`, with ``async with``.

The session is :class:`~protomata.sync._mailclients.AsyncSMTPClientBase`,
shared with the trio client; this class gives it asyncio's ``connect_tcp``,
runner and close.
"""

from __future__ import annotations

import contextlib

from ..smtp._operations import SendResult, SMTPError, SMTPRecipientsRefused
from ..sync._mailclients import AsyncSMTPClientBase
from ._runner import run
from ._stream import Stream, connect_tcp

__all__ = ["SMTPClient", "SMTPError", "SMTPRecipientsRefused", "SendResult"]


class SMTPClient(AsyncSMTPClientBase):
    __doc__ = AsyncSMTPClientBase.__doc__

    _connect_tcp = staticmethod(connect_tcp)
    _runner = staticmethod(run)

    async def _drop(self, stream: Stream) -> None:
        stream.close()
        with contextlib.suppress(OSError):
            await stream.aclose()
