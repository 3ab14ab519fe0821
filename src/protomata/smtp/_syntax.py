"""SMTP command and reply syntax: parse what arrives, write what we send.

Command parsing (server side) turns one command line into an event or a
:class:`BadCommand` carrying the 500/501 reply; it never raises.  Sequencing
(503) is the connection's business.  Writers assume validated events.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .._core._events import _make_event
from ._events import (
    Auth,
    AuthContinuation,
    BadCommand,
    Data,
    Ehlo,
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
    address_problem,
)

__all__ = ["BdatHeader", "parse_command", "parse_reply", "write_reply"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOMAIN = re.compile(r"[^\s<>]+")
_PARAM_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_PARAM_VALUE = re.compile(r"[^\x00-\x20=\x7f]+")
_MECHANISM = re.compile(r"[A-Za-z0-9_-]{1,20}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}|\*")
# RFC 5321 4.1.2 A-d-l: "@" domain *( "," "@" domain ), before the ":".
_ROUTE = re.compile(r"@[^\s<>:,@\"]+(?:,@[^\s<>:,@\"]+)*")
_BDAT_SIZE = re.compile(r"[0-9]{1,18}")
_ENHANCED = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})(?: |$)")


def _ascii_upper(text: str) -> str:
    """*text* upper-cased if it is ASCII, else ``""`` (which matches no keyword)."""
    return text.upper() if text.isascii() else ""


def bad(line: bytes, code: int, status: str, text: str) -> BadCommand:
    """A :class:`BadCommand` for *line* with the reply ``code status text``."""
    return _make_event(BadCommand, line, _make_event(Reply, code, (text,), status))


class BdatHeader:
    """A parsed ``BDAT size [LAST]`` line: the chunk itself is still to come."""

    __slots__ = ("last", "line", "size")

    def __init__(self, line: bytes, size: int, last: bool) -> None:
        self.line = line
        self.size = size
        self.last = last


def _parse_path(text: str) -> tuple[str, str] | None:
    """Split ``<address> rest`` into (address, rest); None if malformed."""
    if not text.startswith("<"):
        return None
    quoted = False
    i = 1
    size = len(text)
    while i < size:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ">":
            address = text[1:i]
            if address.startswith("@"):
                # An obsolete source route (RFC 5321 4.1.1.3): ignore it.
                colon = address.find(":")
                if colon < 0 or not _ROUTE.fullmatch(address, 0, colon):
                    return None
                address = address[colon + 1 :]
            # What we accept must be what we could send (no stray quote,
            # no "@a:@b:c" that would read back as a route).
            if address_problem(address) is not None:
                return None
            return address, text[i + 1 :]
        elif c in "< ":
            return None
        i += 1
    return None


def _parse_params(text: str) -> tuple[tuple[str, str | None], ...] | None:
    out: list[tuple[str, str | None]] = []
    for item in text.split():
        key, eq, value = item.partition("=")
        if not _PARAM_KEY.fullmatch(key) or (eq and not _PARAM_VALUE.fullmatch(value)):
            return None
        out.append((key, value if eq else None))
    return tuple(out)


def _path_command(
    cls: type[MailFrom] | type[RcptTo], prefix: str, line: bytes, arg: str
) -> SMTPEvent:
    if _ascii_upper(arg[: len(prefix)]) != prefix:
        return bad(line, 501, "5.5.4", f"Syntax: {cls.__name__[:4].upper()} {prefix}<address>")
    # "MAIL FROM: <a>" is common in the wild and unambiguous: accept it.
    parsed = _parse_path(arg[len(prefix) :].lstrip(" "))
    if parsed is None:
        return bad(line, 501, "5.1.7" if cls is MailFrom else "5.1.3", "Bad address syntax")
    address, rest = parsed
    if rest and not rest.startswith(" "):
        return bad(line, 501, "5.5.4", "Bad address syntax")
    if cls is RcptTo and not address:
        return bad(line, 501, "5.1.3", "Empty recipient address")
    params = _parse_params(rest)
    if params is None:
        return bad(line, 501, "5.5.4", "Bad parameter syntax")
    return _make_event(cls, address, params)


def _hello(cls: type[Ehlo] | type[Helo] | type[Lhlo]) -> _Parser:
    def parse(line: bytes, arg: str) -> SMTPEvent | BdatHeader:
        if not _DOMAIN.fullmatch(arg):
            return bad(line, 501, "5.5.4", f"Syntax: {cls.__name__.upper()} domain")
        return _make_event(cls, arg)

    return parse


def _no_args(cls: type[SMTPEvent]) -> _Parser:
    event = _make_event(cls)

    def parse(line: bytes, arg: str) -> SMTPEvent | BdatHeader:
        if arg:
            return bad(line, 501, "5.5.4", "Syntax error, no parameters allowed")
        return event

    return parse


def _with_arg(cls: type[Noop] | type[Help] | type[Vrfy] | type[Expn], required: bool) -> _Parser:
    def parse(line: bytes, arg: str) -> SMTPEvent | BdatHeader:
        if required and not arg:
            return bad(line, 501, "5.5.4", "Argument required")
        return _make_event(cls, arg)

    return parse


def _mail(line: bytes, arg: str) -> SMTPEvent | BdatHeader:
    return _path_command(MailFrom, "FROM:", line, arg)


def _rcpt(line: bytes, arg: str) -> SMTPEvent | BdatHeader:
    return _path_command(RcptTo, "TO:", line, arg)


def _auth(line: bytes, arg: str) -> SMTPEvent | BdatHeader:
    parts = arg.split(" ")
    if not 1 <= len(parts) <= 2 or not _MECHANISM.fullmatch(parts[0]):
        return bad(line, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
    initial = parts[1] if len(parts) == 2 else None
    if initial is not None and (not initial or not _BASE64.fullmatch(initial)):
        return bad(line, 501, "5.5.2", "Invalid initial response")
    return _make_event(Auth, parts[0].upper(), initial)


def _bdat(line: bytes, arg: str) -> SMTPEvent | BdatHeader:
    parts = arg.split(" ")
    if (
        not 1 <= len(parts) <= 2
        or not _BDAT_SIZE.fullmatch(parts[0])
        or (len(parts) == 2 and _ascii_upper(parts[1]) != "LAST")
    ):
        return bad(line, 501, "5.5.4", "Syntax: BDAT size [LAST]")
    return BdatHeader(line, int(parts[0]), len(parts) == 2)


_Parser = Callable[[bytes, str], "SMTPEvent | BdatHeader"]

_COMMANDS: dict[str, _Parser] = {
    "EHLO": _hello(Ehlo),
    "HELO": _hello(Helo),
    "MAIL": _mail,
    "RCPT": _rcpt,
    "DATA": _no_args(Data),
    "BDAT": _bdat,
    "RSET": _no_args(Rset),
    "QUIT": _no_args(Quit),
    "STARTTLS": _no_args(StartTLS),
    "NOOP": _with_arg(Noop, False),
    "HELP": _with_arg(Help, False),
    "VRFY": _with_arg(Vrfy, True),
    "EXPN": _with_arg(Expn, True),
    "AUTH": _auth,
}
_LMTP_COMMANDS = {**_COMMANDS, "LHLO": _hello(Lhlo)}
del _LMTP_COMMANDS["EHLO"], _LMTP_COMMANDS["HELO"]


def parse_command(line: bytes, lmtp: bool = False) -> SMTPEvent | BdatHeader:
    """Parse one command line (without its CRLF)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return bad(line, 500, "5.5.2", "Invalid UTF-8 in command")
    if _CONTROL.search(text):
        return bad(line, 500, "5.5.2", "Control character in command")
    verb, _, arg = text.partition(" ")
    # ASCII only: str.upper() maps "\ufb06ARTTLS" or "MA\u0131L" to a verb.
    parser = (_LMTP_COMMANDS if lmtp else _COMMANDS).get(_ascii_upper(verb))
    if parser is None:
        return bad(line, 500, "5.5.1", "Command unrecognized")
    return parser(line, arg.rstrip(" "))


