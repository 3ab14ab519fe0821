"""SMTP events: commands, body pieces and replies (RFC 5321, 3030, 4954, 2033).

Text fields are ``str`` (SMTP commands are ASCII, or UTF-8 under SMTPUTF8);
body pieces are ``bytes``.  Constructors validate what users build: a CR,
LF or NUL in any argument raises :class:`LocalProtocolError`, so nothing we
send can inject a second command.  The parser builds events through
``_make_event`` after validating the bytes itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .._core import Event, LocalProtocolError

__all__ = [
    "Auth",
    "AuthContinuation",
    "BadCommand",
    "Bdat",
    "ConnectionClosed",
    "Data",
    "DataChunk",
    "Ehlo",
    "EndOfData",
    "Expn",
    "Helo",
    "Help",
    "Lhlo",
    "MailFrom",
    "Noop",
    "Quit",
    "RcptTo",
    "Reply",
    "Rset",
    "SMTPEvent",
    "StartTLS",
    "Vrfy",
]

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
_PARAM_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_PARAM_VALUE = re.compile(r"[^\x00-\x20=\x7f]+")
_REPLY_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ENHANCED = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")
_set = object.__setattr__


def _text(value: str, what: str, *, empty_ok: bool = True, spaces_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be str, not {type(value).__name__}")
    if _FORBIDDEN.search(value):
        raise LocalProtocolError(f"{what} contains a control character (CR, LF, NUL ...)")
    if not empty_ok and not value:
        raise LocalProtocolError(f"{what} must not be empty")
    if not spaces_ok and " " in value:
        raise LocalProtocolError(f"{what} must not contain spaces")
    return value


Params = tuple[tuple[str, str | None], ...]


def _params(params: Iterable[tuple[str, str | None]] | dict[str, str | None]) -> Params:
    items = params.items() if isinstance(params, dict) else params
    out: list[tuple[str, str | None]] = []
    for key, value in items:
        if not isinstance(key, str) or not _PARAM_KEY.fullmatch(key):
            raise LocalProtocolError(f"invalid ESMTP parameter name {key!r}")
        if value is not None and (not isinstance(value, str) or not _PARAM_VALUE.fullmatch(value)):
            raise LocalProtocolError(f"invalid value for ESMTP parameter {key}: {value!r}")
        out.append((key, value))
    return tuple(out)


def address_problem(value: str) -> str | None:
    """Why ``<value>`` would not read back as *value*, or None if it would.

    Outside a quoted string (RFC 5321 4.1.2) ``<``, ``>`` and spaces are
    not allowed; inside one they are, and a backslash escapes the next
    character.  A leading ``@`` would be read as a source route.  The
    parser applies the same rule to what it accepts.
    """
    if value.startswith("@"):
        return "must not start with '@'"
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "<>":
            return "must be given without angle brackets"
        elif char == " ":
            return "contains a space"
    return "has an unterminated quoted string" if quoted else None


def reply_text_problem(line: str) -> bool:
    """Whether *line* has a control character other than HT.

    RFC 5321 4.2: reply text is HT, SP and printable characters (UTF-8
    under SMTPUTF8).  The parser refuses what the constructor refuses.
    """
    return _REPLY_FORBIDDEN.search(line) is not None


def _address(value: str) -> str:
    _text(value, "address")
    problem = address_problem(value)
    if problem is not None:
        raise LocalProtocolError(f"address {problem}: {value!r}")
    return value


class SMTPEvent(Event):
    """Base class of every SMTP event."""

    __slots__ = ()


class _Domain(SMTPEvent):
    __slots__ = ("domain",)
    _fields = ("domain",)
    __match_args__ = ("domain",)
    domain: str

    def __init__(self, domain: str) -> None:
        _set(self, "domain", _text(domain, "domain", empty_ok=False, spaces_ok=False))


class Ehlo(_Domain):
    """``EHLO domain``: open an ESMTP session (RFC 5321 4.1.1.1)."""

    __slots__ = ()


class Helo(_Domain):
    """``HELO domain``: open a plain SMTP session."""

    __slots__ = ()


class Lhlo(_Domain):
    """``LHLO domain``: open an LMTP session (RFC 2033)."""

    __slots__ = ()


class _Path(SMTPEvent):
    __slots__ = ("address", "params")
    _fields = ("address", "params")
    __match_args__ = ("address", "params")
    address: str
    params: Params

    def __init__(
        self,
        address: str,
        params: Iterable[tuple[str, str | None]] | dict[str, str | None] = (),
    ) -> None:
        _set(self, "address", _address(address))
        _set(self, "params", _params(params))


class MailFrom(_Path):
    """``MAIL FROM:<address> params``; ``address`` is ``""`` for the null path.

    ``params`` is a tuple of ``(keyword, value-or-None)`` pairs, such as
    ``(("SIZE", "1000"), ("BODY", "8BITMIME"))``.
    """

    __slots__ = ()


class RcptTo(_Path):
    """``RCPT TO:<address> params``."""

    __slots__ = ()

    def __init__(
        self,
        address: str,
        params: Iterable[tuple[str, str | None]] | dict[str, str | None] = (),
    ) -> None:
        if not address:
            raise LocalProtocolError("RCPT TO needs an address")
        super().__init__(address, params)


class _NoArgs(SMTPEvent):
    __slots__ = ()


class Data(_NoArgs):
    """``DATA``: the body follows (after a 354 reply) as DataChunk/EndOfData."""

    __slots__ = ()


class Rset(_NoArgs):
    """``RSET``: abort the mail transaction."""

    __slots__ = ()


class Quit(_NoArgs):
    """``QUIT``: end the session."""

    __slots__ = ()


class StartTLS(_NoArgs):
    """``STARTTLS`` (RFC 3207)."""

    __slots__ = ()


class EndOfData(_NoArgs):
    """The end of a DATA body (the ``.`` line)."""

    __slots__ = ()


class ConnectionClosed(_NoArgs):
    """The peer closed the connection at a clean point."""

    __slots__ = ()


class _Argument(SMTPEvent):
    __slots__ = ("argument",)
    _fields = ("argument",)
    __match_args__ = ("argument",)
    argument: str

    _required = False

    def __init__(self, argument: str = "") -> None:
        _set(self, "argument", _text(argument, "argument", empty_ok=not self._required))


class Noop(_Argument):
    """``NOOP [string]``."""

    __slots__ = ()


class Help(_Argument):
    """``HELP [topic]``."""

    __slots__ = ()


class Vrfy(_Argument):
    """``VRFY string``."""

    __slots__ = ()
    _required = True


class Expn(_Argument):
    """``EXPN string``."""

    __slots__ = ()
    _required = True


class DataChunk(SMTPEvent):
    """A piece of the message body: unstuffed bytes, CRLF line endings kept.

    On sending, bare CR and LF are converted to CRLF and lines starting with
    ``"."`` are stuffed (see :class:`protomata._core._textproto.DotStuffer`).
    """

    __slots__ = ("data",)
    _fields = ("data",)
    __match_args__ = ("data",)
    data: bytes

    def __init__(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError("DataChunk data must be bytes")
        _set(self, "data", bytes(data))


class Bdat(SMTPEvent):
    """``BDAT size [LAST]`` with its chunk (RFC 3030 CHUNKING); no dot-stuffing."""

    __slots__ = ("chunk", "last")
    _fields = ("chunk", "last")
    __match_args__ = ("chunk", "last")
    chunk: bytes
    last: bool

    def __init__(self, chunk: bytes, last: bool = False) -> None:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise LocalProtocolError("Bdat chunk must be bytes")
        _set(self, "chunk", bytes(chunk))
        _set(self, "last", bool(last))


class Auth(SMTPEvent):
    """``AUTH mechanism [initial-response]`` (RFC 4954).

    ``initial_response`` is the base64 text as sent (``"="`` for an empty
    response), or None when absent.
    """

    __slots__ = ("initial_response", "mechanism")
    _fields = ("mechanism", "initial_response")
    __match_args__ = ("mechanism", "initial_response")
    mechanism: str
    initial_response: str | None

    def __init__(self, mechanism: str, initial_response: str | None = None) -> None:
        _set(self, "mechanism", _text(mechanism, "mechanism", empty_ok=False, spaces_ok=False))
        if initial_response is not None:
            _text(initial_response, "initial response", empty_ok=False, spaces_ok=False)
        _set(self, "initial_response", initial_response)


class AuthContinuation(SMTPEvent):
    """A client line answering a 334 challenge (base64 text, or ``"*"`` to cancel)."""

    __slots__ = ("data",)
    _fields = ("data",)
    __match_args__ = ("data",)
    data: str

    def __init__(self, data: str) -> None:
        _set(self, "data", _text(data, "AUTH response", spaces_ok=False))


class Reply(SMTPEvent):
    """A server reply: code, text lines and an optional RFC 3463 enhanced status.

    ``lines`` hold the text after the code and after the enhanced status
    code, which is carried separately as ``"X.Y.Z"`` and put on every line
    when sent.  ``lines`` may be given as one string.
    """

    __slots__ = ("code", "enhanced_status", "lines")
    _fields = ("code", "lines", "enhanced_status")
    __match_args__ = ("code", "lines", "enhanced_status")
    code: int
    lines: tuple[str, ...]
    enhanced_status: str | None

    def __init__(
        self,
        code: int,
        lines: str | Iterable[str] = (),
        enhanced_status: str | None = None,
    ) -> None:
        if type(code) is not int or not 200 <= code <= 599:
            raise LocalProtocolError(f"invalid SMTP reply code {code!r}")
        text = (lines,) if isinstance(lines, str) else tuple(lines)
        if not text:
            text = ("",)
        for line in text:
            if not isinstance(line, str) or reply_text_problem(line):
                raise LocalProtocolError(f"invalid reply text {line!r}")
        if enhanced_status is not None:
            if not _ENHANCED.fullmatch(enhanced_status):
                raise LocalProtocolError(f"invalid enhanced status code {enhanced_status!r}")
            if enhanced_status[0] != str(code)[0]:
                raise LocalProtocolError(
                    f"enhanced status {enhanced_status} does not match reply code {code}"
                )
        _set(self, "code", code)
        _set(self, "lines", text)
        _set(self, "enhanced_status", enhanced_status)

    @property
    def is_success(self) -> bool:
        """Whether the code is 2xx or 3xx (positive completion or intermediate)."""
        return self.code < 400

    @property
    def text(self) -> str:
        """All lines joined with newlines."""
        return "\n".join(self.lines)


class BadCommand(SMTPEvent):
    """A command line the server could not accept, with the reply to send.

    Raised neither as an error nor fatal: the session goes on after the
    user sends ``reply`` (or another reply of their choosing).  Covers
    unknown verbs (500), bad arguments (501), commands out of sequence
    (503) and unsupported parameters (504/555).
    """

    __slots__ = ("line", "reply")
    _fields = ("line", "reply")
    __match_args__ = ("line", "reply")
    line: bytes
    reply: Reply

    def __init__(self, line: bytes, reply: Reply) -> None:
        _set(self, "line", bytes(line))
        _set(self, "reply", reply)
