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
from .._core._events import _event_builder
from ._abnf import (
    CHUNK_EXT_RE,
    CHUNK_SIZE_MAX_DIGITS,
    FIELD_LINE_CHARS,
    HEX_DIGITS,
    KEEP_FIELD_LINE,
    KEEP_TOKEN,
    REQUEST_HEAD_RE,
    REQUEST_LINE_RE,
    STATUS_HEAD_RE,
    STATUS_LINE_RE,
    TOKEN_CHARS,
    WS,
    target_form_ok,
)
from ._events import Data, EndOfMessage, InformationalResponse, Request, Response
from ._headers import (
    _INTERESTING,
    _SECRET_FIELDS,
    KEY_MAX_FIELDS,
    Headers,
    Warmth,
    analyze_remembered,
)

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
_BLANK_LINE = b"\r\n\r\n"
_first = itemgetter(0)
_second = itemgetter(1)

_new_request = _event_builder(Request)
_new_response = _event_builder(Response)
_new_informational = _event_builder(InformationalResponse)
_new_data = _event_builder(Data)
_new_end_of_message = _event_builder(EndOfMessage)


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


def _take_head(
    buf: ReceiveBuffer, limits: HeadLimits, first_byte_ok: bytes, is_response: bool
) -> bytes | None:
    if buf._data.startswith(_LINE_BREAK_START):
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
    try:
        # Unchecked: the block may run past an earlier LF LF end, which
        # only a head with bare LFs can have; _parse_head proves there are
        # none or gives the excess back (_parse_head_precisely).
        block = buf.take_header_block(limits.max_head_size, 431, "message head", unchecked=True)
    except RemoteProtocolError:
        _check_start(buf.peek(limits.max_line_length + 2), limits, first_byte_ok, is_response)
        raise
    if block is None:
        if buf:
            _check_start(buf.peek(limits.max_line_length + 2), limits, first_byte_ok, is_response)
    elif len(block) > limits.max_line_length:
        block = buf.give_back_after_bare_end(block)
        if len(block) > limits.max_line_length:
            _check_start(block, limits, first_byte_ok, is_response)
    return block


def _check_start(data: bytes, limits: HeadLimits, first_byte_ok: bytes, is_response: bool) -> None:
    """Checks that need only the first bytes of a head.

    They run as soon as a partial head arrives (so garbage such as a TLS
    handshake on a plain port fails at once instead of after a timeout),
    and in the same order on a complete head that could fail them, so the
    error and its status hint never depend on how the bytes were split.
    """
    if data[:1] not in first_byte_ok:
        raise _error(f"illegal start of message {data[:16]!r}")
    if is_response and not b"HTTP/".startswith(data[:5]):
        raise _error(f"illegal status line {data[:16]!r}")
    limit = limits.max_line_length
    if len(data) > limit:
        # The line's CRLF does not count toward its length.
        end = data.find(b"\n", 0, limit + 2)
        if end < 0:
            # no line end yet: only a final CR may still turn out to be one
            too_long = len(data) - data.endswith(b"\r") > limit
        else:
            too_long = end - (data[end - 1 : end] == b"\r") > limit
        if too_long:
            what = "status line" if is_response else "request line"
            raise _error(f"{what} exceeds {limit} bytes", 400 if is_response else 414)


_Parsed = tuple[re.Match[bytes] | None, list[_Item], tuple[Any, ...] | None]


