"""SMTP and LMTP as sans-I/O state machines (RFC 5321, RFC 2033).

Client and server are one :class:`Connection` class built with a role,
with h11's shape: ``receive_data(bytes)`` (``b""`` = EOF), ``next_event()``
returning an event, ``NEED_DATA`` or ``PAUSED``, and ``send(event) -> bytes``.
Extensions covered: PIPELINING, CHUNKING (BDAT), STARTTLS, AUTH, SIZE,
8BITMIME, SMTPUTF8, DSN and ENHANCEDSTATUSCODES (as parameters and reply
fields; their meaning beyond framing is the application's).
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
from ._connection import DEFAULT_MAX_COMMAND_LENGTH, DEFAULT_MAX_LINE_LENGTH, Connection, State
from ._events import (
    Auth,
    AuthContinuation,
    BadCommand,
    Bdat,
    ConnectionClosed,
    Data,
    DataChunk,
    Ehlo,
    EndOfData,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SMTPEvent,
    StartTLS,
    Vrfy,
)
from ._extensions import Extensions
from ._operations import SMTPError, SMTPRecipientsRefused, read_reply, send_mail
from ._server import Envelope, SessionSettings, serve_session

__all__ = [
    "CLIENT",
    "DEFAULT_MAX_COMMAND_LENGTH",
    "DEFAULT_MAX_LINE_LENGTH",
    "NEED_DATA",
    "PAUSED",
    "SERVER",
    "Auth",
    "AuthContinuation",
    "BadCommand",
    "Bdat",
    "Connection",
    "ConnectionClosed",
    "Data",
    "DataChunk",
    "Ehlo",
    "EndOfData",
    "Envelope",
    "Expn",
    "Extensions",
    "Helo",
    "Help",
    "Lhlo",
    "LocalProtocolError",
    "MailFrom",
    "Noop",
    "ProtocolError",
    "Quit",
    "RcptTo",
    "RemoteProtocolError",
    "Reply",
    "Role",
    "Rset",
    "SMTPError",
    "SMTPEvent",
    "SMTPRecipientsRefused",
    "Sentinel",
    "SentinelType",
    "SessionSettings",
    "StartTLS",
    "State",
    "Vrfy",
    "read_reply",
    "send_mail",
    "serve_session",
]
