"""POP3 wire format: serializing events and parsing command and reply lines.

Commands are one line: a case-insensitive keyword, then arguments separated
by single spaces (RFC 1939 section 3, RFC 2449 section 3).  Replies start
with ``+OK`` or ``-ERR``; SASL challenges with ``+ `` (RFC 5034 section 4).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from .._core._events import _make_event
from ._events import (
    Apop,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthContinuation,
    Capa,
    Capabilities,
    Command,
    Dele,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    ScanListing,
    Stat,
    Stls,
    Top,
    Uidl,
    UidListing,
    User,
    Utf8,
)

__all__ = [
    "CommandSyntaxError",
    "decode",
    "encode",
    "parse_command",
    "parse_listing",
    "write_command",
    "write_status",
]

_CRLF = b"\r\n"
_NUMBER = re.compile(r"[0-9]{1,10}")
_MECHANISM = re.compile(r"[A-Za-z0-9_-]{1,20}")
# RFC 1939 section 7: a unique-id is 1 to 70 characters in 0x21..0x7E.
_UID = re.compile(r"[\x21-\x7e]{1,70}")


class CommandSyntaxError(Exception):
    """A command line the server answers with -ERR (text is the reason)."""


def encode(text: str) -> bytes:
    """Text to wire bytes (UTF-8; lone surrogates from :func:`decode` restored)."""
    return text.encode("utf-8", "surrogateescape")


def decode(data: bytes) -> str:
    """Wire bytes to text, never failing (see :func:`encode`)."""
    return data.decode("utf-8", "surrogateescape")


def b64encode(data: bytes) -> bytes:
    """Base64 without line breaks."""
    return base64.b64encode(data)


def b64decode(data: bytes) -> bytes | None:
    """Strict base64 decoding; None when *data* is not valid base64."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


# -- commands ------------------------------------------------------------------


def _command_args(event: Command) -> str:
    if isinstance(event, User):
        return event.name
    if isinstance(event, Pass):
        return event.password
    if isinstance(event, Apop):
        return f"{event.name} {event.digest}"
    if isinstance(event, Top):
        return f"{event.msg} {event.lines}"
    msg = getattr(event, "msg", None)
    return "" if msg is None else str(msg)


def write_command(event: Command) -> bytes:
    """The wire form of a client command (validated by its constructor)."""
    if isinstance(event, AuthContinuation):
        return b64encode(event.data) + _CRLF
    if isinstance(event, AuthCancel):
        return b"*\r\n"
    if isinstance(event, Auth):
        line = b"AUTH " + event.mechanism.encode("ascii")
        initial = event.initial_response
        if initial is not None:
            line += b" " + (b64encode(initial) if initial else b"=")
        return line + _CRLF
    args = _command_args(event)
    keyword = event.keyword.encode("ascii")
    if type(event) is Pass or args:
        return keyword + b" " + encode(args) + _CRLF
    return keyword + _CRLF


def _number(text: str, minimum: int = 1) -> int:
    if not _NUMBER.fullmatch(text):
        raise CommandSyntaxError(f"invalid number {text[:20]!r}")
    value = int(text)
    if value < minimum:
        raise CommandSyntaxError(f"invalid number {text!r}")
    return value


def _no_args(cls: type[Command]) -> Callable[[str], Command]:
    event = _make_event(cls)

    def parse(args: str) -> Command:
        if args:
            raise CommandSyntaxError(f"{cls.keyword} takes no arguments")
        return event

    return parse


def _parse_user(args: str) -> Command:
    if not args:
        raise CommandSyntaxError("USER needs a name")
    return _make_event(User, args)


def _parse_pass(args: str) -> Command:
    return _make_event(Pass, args)


def _parse_apop(args: str) -> Command:
    # Exactly two words: a name with spaces could not be sent back (Apop).
    name, _, digest = args.partition(" ")
    if not name or not digest or " " in digest:
        raise CommandSyntaxError("APOP needs a name and a digest")
    return _make_event(Apop, name, digest)


def _one_number(cls: type[Command], optional: bool) -> Callable[[str], Command]:
    def parse(args: str) -> Command:
        if not args:
            if optional:
                return _make_event(cls, None)
            raise CommandSyntaxError(f"{cls.keyword} needs a message number")
        return _make_event(cls, _number(args))

    return parse


def _parse_top(args: str) -> Command:
    msg, _, lines = args.partition(" ")
    if not lines:
        raise CommandSyntaxError("TOP needs a message number and a line count")
    return _make_event(Top, _number(msg), _number(lines, 0))


def _parse_auth(args: str) -> Command:
    mechanism, _, initial = args.partition(" ")
    if not _MECHANISM.fullmatch(mechanism):
        raise CommandSyntaxError("AUTH needs a SASL mechanism name")
    response: bytes | None = None
    if initial == "=":
        response = b""
    elif initial:
        response = b64decode(encode(initial))
        if response is None:
            raise CommandSyntaxError("invalid base64 in the initial response")
    return _make_event(Auth, mechanism.upper(), response)


