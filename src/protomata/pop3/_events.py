"""POP3 events: commands (client to server) and replies (server to client).

Constructors validate what users build, so nothing we are asked to send can
smuggle a line break (CR, LF) or NUL onto the wire: they raise
:class:`LocalProtocolError`.  Parsers create events through the unvalidated
builders after checking the bytes themselves.

Text fields are :class:`str`.  On the wire they are UTF-8; bytes the peer
sends that are not UTF-8 arrive as lone surrogates (``surrogateescape``)
and are written back unchanged, so nothing is lost either way.

Multi-line replies come in two forms:

* the bodies of RETR and TOP are streamed: :class:`MultilineStart` (the
  ``+OK`` line), any number of :class:`MultilineData` (the dot-unstuffed
  content, CRLF line ends kept, split anywhere), :class:`MultilineEnd`;
* the short listings are parsed into one event each: :class:`ScanListing`
  (LIST), :class:`UidListing` (UIDL) and :class:`Capabilities` (CAPA).
"""

from __future__ import annotations

import re
from typing import TypeAlias

from .._core import Event, LocalProtocolError

__all__ = [
    "Apop",
    "Auth",
    "AuthCancel",
    "AuthChallenge",
    "AuthContinuation",
    "Capa",
    "Capabilities",
    "Command",
    "ConnectionClosed",
    "Dele",
    "Err",
    "Greeting",
    "List",
    "MultilineData",
    "MultilineEnd",
    "MultilineStart",
    "Noop",
    "Ok",
    "POP3Event",
    "Pass",
    "Quit",
    "Reply",
    "Retr",
    "Rset",
    "ScanListing",
    "Stat",
    "Stls",
    "Top",
    "UidListing",
    "Uidl",
    "User",
    "Utf8",
]

_set = object.__setattr__
_FORBIDDEN = re.compile(r"[\r\n\x00]")
# RFC 2449 section 6.4 / RFC 4422: SASL mechanism names.
_MECHANISM = re.compile(r"[A-Z0-9_-]{1,20}")
# RFC 1939 section 7: a unique-id is 1 to 70 characters in 0x21..0x7E.
_UID = re.compile(r"[\x21-\x7e]{1,70}")
# RFC 1939 section 7: the timestamp is a msg-id, printable ASCII in brackets
# (APOP digests it as bytes, so nothing else could be used anyway).
_TIMESTAMP = re.compile(r"<[\x21-\x3b=\x3f-\x7e]*>")


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be str, not {type(value).__name__}")
    if _FORBIDDEN.search(value):
        raise LocalProtocolError(f"{what} must not contain CR, LF or NUL: {value!r}")
    return value


def _word(value: object, what: str) -> str:
    value = _text(value, what)
    if not value or " " in value:
        raise LocalProtocolError(f"{what} must be non-empty without spaces: {value!r}")
    return value


def _number(value: object, what: str, minimum: int = 1) -> int:
    if type(value) is not int or value < minimum:
        raise LocalProtocolError(f"{what} must be an int >= {minimum}, not {value!r}")
    return value


