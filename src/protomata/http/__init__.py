"""HTTP/1.0 and HTTP/1.1 as a sans-I/O state machine (RFC 9110, RFC 9112).

The API is h11's: code written for h11 works after changing the import.
See the HTTP guide in the documentation for what differs.
"""

from .._core import (
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
from ._connection import DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_INCOMPLETE_EVENT_SIZE, Connection
from ._events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    HTTPEvent,
    InformationalResponse,
    Request,
    Response,
)
from ._headers import FieldInfo, Headers
from ._state import (
    CLOSED,
    DONE,
    ERROR,
    IDLE,
    MIGHT_SWITCH_PROTOCOL,
    MUST_CLOSE,
    SEND_BODY,
    SEND_RESPONSE,
    SWITCHED_PROTOCOL,
    State,
)

#: Identifies this implementation (h11 offers the same name).
PRODUCT_ID = "protomata/0.1.0"

__all__ = [
    "CLIENT",
    "CLOSED",
    "DEFAULT_MAX_HEADER_COUNT",
    "DEFAULT_MAX_INCOMPLETE_EVENT_SIZE",
    "DONE",
    "ERROR",
    "IDLE",
    "MIGHT_SWITCH_PROTOCOL",
    "MUST_CLOSE",
    "NEED_DATA",
    "PAUSED",
    "PRODUCT_ID",
    "SEND_BODY",
    "SEND_RESPONSE",
    "SERVER",
    "SWITCHED_PROTOCOL",
    "Connection",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "FieldInfo",
    "HTTPEvent",
    "Headers",
    "InformationalResponse",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Request",
    "Response",
    "Role",
    "Sentinel",
    "SentinelType",
    "State",
]
