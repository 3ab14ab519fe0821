"""Shared machinery of all protomata protocol machines.

Nothing here does I/O.  Protocol packages build on these pieces; users see
them re-exported from :mod:`protomata` and from each protocol package.
"""

from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._events import Event
from ._receivebuffer import ReceiveBuffer
from ._roles import CLIENT, SERVER, Role
from ._sentinels import NEED_DATA, PAUSED, Sentinel, SentinelType

__all__ = [
    "CLIENT",
    "NEED_DATA",
    "PAUSED",
    "SERVER",
    "Event",
    "LocalProtocolError",
    "ProtocolError",
    "ReceiveBuffer",
    "RemoteProtocolError",
    "Role",
    "Sentinel",
    "SentinelType",
]