def _parse_head(
    block: bytes,
    limits: HeadLimits,
    start_line_re: re.Pattern[bytes] | None,
    buf: ReceiveBuffer | None = None,
    head_re: re.Pattern[bytes] | None = None,
) -> _Parsed:
    """Split and validate a head: (start line match, field items, key).

    This is the fast path, for heads with CRLF line ends whose every check
    passes; at the first doubt it hands the head to
    :func:`_parse_head_precisely`, which finds the exact error.  *buf* is
    the buffer an unchecked *block* came from (see _take_head).  *head_re*
    is *start_line_re* followed by a CRLF, for the table of field sections
    (see _known_fields); without it the table is not used.

    *key*, when not None, stands for everything in the fields that
    :func:`analyze_fields` looks at (see :func:`analyze_remembered`).
    """
    if not block.endswith(_BLANK_LINE):
        return _parse_head_precisely(block, limits, start_line_re, buf)
    if head_re is None:
        return _parse_lines(block, limits, start_line_re, buf)
    if _SECTION_WARMTH.skip:
        _SECTION_WARMTH.skip -= 1
        return _parse_lines(block, limits, start_line_re, buf)
    match = head_re.match(block)
    if match is None:
        return _parse_head_precisely(block, limits, start_line_re, buf)
    rest = block[match.end() :]
    items, key_or_runs = _known_fields(rest)
    if items is None:
        _SECTION_WARMTH.missed()
        sections = (rest, key_or_runs)
        return _parse_lines(block, limits, start_line_re, buf, match=match, sections=sections)
    if len(items) <= limits.max_header_count and len(block) <= limits.max_line_length:
        _SECTION_WARMTH.cold = 0
        return match, items, key_or_runs
    # Known, but beyond this connection's limits: the line parser finds
    # which limit, as it would have without the table.
    return _parse_lines(block, limits, start_line_re, buf, match=match)


def _parse_lines(
    block: bytes,
    limits: HeadLimits,
    start_line_re: re.Pattern[bytes] | None,
    buf: ReceiveBuffer | None,
    *,
    match: re.Match[bytes] | None = None,
    sections: tuple[bytes, tuple[bytes, ...]] | None = None,
) -> _Parsed:
    """_parse_head line by line, with the table of known lines.

    *match*, when given, is the start line's match, already made.
    *sections*, when given, is what to store in the table of sections once
    the head proves valid: the field section and how it is cut (see
    _known_fields).
    """
    lines = block.split(_CRLF)
    del lines[-2:]
    if match is None and start_line_re is not None:
        # The patterns admit no CR, LF or other control byte.
        match = start_line_re.fullmatch(lines[0])
        if match is None:
            return _parse_head_precisely(block, limits, start_line_re, buf)
    if len(lines) > limits.max_header_count + 1 or (
        len(block) > limits.max_line_length
        and max(map(len, lines[1:]), default=0) > limits.max_line_length
    ):
        return _parse_head_precisely(block, limits, start_line_re, buf)
    # Field lines seen before, in this message or any other, are in a
    # bounded table of lines already parsed and proven valid (see
    # _remember_lines): most heads are found there whole, in one C-level
    # pass, or nearly whole.
    key: tuple[Any, ...] | None = None
    remember_lines = False
    if _LINE_WARMTH.skip:
        _LINE_WARMTH.skip -= 1
        found = None
    else:
        found = list(map(_LINE_ITEMS.get, islice(lines, 1, None)))
        misses = found.count(None)
        if not misses:
            _LINE_WARMTH.cold = 0
            if len(found) <= KEY_MAX_FIELDS:
                key = tuple(found)
        elif 2 * misses <= len(found):
            _LINE_WARMTH.cold = 0
            # The key keeps None for the new lines: valid if none of them
            # matters to analyze_fields, which _parse_new_lines tells.
            if len(found) <= KEY_MAX_FIELDS:
                key = tuple(found)
            outcome = _parse_new_lines(lines, found, misses)
            if outcome is None:
                return _parse_head_precisely(block, limits, start_line_re, buf)
            if not outcome:
                key = None
        else:
            _LINE_WARMTH.missed()  # mostly new lines: the table spared nothing
            found = None
            remember_lines = True
    if found is not None:
        items: list[_Item] = found  # type: ignore[assignment]
    else:
        # Mostly new lines: validate the whole head at once.  translate()
        # leaves only illegal bytes plus the CRs and LFs; if that is exactly
        # the CRLF line breaks, every byte is legal and there is no bare CR
        # or LF.
        if len(block.translate(None, FIELD_LINE_CHARS)) != 2 * len(lines) + 2:
            return _parse_head_precisely(block, limits, start_line_re, buf)
        try:
            items = [
                (name, name.lower(), value.strip(WS))
                for line in islice(lines, 1, None)
                for name, value in (line.split(b":", 1),)
            ]
        except ValueError:
            return _parse_head_precisely(block, limits, start_line_re, buf)
        # Every name must be a non-empty token.  Names seen before are in a
        # bounded set of names already proven valid, which checks a whole
        # head in one C-level call; new names are checked once and
        # remembered.
        if not _VALID_NAMES.issuperset(map(_first, items)):
            names = [item[0] for item in items]
            if b"".join(names).translate(None, TOKEN_CHARS) or not all(names):
                return _parse_head_precisely(block, limits, start_line_re, buf)
            _remember_valid_names(names)
        if remember_lines:
            _remember_lines(lines, items)
    if sections is not None:
        _remember_sections(sections[0], sections[1], items)
    return match, items, key


