"""protomata: sans-I/O state machines for the internet's classic protocols.

Each protocol lives in its own subpackage (``protomata.http``, ...) as a
pure bytes-in/events-out machine.  This top-level package holds what they
all share.
"""

from ._core import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    Role,
    Sentinel,
    SentinelType,
)

__version__ = "0.1.0"

__all__ = [
    "CLIENT",
    "NEED_DATA",
    "PAUSED",
    "SERVER",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Role",
    "Sentinel",
    "SentinelType",
    "__version__",
]
