"""Parsing: message heads and the three body framings.

Theory of operation
-------------------
A head (request or response line plus field lines) is taken from the
receive buffer once its blank line has arrived, then parsed in one go:

1. Fast path.  Split on CRLF; one ``bytes.translate`` over the whole block
   proves every byte is legal and that no bare CR or LF exists; field
   names are checked joined, in one more ``translate``.  Nearly every real
   message takes only this path.
2. Precise path.  If the fast path's checks fail, the block is parsed
   again line by line.  This path accepts the tolerated irregularities
   (bare LF line ends; obs-fold in responses) and produces the exact
   error for everything else.

Framing fields are then checked against the smuggling rules of RFC 9112
sections 6.1, 6.3 and 11.2 (see docs/http.rst, "Strictness").

Body readers are small objects called with the buffer; they return an
event or ``None`` (need more data), and know what end-of-file means for
their framing (``read_eof``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import islice
from operator import itemgetter
from typing import Any

from .._core import ReceiveBuffer, RemoteProtocolError
from .._core._events import _make_event
from ._abnf import (
    ABSOLUTE_FORM_RE,
    AUTHORITY_FORM_RE,
    CHUNK_EXT_RE,
    CHUNK_SIZE_MAX_DIGITS,
    FIELD_LINE_CHARS,
    HEX_DIGITS,
    REQUEST_LINE_RE,
    STATUS_LINE_RE,
    TOKEN_CHARS,
    WS,
)
from ._events import Data, EndOfMessage, InformationalResponse, Request, Response
from ._headers import Headers, analyze_fields

__all__ = [
    "ChunkedReader",
    "ContentLengthReader",
    "HeadLimits",
    "Http10Reader",
    "Reader",
    "read_request_head",
    "read_response_head",
]

_Item = tuple[bytes, bytes, bytes]
Reader = Callable[[ReceiveBuffer], Any]

_BLANK_LINE_RE = re.compile(rb"\n\r?\n")
_LINE_END_RE = re.compile(rb"\r?\n")
_CRLF = b"\r\n"
_first = itemgetter(0)


class HeadLimits:
    """Size limits applied while reading a head (see ``Connection``)."""

    __slots__ = ("max_head_size", "max_header_count", "max_line_length", "obs_fold_ok")

    def __init__(
        self, max_head_size: int, max_line_length: int, max_header_count: int, obs_fold_ok: bool
    ) -> None:
        self.max_head_size = max_head_size
        self.max_line_length = max_line_length
        self.max_header_count = max_header_count
        self.obs_fold_ok = obs_fold_ok


def _error(msg: str, hint: int = 400) -> RemoteProtocolError:
    return RemoteProtocolError(msg, error_status_hint=hint)


# -- taking a head off the buffer -------------------------------------------

_LINE_BREAK_START = (b"\r", b"\n")


def _take_head(buf: ReceiveBuffer, limits: HeadLimits, first_byte_ok: bytes) -> bytes | None:
    if buf.startswith(_LINE_BREAK_START):
        # RFC 9112 section 2.2: ignore empty lines before a start line.
        while True:
            if buf.startswith(b"\r\n"):
                buf.skip(2)
            elif buf.startswith(b"\n"):
                buf.skip(1)
            elif len(buf) == 1 and buf.startswith(b"\r"):
                return None
            elif buf.startswith(b"\r"):
                raise _error("bare CR before the start line")
            else:
                break
    block = buf.take_header_block(limits.max_head_size, 431, "message head")
    if block is None and buf:
        if buf.peek(1) not in first_byte_ok:
            # Not HTTP at all (a TLS handshake on a plain port, say): fail now
            # rather than wait for a blank line that will never come.
            raise _error(f"illegal start of message {buf.peek(16)!r}")
        if (
            len(buf) > limits.max_line_length
            and buf.peek(limits.max_line_length + 1).find(b"\n") < 0
        ):
            raise _error(f"start line exceeds {limits.max_line_length} bytes", 414)
    return block


def _parse_head(block: bytes, limits: HeadLimits) -> tuple[bytes, list[_Item]]:
    """Split and validate a head: (start line, field items)."""
    lines = block.split(_CRLF)
    # Fast path: translate() leaves only illegal bytes plus the CRLFs; if
    # that is exactly two bytes per line break, every byte is legal and
    # there is no bare CR or LF.
    if len(block.translate(None, FIELD_LINE_CHARS)) == 2 * len(lines) - 2:
        del lines[-2:]
    else:
        lines = _split_head_precisely(block)
    if len(lines) > limits.max_header_count + 1:
        raise _error(f"more than {limits.max_header_count} header fields", 431)
    if len(block) > limits.max_line_length:
        longest = max(map(len, lines))
        if longest > limits.max_line_length:
            hint = 414 if len(lines[0]) == longest else 431
            raise _error(f"header line exceeds {limits.max_line_length} bytes", hint)
    start_line = lines[0]
    try:
        items = [
            (name, name.lower(), value.strip(WS))
            for line in islice(lines, 1, None)
            for name, value in (line.split(b":", 1),)
        ]
    except ValueError:
        return start_line, _parse_fields_precisely(lines, limits)
    # All names are tokens (checked joined, in one pass) and none is empty
    # (the smallest name sorts first).
    if items and (
        b"".join(map(_first, items)).translate(None, TOKEN_CHARS) or not min(map(_first, items))
    ):
        return start_line, _parse_fields_precisely(lines, limits)
    return start_line, items


def _split_head_precisely(block: bytes) -> list[bytes]:
    """The slow path of _parse_head: tolerate bare LF, name every bad byte."""
    if re.search(rb"\r(?!\n)", block):
        raise _error("bare CR in message head")
    lines = _LINE_END_RE.split(block)
    del lines[-2:]
    for line in lines:
        bad = line.translate(None, FIELD_LINE_CHARS)
        if bad:
            raise _error(f"illegal byte {bad[:1]!r} in message head")
    return lines


def _parse_fields_precisely(lines: list[bytes], limits: HeadLimits) -> list[_Item]:
    items: list[_Item] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            # obs-fold (RFC 9112 section 5.2): a continuation line.
            if not limits.obs_fold_ok:
                raise _error("obsolete line folding is not allowed in requests")
            if not items:
                raise _error("continuation line before the first header field")
            raw, name, value = items[-1]
            items[-1] = (raw, name, (value + b" " + line.strip(WS)).strip(WS))
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            raise _error(f"header line without a colon: {line[:40]!r}")
        if not name:
            raise _error("empty header field name")
        if name.translate(None, TOKEN_CHARS):
            if name[-1:] in (b" ", b"\t"):
                raise _error(f"whitespace between header name and colon: {name!r}")
            raise _error(f"illegal header field name {name!r}")
        items.append((name, name.lower(), value.strip(WS)))
    return items


# -- heads ------------------------------------------------------------------------

_METHOD_FIRST = TOKEN_CHARS
_STATUS_FIRST = b"H"


def read_request_head(limits: HeadLimits, buf: ReceiveBuffer) -> Request | None:
    block = _take_head(buf, limits, _METHOD_FIRST)
    if block is None:
        return None
    start_line, items = _parse_head(block, limits)
    match = REQUEST_LINE_RE.fullmatch(start_line)
    if match is None:
        raise _error(f"illegal request line {start_line[:80]!r}")
    method, target, major, minor = match.groups()
    if major != b"1":
        raise _error(f"unsupported HTTP version {major + b'.' + minor!r}", 505)
    if target[:1] != b"/" or method == b"CONNECT":
        _check_target(method, target)
    version = _VERSIONS[minor]
    info = analyze_fields(items, True, True, version)
    return _make_event(Request, method, Headers(items, info), target, version)


_VERSIONS = {bytes([digit]): b"1." + bytes([digit]) for digit in b"0123456789"}


def _check_target(method: bytes, target: bytes) -> None:
    first = target[:1]
    if method == b"CONNECT":
        ok = AUTHORITY_FORM_RE.fullmatch(target) is not None
    elif first == b"/":
        return
    elif target == b"*":
        ok = method == b"OPTIONS"
    else:
        ok = ABSOLUTE_FORM_RE.match(target) is not None
    if not ok:
        raise _error(f"illegal request target {target[:80]!r} for {method!r}")


def read_response_head(
    limits: HeadLimits, buf: ReceiveBuffer
) -> Response | InformationalResponse | None:
    block = _take_head(buf, limits, _STATUS_FIRST)
    if block is None:
        if buf and not b"HTTP/".startswith(buf.peek(5)):
            raise _error(f"illegal status line {buf.peek(16)!r}")
        return None
    start_line, items = _parse_head(block, limits)
    match = STATUS_LINE_RE.fullmatch(start_line)
    if match is None:
        raise _error(f"illegal status line {start_line[:80]!r}")
    major, minor, status, reason = match.groups()
    if major != b"1":
        raise _error(f"unsupported HTTP version {major + b'.' + minor!r}", 505)
    version = _VERSIONS[minor]
    info = analyze_fields(items, True, False, version)
    code = int(status)
    if code < 100:
        raise _error(f"illegal status code {code}")
    cls: type[Response | InformationalResponse] = InformationalResponse if code < 200 else Response
    return _make_event(cls, code, Headers(items, info), version, reason or b"")


# -- bodies ----------------------------------------------------------------------


class ContentLengthReader:
    __slots__ = ("_length", "_remaining")

    def __init__(self, length: int) -> None:
        self._length = length
        self._remaining = length

    def __call__(self, buf: ReceiveBuffer) -> Data | EndOfMessage | None:
        if self._remaining == 0:
            return _END_OF_MESSAGE
        data = buf.take_at_most(self._remaining)
        if data is None:
            return None
        self._remaining -= len(data)
        return _make_event(Data, data, False, False)

    def read_eof(self) -> EndOfMessage:
        raise _error(
            "peer closed connection without sending complete message body: "
            f"received {self._length - self._remaining} bytes, expected {self._length}"
        )


class Http10Reader:
    """A body delimited by the end of the connection (HTTP/1.0 style)."""

    __slots__ = ()

    def __call__(self, buf: ReceiveBuffer) -> Data | None:
        data = buf.take_at_most(len(buf))
        if data is None:
            return None
        return _make_event(Data, data, False, False)

    def read_eof(self) -> EndOfMessage:
        return _END_OF_MESSAGE


_CHUNK_HEADER, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER = range(4)


class ChunkedReader:
    """The chunked transfer coding, read strictly (RFC 9112 section 7.1).

    Chunk-size lines and the CRLF after each chunk must be exact: bare LF,
    bare CR and anything after the chunk data other than CRLF are errors,
    because those are the ambiguities that chunked-framing smuggling uses.
    """

    __slots__ = ("_limits", "_remaining", "_stage", "_start")

    def __init__(self, limits: HeadLimits) -> None:
        self._limits = limits
        self._stage = _CHUNK_HEADER
        self._remaining = 0
        self._start = False

    def __call__(self, buf: ReceiveBuffer) -> Data | EndOfMessage | None:
        while True:
            stage = self._stage
            if stage == _CHUNK_DATA:
                data = buf.take_at_most(self._remaining)
                if data is None:
                    return None
                self._remaining -= len(data)
                start = self._start
                self._start = False
                end = self._remaining == 0
                if end:
                    self._stage = _CHUNK_CRLF
                return _make_event(Data, data, start, end)
            if stage == _CHUNK_HEADER:
                # Search for LF, not CRLF, so a bare LF fails at once.
                line = buf.take_through_match(
                    _LINE_END_RE, 1, self._limits.max_line_length, what="chunk header line"
                )
                if line is None:
                    return None
                if line[-2:-1] != b"\r":
                    raise _error("bare LF in chunk header line")
                self._remaining = _parse_chunk_size(line)
                if self._remaining == 0:
                    self._stage = _TRAILER
                else:
                    self._stage = _CHUNK_DATA
                    self._start = True
            elif stage == _CHUNK_CRLF:
                if len(buf) < 2:
                    if buf and not buf.startswith(b"\r"):
                        raise _error("chunk data not followed by CRLF")
                    return None
                if not buf.startswith(_CRLF):
                    raise _error("chunk data not followed by CRLF")
                buf.skip(2)
                self._stage = _CHUNK_HEADER
            else:
                return self._read_trailer(buf)

    def _read_trailer(self, buf: ReceiveBuffer) -> EndOfMessage | None:
        if buf.startswith(_CRLF):
            buf.skip(2)
            return _END_OF_MESSAGE
        if len(buf) < 2:
            if buf and not buf.startswith(b"\r") and buf.peek(1) not in TOKEN_CHARS:
                raise _error("illegal trailer section")
            return None
        block = buf.take_through_match(
            _BLANK_LINE_RE, 2, self._limits.max_head_size, hint=431, what="trailer section"
        )
        if block is None:
            return None
        if len(block.translate(None, FIELD_LINE_CHARS)) != 2 * block.count(_CRLF):
            raise _error("illegal byte or bare CR/LF in trailer section")
        # _parse_head expects a start line first; trailers have none.
        _, items = _parse_head(_CRLF + block, self._limits)
        _check_framing_of_trailers(items)
        return _make_event(EndOfMessage, Headers(items))

    def read_eof(self) -> EndOfMessage:
        raise _error(
            "peer closed connection without sending complete message body: incomplete chunked read"
        )


_NOT_IN_TRAILERS = (b"content-length", b"transfer-encoding", b"host")


def _check_framing_of_trailers(items: list[_Item]) -> None:
    for _, name, _ in items:
        if name in _NOT_IN_TRAILERS:
            # RFC 9110 section 6.5.1: framing fields are never trailers.
            raise _error(f"{name.decode()} is not allowed in a trailer section")


def _parse_chunk_size(line: bytes) -> int:
    # line includes its CRLF
    digits = len(line) - len(line[:-2].lstrip(HEX_DIGITS)) - 2
    if digits == 0 or digits > CHUNK_SIZE_MAX_DIGITS:
        raise _error(f"illegal chunk size line {line[:40]!r}")
    rest = line[digits:-2]
    if rest:
        if b"\n" in rest or b"\r" in rest:
            raise _error("bare CR or LF in chunk header line")
        rest = rest.rstrip(WS)  # tolerated: trailing whitespace (see docs)
        if rest and CHUNK_EXT_RE.fullmatch(rest) is None:
            raise _error(f"illegal chunk extension {rest[:40]!r}")
    return int(line[:digits], 16)


_END_OF_MESSAGE = _make_event(EndOfMessage, Headers([]))

BodyReader = ContentLengthReader | ChunkedReader | Http10Reader