def _parse_head_precisely(
    block: bytes,
    limits: HeadLimits,
    start_line_re: re.Pattern[bytes] | None,
    buf: ReceiveBuffer | None = None,
) -> _Parsed:
    """Parse a head line by line: accept what we tolerate (bare LF line
    ends; obs-fold in responses), and raise the exact error for the rest.

    The checks run in the order a head arriving in pieces meets them: its
    bytes, the start line, the number of fields, their lengths, then each
    field.
    """
    if buf is not None:
        block = buf.give_back_after_bare_end(block)
    lines = _split_head_precisely(block)
    match = None
    if start_line_re is not None:
        match = start_line_re.fullmatch(lines[0])
        if match is None:
            what = "request" if start_line_re is REQUEST_LINE_RE else "status"
            raise _error(f"illegal {what} line {lines[0][:80]!r}")
    if len(lines) > limits.max_header_count + 1:
        raise _error(f"more than {limits.max_header_count} header fields", 431)
    # (The start line's length was checked by _check_start.)
    if len(block) > limits.max_line_length and max(map(len, lines[1:]), default=0) > (
        limits.max_line_length
    ):
        raise _error(f"header line exceeds {limits.max_line_length} bytes", 431)
    return match, _parse_fields_precisely(lines, limits), None


#: Field names known to be valid tokens (bounded; see _remember_valid_names).
_VALID_NAMES: set[bytes] = set()
_VALID_NAMES_MAX = 2048


def _remember_valid_names(names: list[bytes]) -> None:
    # A peer sending ever-new names only empties the set now and then; it
    # never grows past the bound, and correctness never depends on it.
    if len(_VALID_NAMES) + len(names) > _VALID_NAMES_MAX:
        _VALID_NAMES.clear()
    _VALID_NAMES.update(names)


#: Whether _LINE_ITEMS is worth consulting (see Warmth).
_LINE_WARMTH = Warmth()

#: Field lines known to be valid, each mapped to its parsed item (bounded).
_LINE_ITEMS: dict[bytes, _Item] = {}
_LINE_ITEMS_MAX = 1024
#: Longer lines are not remembered (they rarely repeat and cost memory).
_LINE_ITEMS_MAX_LENGTH = 256


def _remember_lines(lines: list[bytes], items: list[_Item]) -> None:
    # Like _remember_valid_names: a peer sending ever-new lines only empties
    # the table now and then, and correctness never depends on it.  A line
    # maps to the same item in any head whose bytes are all legal, which is
    # all this path sees; continuation lines (obs-fold) never get here.
    if len(_LINE_ITEMS) + len(items) > _LINE_ITEMS_MAX:
        _LINE_ITEMS.clear()
    _LINE_ITEMS.update(
        (line, item)
        for line, item in zip(islice(lines, 1, None), items, strict=True)
        if len(line) <= _LINE_ITEMS_MAX_LENGTH and item[1] not in _SECRET_FIELDS
    )


def _parse_field_line(line: bytes) -> _Item | None:
    """The item of one CRLF-free field line, or None if it needs the precise parser."""
    name, colon, value = line.partition(b":")
    if not colon or value.translate(KEEP_FIELD_LINE) != value:
        return None
    if name not in _VALID_NAMES:
        if not name or name.translate(KEEP_TOKEN) != name:
            return None
        _remember_valid_names([name])
    return (name, name.lower(), value.strip(WS))