def parse_auth_response(line: bytes) -> SMTPEvent:
    """Parse a line answering a 334 challenge."""
    text = line.decode("ascii", "replace").strip(" ")
    if not _BASE64.fullmatch(text):
        return bad(line, 501, "5.5.2", "Invalid base64 response")
    return _make_event(AuthContinuation, text)


def parse_reply(code: int, lines: list[str]) -> Reply:
    """A :class:`Reply` from raw reply lines, splitting off an enhanced status code."""
    status = None
    match = _ENHANCED.match(lines[0])
    if match is not None and match.group(1) == str(code)[0]:
        status = f"{match.group(1)}.{match.group(2)}.{match.group(3)}"
        with_space = status + " "
        lines = [
            line[len(with_space) :]
            if line.startswith(with_space)
            else ("" if line == status else line)
            for line in lines
        ]
    return _make_event(Reply, code, tuple(lines), status)


def write_reply(reply: Reply) -> bytes:
    """The wire form of *reply*, the enhanced status code on every line."""
    code = str(reply.code)
    status = reply.enhanced_status
    last = len(reply.lines) - 1
    out = []
    for i, line in enumerate(reply.lines):
        text = f"{status} {line}" if status and line else (status or line)
        sep = ("-" if i < last else " ") if text else ("-" if i < last else "")
        out.append(f"{code}{sep}{text}\r\n")
    return "".join(out).encode("utf-8")