def _blob(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise LocalProtocolError(f"{what} must be bytes, not {type(value).__name__}")
    return bytes(value)


# -- commands -----------------------------------------------------------------


class Command(Event):
    """Base class of the commands a client sends."""

    __slots__ = ()
    #: The command keyword on the wire.
    keyword = ""


class _NoArgs(Command):
    __slots__ = ()

    def __init__(self) -> None:
        pass


class User(Command):
    """``USER name``: the first half of plain login (RFC 1939 section 7)."""

    __slots__ = ("name",)
    _fields = ("name",)
    __match_args__ = ("name",)
    keyword = "USER"
    name: str

    def __init__(self, name: str) -> None:
        name = _text(name, "user name")
        if not name:
            raise LocalProtocolError("user name must not be empty")
        _set(self, "name", name)


class Pass(Command):
    """``PASS password``: the second half of plain login.

    The password is the rest of the line, so it may contain spaces.
    """

    __slots__ = ("password",)
    _fields = ("password",)
    __match_args__ = ("password",)
    keyword = "PASS"
    password: str

    def __init__(self, password: str) -> None:
        _set(self, "password", _text(password, "password"))

    def __repr__(self) -> str:
        return "Pass(password=<hidden>)"


class Apop(Command):
    """``APOP name digest``: login with :func:`apop_digest` (RFC 1939 section 7)."""

    __slots__ = ("digest", "name")
    _fields = ("name", "digest")
    __match_args__ = ("name", "digest")
    keyword = "APOP"
    name: str
    digest: str

    def __init__(self, name: str, digest: str) -> None:
        _set(self, "name", _word(name, "user name"))
        _set(self, "digest", _word(digest, "digest"))


class Stat(_NoArgs):
    """``STAT``: ask for the message count and mailbox size."""

    __slots__ = ()
    keyword = "STAT"


class List(Command):
    """``LIST [msg]``: one message's size, or (no *msg*) a :class:`ScanListing`."""

    __slots__ = ("msg",)
    _fields = ("msg",)
    __match_args__ = ("msg",)
    keyword = "LIST"
    msg: int | None

    def __init__(self, msg: int | None = None) -> None:
        _set(self, "msg", None if msg is None else _number(msg, "message number"))


class Retr(Command):
    """``RETR msg``: fetch a whole message (a streamed multi-line reply)."""

    __slots__ = ("msg",)
    _fields = ("msg",)
    __match_args__ = ("msg",)
    keyword = "RETR"
    msg: int

    def __init__(self, msg: int) -> None:
        _set(self, "msg", _number(msg, "message number"))


class Dele(Command):
    """``DELE msg``: mark a message deleted."""

    __slots__ = ("msg",)
    _fields = ("msg",)
    __match_args__ = ("msg",)
    keyword = "DELE"
    msg: int

    def __init__(self, msg: int) -> None:
        _set(self, "msg", _number(msg, "message number"))


class Noop(_NoArgs):
    """``NOOP``: do nothing."""

    __slots__ = ()
    keyword = "NOOP"


class Rset(_NoArgs):
    """``RSET``: unmark all messages marked deleted."""

    __slots__ = ()
    keyword = "RSET"


class Quit(_NoArgs):
    """``QUIT``: end the session (deleting marked messages in TRANSACTION)."""

    __slots__ = ()
    keyword = "QUIT"


class Top(Command):
    """``TOP msg lines``: the header and the first *lines* body lines."""

    __slots__ = ("lines", "msg")
    _fields = ("msg", "lines")
    __match_args__ = ("msg", "lines")
    keyword = "TOP"
    msg: int
    lines: int

    def __init__(self, msg: int, lines: int) -> None:
        _set(self, "msg", _number(msg, "message number"))
        _set(self, "lines", _number(lines, "line count", 0))


class Uidl(Command):
    """``UIDL [msg]``: one message's unique id, or (no *msg*) a :class:`UidListing`."""

    __slots__ = ("msg",)
    _fields = ("msg",)
    __match_args__ = ("msg",)
    keyword = "UIDL"
    msg: int | None

    def __init__(self, msg: int | None = None) -> None:
        _set(self, "msg", None if msg is None else _number(msg, "message number"))


class Capa(_NoArgs):
    """``CAPA``: ask for the server's :class:`Capabilities` (RFC 2449)."""

    __slots__ = ()
    keyword = "CAPA"


class Stls(_NoArgs):
    """``STLS``: upgrade to TLS (RFC 2595 section 4)."""

    __slots__ = ()
    keyword = "STLS"


class Utf8(_NoArgs):
    """``UTF8``: switch to UTF-8 mode (RFC 6856)."""

    __slots__ = ()
    keyword = "UTF8"


class Auth(Command):
    """``AUTH mechanism [initial-response]``: SASL login (RFC 5034).

    *initial_response* is the raw (not base64) data; ``None`` sends none,
    ``b""`` sends the empty response (``=`` on the wire).
    """

    __slots__ = ("initial_response", "mechanism")
    _fields = ("mechanism", "initial_response")
    __match_args__ = ("mechanism", "initial_response")
    keyword = "AUTH"
    mechanism: str
    initial_response: bytes | None

    def __init__(self, mechanism: str, initial_response: bytes | None = None) -> None:
        mechanism = _text(mechanism, "mechanism").upper()
        if not _MECHANISM.fullmatch(mechanism):
            raise LocalProtocolError(f"invalid SASL mechanism name {mechanism!r}")
        _set(self, "mechanism", mechanism)
        _set(
            self,
            "initial_response",
            None if initial_response is None else _blob(initial_response, "initial response"),
        )

    def __repr__(self) -> str:
        shown = "None" if self.initial_response is None else "<hidden>"
        return f"Auth(mechanism={self.mechanism!r}, initial_response={shown})"


class AuthContinuation(Command):
    """The client's answer to an :class:`AuthChallenge` (raw data, sent base64)."""

    __slots__ = ("data",)
    _fields = ("data",)
    __match_args__ = ("data",)
    data: bytes

    def __init__(self, data: bytes) -> None:
        _set(self, "data", _blob(data, "SASL response"))

    def __repr__(self) -> str:
        return "AuthContinuation(data=<hidden>)"


class AuthCancel(_NoArgs):
    """``*``: the client abandons a SASL exchange (RFC 5034 section 4)."""

    __slots__ = ()


# -- replies --------------------------------------------------------------------


class _TextReply(Event):
    __slots__ = ("text",)
    _fields = ("text",)
    __match_args__ = ("text",)
    text: str

    def __init__(self, text: str = "") -> None:
        _set(self, "text", _text(text, "reply text"))

    @property
    def code(self) -> str | None:
        """The RFC 2449 extended response code (``IN-USE`` ...), if any."""
        if self.text.startswith("["):
            end = self.text.find("]")
            if end > 1:
                return self.text[1:end]
        return None


class Greeting(_TextReply):
    """The server's ``+OK`` greeting."""

    __slots__ = ()

    @property
    def timestamp(self) -> str | None:
        """The APOP timestamp (``<...>``, brackets included), if the greeting has one."""
        match = _TIMESTAMP.search(self.text)
        return match.group() if match else None


class Ok(_TextReply):
    """A single-line ``+OK text`` reply."""

    __slots__ = ()


class Err(_TextReply):
    """An ``-ERR text`` reply (to any command, single-line)."""

    __slots__ = ()


class MultilineStart(_TextReply):
    """The ``+OK text`` line that opens the body of a RETR or TOP reply."""

    __slots__ = ()


class MultilineData(Event):
    """A piece of a multi-line body, dot-unstuffed, with CRLF line ends."""

    __slots__ = ("data",)
    _fields = ("data",)
    __match_args__ = ("data",)
    data: bytes

    def __init__(self, data: bytes) -> None:
        _set(self, "data", _blob(data, "data"))


class MultilineEnd(Event):
    """The end (``.`` line) of a multi-line body."""

    __slots__ = ()

    def __init__(self) -> None:
        pass


class ScanListing(Event):
    """The reply to ``LIST`` without argument: ``(msg, size)`` pairs."""

    __slots__ = ("entries", "text")
    _fields = ("entries", "text")
    __match_args__ = ("entries", "text")
    entries: tuple[tuple[int, int], ...]
    text: str

    def __init__(self, entries: object = (), text: str = "") -> None:
        checked = []
        for entry in entries:  # type: ignore[attr-defined]
            msg, size = entry
            checked.append((_number(msg, "message number"), _number(size, "size", 0)))
        _set(self, "entries", tuple(checked))
        _set(self, "text", _text(text, "reply text"))


class UidListing(Event):
    """The reply to ``UIDL`` without argument: ``(msg, unique_id)`` pairs."""

    __slots__ = ("entries", "text")
    _fields = ("entries", "text")
    __match_args__ = ("entries", "text")
    entries: tuple[tuple[int, str], ...]
    text: str

    def __init__(self, entries: object = (), text: str = "") -> None:
        checked = []
        for entry in entries:  # type: ignore[attr-defined]
            msg, uid = entry
            if not isinstance(uid, str) or not _UID.fullmatch(uid):
                raise LocalProtocolError(f"invalid unique-id {uid!r}")
            checked.append((_number(msg, "message number"), uid))
        _set(self, "entries", tuple(checked))
        _set(self, "text", _text(text, "reply text"))


class Capabilities(Event):
    """The reply to ``CAPA``: one string per capability line (``"SASL PLAIN"``)."""

    __slots__ = ("capabilities", "text")
    _fields = ("capabilities", "text")
    __match_args__ = ("capabilities", "text")
    capabilities: tuple[str, ...]
    text: str

    def __init__(self, capabilities: object = (), text: str = "") -> None:
        caps = tuple(_text(c, "capability") for c in capabilities)  # type: ignore[attr-defined]
        for cap in caps:
            if not cap or cap.startswith("."):
                raise LocalProtocolError(f"invalid capability line {cap!r}")
        _set(self, "capabilities", caps)
        _set(self, "text", _text(text, "reply text"))

    def __contains__(self, name: object) -> bool:
        """Whether a capability with tag *name* (case-insensitive) is listed."""
        if not isinstance(name, str):
            return False
        wanted = name.upper()
        return any(cap.split(" ", 1)[0].upper() == wanted for cap in self.capabilities)

    def arguments(self, name: str) -> tuple[str, ...] | None:
        """The parameters of capability *name* (``SASL`` -> mechanisms), or None."""
        wanted = name.upper()
        for cap in self.capabilities:
            tag, *params = cap.split(" ")
            if tag.upper() == wanted:
                return tuple(p for p in params if p)
        return None


class AuthChallenge(Event):
    """A SASL server challenge (``+ base64``), raw data."""

    __slots__ = ("data",)
    _fields = ("data",)
    __match_args__ = ("data",)
    data: bytes

    def __init__(self, data: bytes = b"") -> None:
        _set(self, "data", _blob(data, "SASL challenge"))


class ConnectionClosed(Event):
    """The peer closed the connection (EOF at a message boundary)."""

    __slots__ = ()

    def __init__(self) -> None:
        pass


#: A reply a server sends (an event a client receives).
Reply: TypeAlias = (
    Greeting
    | Ok
    | Err
    | MultilineStart
    | MultilineData
    | MultilineEnd
    | ScanListing
    | UidListing
    | Capabilities
    | AuthChallenge
)
#: Anything ``next_event()`` can return besides a sentinel.
POP3Event: TypeAlias = Command | Reply | ConnectionClosed

#: The reply classes, for isinstance checks.
REPLY_TYPES = (
    Greeting,
    Ok,
    Err,
    MultilineStart,
    MultilineData,
    MultilineEnd,
    ScanListing,
    UidListing,
    Capabilities,
    AuthChallenge,
)