def _parse_new_lines(lines: list[bytes], found: list[_Item | None], misses: int) -> bool | None:
    """Fill the *misses* gaps (None) in *found*, parsing those field lines.

    Returns None if one of them needs the precise parser, else whether all
    of them are fields that analyze_fields ignores.
    """
    ignored = True
    index = 0
    for _ in range(misses):
        index = found.index(None, index)
        line = lines[index + 1]
        item = found[index] = _parse_field_line(line)
        if item is None:
            return None
        lower = item[1]
        if lower in _INTERESTING:
            ignored = False
        if len(line) <= _LINE_ITEMS_MAX_LENGTH and lower not in _SECRET_FIELDS:
            if len(_LINE_ITEMS) >= _LINE_ITEMS_MAX:
                _LINE_ITEMS.clear()
            _LINE_ITEMS[line] = item
    return ignored


# -- field sections seen before --------------------------------------------
#
# Heads repeat: a client sends the same fields again and again, and only
# its request line and its Cookie change.  The bytes of a whole field
# section map to the items parsed from them, so a head found here costs one
# slice and one dict lookup.  A section holding a secret field
# (_SECRET_FIELDS) is never stored; a head with one Cookie, Authorization
# or Set-Cookie line (in the usual spelling, _SECRET_MARKS) is looked up as
# the runs of lines before and after it, and that line alone is parsed.
#
# The keys are the bytes that follow the start line, in three shapes that
# can never be equal:
#
# * a whole section: CRLF, the field lines each with its CRLF, CRLF (it
#   starts with CRLF and is 4 bytes or more);
# * the run before a secret line: empty, or CRLF and field lines joined by
#   CRLF (it does not end in LF);
# * the run after one: the field lines each with its CRLF, then CRLF (it
#   starts with a field name, or is the final CRLF alone).

#: (items, the key that stands for them in analyze_remembered)
_Section = tuple[list[_Item], tuple[bytes, ...]]
_SECTIONS: dict[bytes, _Section] = {}
_SECTIONS_MAX = 256
#: Longer sections are not stored (the memory they hold, items included,
#: stays under about three times this times _SECTIONS_MAX).  Heads longer
#: than a connection's max_line_length do not use the table, so no line
#: need be measured.
_SECTION_MAX_LENGTH = 1024


class _SectionWarmth(Warmth):
    # A whole section repeats less often than its lines: after a run of
    # misses the table is left alone longer, so a stream of new heads pays
    # for trying it one time in sixteen.
    __slots__ = ()
    SKIP_RUN = 240


_SECTION_WARMTH = _SectionWarmth()
#: Secret lines a head is cut around, the first before a lookup of the
#: whole section (it is the common one), the others after: (what starts
#: the line, the field name, the name lowercased).
_COOKIE_MARK = (b"\r\nCookie: ", b"Cookie", b"cookie")
_SECRET_MARKS = (
    (b"\r\nAuthorization: ", b"Authorization", b"authorization"),
    (b"\r\nSet-Cookie: ", b"Set-Cookie", b"set-cookie"),
)


def _known_fields(rest: bytes) -> tuple[list[_Item] | None, tuple[bytes, ...]]:
    """Look the field section *rest* (everything after the start line) up
    in _SECTIONS.

    Returns (items, key) if found.  If not, returns (None, runs): runs is
    () for a section looked up whole, or the runs of lines (before, after)
    around its secret line.
    """
    mark, name, lower = _COOKIE_MARK
    before, found, after = rest.partition(mark)
    if not found:
        known = _SECTIONS.get(rest)
        if known is not None:
            return known[0].copy(), known[1]
        for marked in _SECRET_MARKS:
            before, found, after = rest.partition(marked[0])
            if found:
                mark, name, lower = marked
                break
        else:
            return None, ()
    value, _, after = after.partition(_CRLF)
    known_before = _SECTIONS.get(before)
    known_after = _SECTIONS.get(after)
    if known_before is None or known_after is None or value.translate(KEEP_FIELD_LINE) != value:
        return None, (before, after)
    # Secret fields are not among those analyze_fields looks at, so the
    # key need not stand for this one.
    return (
        [*known_before[0], (name, lower, value.strip(WS)), *known_after[0]],
        known_before[1] + known_after[1],
    )