#: keyword -> parser of the argument text
COMMAND_PARSERS: dict[str, Callable[[str], Command]] = {
    "USER": _parse_user,
    "PASS": _parse_pass,
    "APOP": _parse_apop,
    "STAT": _no_args(Stat),
    "LIST": _one_number(List, optional=True),
    "RETR": _one_number(Retr, optional=False),
    "DELE": _one_number(Dele, optional=False),
    "NOOP": _no_args(Noop),
    "RSET": _no_args(Rset),
    "QUIT": _no_args(Quit),
    "TOP": _parse_top,
    "UIDL": _one_number(Uidl, optional=True),
    "CAPA": _no_args(Capa),
    "STLS": _no_args(Stls),
    "UTF8": _no_args(Utf8),
    "AUTH": _parse_auth,
}


def parse_command(line: bytes) -> Command:
    """Parse one command line (CRLF removed); raise :class:`CommandSyntaxError`."""
    if b"\n" in line or b"\r" in line or b"\x00" in line:
        raise CommandSyntaxError("stray CR, LF or NUL in the command line")
    text = decode(line)
    keyword, _, args = text.partition(" ")
    # ASCII only: str.upper() would turn "\ufb06LS" into STLS and "u\u017fer" into USER.
    parser = COMMAND_PARSERS.get(keyword.upper()) if keyword.isascii() else None
    if parser is None:
        raise CommandSyntaxError(f"unknown command {keyword[:20]!r}")
    # PASS keeps its argument verbatim (passwords may have spaces at the ends).
    return parser(args if parser is _parse_pass else args.strip(" "))


def parse_auth_response(line: bytes) -> Command | None:
    """A client's SASL response line: AuthCancel, AuthContinuation or None if invalid."""
    if line == b"*":
        return _make_event(AuthCancel)
    data = b64decode(line)
    return None if data is None else _make_event(AuthContinuation, data)


# -- replies -------------------------------------------------------------------


def write_status(ok: bool, text: str) -> bytes:
    """``+OK text`` or ``-ERR text`` (no space when *text* is empty)."""
    head = b"+OK" if ok else b"-ERR"
    return head + b" " + encode(text) + _CRLF if text else head + _CRLF


def write_challenge(event: AuthChallenge) -> bytes:
    """``+ base64`` (RFC 5034 section 4)."""
    return b"+ " + b64encode(event.data) + _CRLF


def write_listing(event: ScanListing | UidListing | Capabilities) -> bytes:
    """The whole multi-line reply for a parsed listing."""
    out = [write_status(True, event.text)]
    if type(event) is Capabilities:
        out += [encode(cap) + _CRLF for cap in event.capabilities]
    else:
        out += [f"{msg} {value}\r\n".encode() for msg, value in event.entries]  # type: ignore[union-attr]
    out.append(b".\r\n")
    return b"".join(out)


class ListingSyntaxError(Exception):
    """A listing line the client cannot parse."""


def parse_listing(kind: type, text: str, body: bytes) -> ScanListing | UidListing | Capabilities:
    """Build the listing event of *kind* from a dot-unstuffed block."""
    if body and not body.endswith(_CRLF):
        raise ListingSyntaxError("listing does not end in CRLF")
    lines = body.split(_CRLF)[:-1]
    if kind is Capabilities:
        caps = []
        for line in lines:
            # A capability starts with its tag, never with "." (RFC 2449 6).
            if (
                not line
                or line.startswith(b".")
                or b"\n" in line
                or b"\r" in line
                or b"\x00" in line
            ):
                raise ListingSyntaxError(f"invalid capability line {line[:80]!r}")
            caps.append(decode(line))
        return _make_event(Capabilities, tuple(caps), text)
    entries: list[tuple[int, object]] = []
    for line in lines:
        # RFC 1939 lets servers add information after the size; we ignore it.
        parts = line.split(b" ")
        if len(parts) < 2 or not parts[0].isdigit() or len(parts[0]) > 10:
            raise ListingSyntaxError(f"invalid listing line {line[:80]!r}")
        msg = int(parts[0])
        if msg < 1:
            raise ListingSyntaxError(f"message numbers start at 1: {line[:80]!r}")
        if kind is ScanListing:
            if not parts[1].isdigit() or len(parts[1]) > 20:
                raise ListingSyntaxError(f"invalid size in {line[:80]!r}")
            entries.append((msg, int(parts[1])))
        else:
            uid = parts[1].decode("latin-1")
            if len(parts) != 2 or not _UID.fullmatch(uid):
                raise ListingSyntaxError(f"invalid unique-id line {line[:80]!r}")
            entries.append((msg, uid))
    return _make_event(kind, tuple(entries), text)