def _remember_sections(rest: bytes, runs: tuple[bytes, ...], items: list[_Item]) -> None:
    # Only heads the line-by-line fast path proved free of bare CRs and LFs
    # and of continuation lines get here, so the n-th field line is
    # items[n] and ends in the (n+1)-th CRLF.
    if runs:
        before, after = runs
        count = before.count(_CRLF)
        _remember_section(before, items[:count])
        _remember_section(after, items[count + 1 :])
    else:
        _remember_section(rest, items)


def _remember_section(section: bytes, items: list[_Item]) -> None:
    if len(section) > _SECTION_MAX_LENGTH or section in _SECTIONS:
        return
    if not _SECRET_FIELDS.isdisjoint(map(_second, items)):
        return
    if len(_SECTIONS) >= _SECTIONS_MAX:
        _SECTIONS.clear()
    _SECTIONS[section] = (items[:], (section,))


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
    block = _take_head(buf, limits, _METHOD_FIRST, False)
    if block is None:
        return None
    match, items, key = _parse_head(block, limits, REQUEST_LINE_RE, buf, REQUEST_HEAD_RE)
    method, target, major, minor = match.groups()  # type: ignore[union-attr]
    if major != b"1":
        raise _error(f"unsupported HTTP version {major + b'.' + minor!r}", 505)
    if target[:1] != b"/" or method == b"CONNECT":
        _check_target(method, target)
    version = _VERSIONS[minor]
    info = analyze_remembered(items, key, True, True, version)
    return _new_request(method, Headers(items, info), target, version)


_VERSIONS = {bytes([digit]): b"1." + bytes([digit]) for digit in b"0123456789"}


def _check_target(method: bytes, target: bytes) -> None:
    if not target_form_ok(method, target):
        raise _error(f"illegal request target {target[:80]!r} for {method!r}")


def read_response_head(
    limits: HeadLimits, buf: ReceiveBuffer
) -> Response | InformationalResponse | None:
    block = _take_head(buf, limits, _STATUS_FIRST, True)
    if block is None:
        return None
    match, items, key = _parse_head(block, limits, STATUS_LINE_RE, buf, STATUS_HEAD_RE)
    major, minor, status, reason = match.groups()  # type: ignore[union-attr]
    if major != b"1":
        raise _error(f"unsupported HTTP version {major + b'.' + minor!r}", 505)
    version = _VERSIONS[minor]
    info = analyze_remembered(items, key, True, False, version)
    code = int(status)
    if code < 100:
        raise _error(f"illegal status code {code}")
    build = _new_informational if code < 200 else _new_response
    return build(code, Headers(items, info), version, reason or b"")


# -- bodies ----------------------------------------------------------------------


class ContentLengthReader:
    __slots__ = ("_length", "_remaining")

    def __init__(self, length: int) -> None:
        self._length = length
        self._remaining = length

    def __call__(self, buf: ReceiveBuffer) -> Data | EndOfMessage | None:
        remaining = self._remaining
        if remaining == 0:
            return _END_OF_MESSAGE
        # buf.take_at_most(remaining), inlined: the body's hot path.
        buffered = buf._data
        if not buffered:
            return None
        if len(buffered) <= remaining:
            data = bytes(buffered)
            buffered.clear()
        else:
            data = bytes(buffered[:remaining])
            del buffered[:remaining]
        buf._resume = 0
        self._remaining = remaining - len(data)
        return _new_data(data, False, False)

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
        return _new_data(data, False, False)

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
                return _new_data(data, start, end)
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
        if buf and not buf.startswith(b"\r") and buf.peek(1) not in TOKEN_CHARS:
            raise _error("illegal trailer section")
        if len(buf) < 2:
            return None
        block = buf.take_through_match(
            _BLANK_LINE_RE, 2, self._limits.max_head_size, hint=431, what="trailer section"
        )
        if block is None:
            return None
        if len(block.translate(None, FIELD_LINE_CHARS)) != 2 * block.count(_CRLF):
            raise _error("illegal byte or bare CR/LF in trailer section")
        # _parse_head expects a start line first; trailers have none.
        _, items, _ = _parse_head(_CRLF + block, self._limits, None)
        _check_framing_of_trailers(items)
        return _new_end_of_message(Headers(items))

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


_END_OF_MESSAGE = _new_end_of_message(Headers([]))

BodyReader = ContentLengthReader | ChunkedReader | Http10Reader
