"""Header lists: validation of what users send, and comma-list helpers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Union, overload

from .._core import LocalProtocolError, RemoteProtocolError
from ._abnf import CONTENT_LENGTH_MAX_DIGITS, FIELD_LINE_CHARS, HOST_CHARS, TOKEN_CHARS, WS

if TYPE_CHECKING:
    from typing import TypeAlias

__all__ = ["HeaderTypes", "Headers", "bytesify"]

_BytesLike = bytes | bytearray | memoryview | str
#: What event constructors accept as ``headers``.
HeaderTypes: TypeAlias = Union[
    "Headers",
    Sequence[tuple[bytes, bytes]],
    Sequence[tuple[str, str]],
    Iterable[tuple[_BytesLike, _BytesLike]],
]

_WS_BYTES = (b" ", b"\t")

# (raw name as given, lower-cased name, value)
_Item = tuple[bytes, bytes, bytes]


def bytesify(s: Any) -> bytes:
    """Convert ``str`` (ASCII) and bytes-like values to ``bytes``."""
    if type(s) is bytes:
        return s
    if isinstance(s, str):
        try:
            return s.encode("ascii")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"non-ASCII text {s!r}; pass bytes instead") from None
    if isinstance(s, int):
        raise TypeError("expected bytes-like object, not int")
    return bytes(s)


class Headers(Sequence[tuple[bytes, bytes]]):
    """An immutable list of header fields.

    Iterating gives ``(name, value)`` pairs with lower-cased names, as h11
    does; :meth:`raw_items` gives the names as they were received or given,
    and those are what the writer sends.
    """

    __slots__ = ("_full_items", "_wire", "info")

    _full_items: list[_Item]
    #: The field lines as the writer sends them, made on first use
    #: (a Headers never changes, and equal header lists share one).
    _wire: bytes | None
    #: What the framing and connection-management fields say
    #: (:class:`FieldInfo`), computed once when the list is built.
    info: FieldInfo

    def __init__(self, full_items: list[_Item], info: FieldInfo | None = None) -> None:
        self._full_items = full_items
        self.info = analyze_fields(full_items, False, False, b"1.1") if info is None else info
        self._wire = None

    def __bool__(self) -> bool:
        return bool(self._full_items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            other_pairs: list[tuple[Any, Any]] = list(other)
        elif isinstance(other, (list, tuple)):
            other_pairs = list(other)
        else:
            return NotImplemented
        return list(self) == other_pairs

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __len__(self) -> int:
        return len(self._full_items)

    def __repr__(self) -> str:
        return f"<Headers({list(self)!r})>"

    @overload
    def __getitem__(self, idx: int) -> tuple[bytes, bytes]: ...
    @overload
    def __getitem__(self, idx: slice) -> list[tuple[bytes, bytes]]: ...
    def __getitem__(self, idx: int | slice) -> tuple[bytes, bytes] | list[tuple[bytes, bytes]]:
        if isinstance(idx, slice):
            return [(name, value) for _, name, value in self._full_items[idx]]
        _, name, value = self._full_items[idx]
        return (name, value)

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for _, name, value in self._full_items:
            yield name, value

    def raw_items(self) -> list[tuple[bytes, bytes]]:
        """The fields with their names in original case."""
        return [(raw, value) for raw, _, value in self._full_items]

    def get(self, name: bytes | str, default: bytes | None = None) -> bytes | None:
        """The value of the first field called *name* (any case), or *default*."""
        key = bytesify(name).lower()
        for _, found, value in self._full_items:
            if found == key:
                return value
        return default

    def get_all(self, name: bytes | str) -> list[bytes]:
        """The values of every field called *name* (any case), in order."""
        key = bytesify(name).lower()
        return [value for _, found, value in self._full_items if found == key]


_first = itemgetter(0)
_second = itemgetter(1)
_TAB_TO_SPACE = bytes.maketrans(b"\t", b" ")
_EDGE_WHITESPACE = re.compile(rb"\n | \n")


def normalize_and_validate(headers: HeaderTypes) -> Headers:
    """Validate user-supplied headers and build a :class:`Headers`.

    Framing headers are checked and canonicalized as h11 does: duplicate
    identical Content-Length values collapse into one, conflicting ones are
    an error, and the only Transfer-Encoding we can produce is ``chunked``.
    """
    remember = False
    if (type(headers) is list or type(headers) is tuple) and not _PAIR_WARMTH.skip:
        # A list given before (equal pairs, in order) maps to its Headers,
        # which are immutable and can be shared.  Failing that, pairs given
        # before are in a bounded table of pairs already validated.
        key: tuple[Any, ...] | None = tuple(headers)
        try:
            known = _HEADERS_MEMO.get(key)  # type: ignore[arg-type]
        except (TypeError, BytesWarning):  # unhashable pairs; str-bytes compare under -bb
            key = known = None
        if known is not None:
            _PAIR_WARMTH.cold = 0
            return known
        if key is not None:
            remember = True
            found = list(map(_PAIR_ITEMS.get, key))
            if None not in found:
                _PAIR_WARMTH.cold = 0
                items: list[_Item] = found  # type: ignore[assignment]
                known = Headers(items, analyze_fields(items, False, False, b"1.1"))
                if len(key) <= KEY_MAX_FIELDS:
                    if len(_HEADERS_MEMO) >= _INFO_MEMO_MAX:
                        _HEADERS_MEMO.clear()
                    _HEADERS_MEMO[key] = known
                return known
            _PAIR_WARMTH.missed()
    elif isinstance(headers, Headers):
        return headers
    elif _PAIR_WARMTH.skip:
        _PAIR_WARMTH.skip -= 1
    try:
        pairs = [
            (
                n if type(n) is bytes else n.encode("ascii") if type(n) is str else bytesify(n),
                v if type(v) is bytes else v.encode("ascii") if type(v) is str else bytesify(v),
            )
            for n, v in headers
        ]
    except UnicodeEncodeError:
        # Redo slowly for the error message naming the offending text.
        pairs = [(bytesify(n), bytesify(v)) for n, v in headers]
    if not pairs:
        return Headers([], FieldInfo())
    # Validate all names and all values at once: join them with LF (which
    # neither may contain) and let translate() find any illegal byte.  Each
    # C-level call has a fixed cost far above its per-byte cost, so few
    # calls over joined strings beat a check per field.
    # translate() deletes the legal bytes; what is left must be exactly
    # the LF separators we put in (so no field can smuggle in its own LF).
    names = b"\n".join(map(_first, pairs))
    values = b"\n" + b"\n".join(map(_second, pairs)) + b"\n"
    if (
        len(names.translate(None, TOKEN_CHARS)) != len(pairs) - 1
        or not all(map(len, map(_first, pairs)))
        or len(values.translate(None, FIELD_LINE_CHARS)) != len(pairs) + 1
        # no value may start or end with whitespace (it would be lost as OWS)
        or _EDGE_WHITESPACE.search(values.translate(_TAB_TO_SPACE)) is not None
    ):
        _raise_for_invalid_field(pairs)
    items = [(name, name.lower(), value) for name, value in pairs]
    if remember:
        # Before analyze_fields, which may canonicalize the list.
        _remember_pairs(headers, items)  # type: ignore[arg-type]
    return Headers(items, analyze_fields(items, False, False, b"1.1"))


#: Header pairs as users give them, each mapped to its validated item
#: (bounded; see _remember_pairs).
_PAIR_ITEMS: dict[Any, _Item] = {}
_PAIR_ITEMS_MAX = 1024
_PAIR_MAX_LENGTH = 256
#: Headers made of remembered pairs, by the tuple of the pairs as given
#: (bounded).
_HEADERS_MEMO: dict[tuple[Any, ...], Headers] = {}
#: Fields never remembered, here or in the parser's line table: their values
#: are secrets, and whether an entry is in a table shows in the time a
#: lookup takes (as HPACK keeps such fields out of its tables, RFC 7541
#: section 7.1.3).
_SECRET_FIELDS = frozenset((b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"))


class Warmth:
    """Whether a table of things seen before is worth consulting.

    The tables cost a little for every header list or head they do not
    spare any work.  After ``COLD_RUN`` in a row that they did not spare, a
    table is left alone for the next ``SKIP_RUN`` (neither consulted nor
    filled), then tried again: a stream of ever-new fields pays for it about
    a fifth of the time, and one that repeats loses at most a run now and
    then.
    """

    __slots__ = ("cold", "skip")

    COLD_RUN = 16
    SKIP_RUN = 64

    def __init__(self) -> None:
        self.cold = 0  # lists in a row the table did not spare
        self.skip = 0  # lists still to leave the table alone for

    def missed(self) -> None:
        self.cold += 1
        if self.cold >= self.COLD_RUN:
            self.cold = 0
            self.skip = self.SKIP_RUN


_PAIR_WARMTH = Warmth()
_TEXT_TYPES = (bytes, str)


def _remember_pairs(pairs: Sequence[Any], items: list[_Item]) -> None:
    # Only exact tuples of exact str or bytes (tuples of two: the list was
    # unpacked into names and values), so that equal keys always mean
    # equal text; a table that fills up is emptied, never grown.
    if len(_PAIR_ITEMS) + len(items) > _PAIR_ITEMS_MAX:
        _PAIR_ITEMS.clear()
    _PAIR_ITEMS.update(
        (pair, item)
        for pair, item in zip(pairs, items, strict=True)
        if type(pair) is tuple
        and type(pair[0]) in _TEXT_TYPES
        and type(pair[1]) in _TEXT_TYPES
        and len(item[2]) <= _PAIR_MAX_LENGTH
        and item[1] not in _SECRET_FIELDS
    )


def _raise_for_invalid_field(pairs: list[tuple[bytes, bytes]]) -> None:
    for name, value in pairs:
        if not name or name.translate(None, TOKEN_CHARS):
            raise LocalProtocolError(f"illegal header name {name!r}")
        if (
            value.translate(None, FIELD_LINE_CHARS)
            or value[:1] in _WS_BYTES
            or value[-1:] in _WS_BYTES
        ):
            raise LocalProtocolError(f"illegal header value {value!r}")
    raise AssertionError("unreachable: some field was invalid")  # pragma: no cover


def get_comma_header(headers: Headers, name: bytes) -> list[bytes]:
    """All comma-separated, lower-cased list elements of the fields *name*."""
    out: list[bytes] = []
    for _, found, value in headers._full_items:
        if found == name:
            for element in value.lower().split(b","):
                element = element.strip(WS)
                if element:
                    out.append(element)
    return out


def set_comma_header(headers: Headers, name: bytes, new_values: list[bytes]) -> Headers:
    """A copy of *headers* with the fields *name* replaced by *new_values*.

    The new fields go last, one per value, with a title-cased name.
    """
    items = [item for item in headers._full_items if item[1] != name]
    raw = name.title()
    items.extend((raw, name, value) for value in new_values)
    return Headers(items)


_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_HOST = b"host"
_CONNECTION = b"connection"
_EXPECT = b"expect"
_UPGRADE = b"upgrade"
_INTERESTING = frozenset(
    (_CONTENT_LENGTH, _TRANSFER_ENCODING, _HOST, _CONNECTION, _EXPECT, _UPGRADE)
)


class FieldInfo:
    """The facts the state machine needs from a header list, found in one pass.

    Attributes not set on an instance take the class defaults below, so a
    scan only pays for the fields that are present.
    """

    #: the (single, canonical) Content-Length, if any
    content_length: int | None = None
    #: Transfer-Encoding: chunked present
    chunked: bool = False
    #: Connection: close / Connection: keep-alive present
    close: bool = False
    keep_alive: bool = False
    #: Expect: 100-continue present
    expect_continue: bool = False
    #: a non-empty Upgrade field present
    upgrade: bool = False
    #: how many Host fields
    host_count: int = 0
    #: whether the scan canonicalized the items it was given
    rewritten: bool = False

    def copy(self) -> FieldInfo:
        """A copy whose attributes can be changed without touching this one."""
        new = FieldInfo()
        new.__dict__.update(self.__dict__)
        return new


def _framing_error(strict: bool, msg: str, hint: int = 400) -> Exception:
    if strict:
        return RemoteProtocolError(msg, error_status_hint=hint)
    return LocalProtocolError(msg, error_status_hint=hint)


def _canonical_content_length(strict: bool, value: bytes) -> bytes:
    if value.isdigit() and len(value) <= CONTENT_LENGTH_MAX_DIGITS:
        return value  # the usual case: bytes.isdigit() is ASCII digits only
    values = {v.strip(WS) for v in value.split(b",")}
    if len(values) != 1:
        raise _framing_error(strict, "conflicting Content-Length values")
    (value,) = values
    if not value.isdigit() or not value.isascii() or len(value) > CONTENT_LENGTH_MAX_DIGITS:
        raise _framing_error(strict, f"invalid Content-Length {value[:30]!r}")
    return value


def analyze_fields(items: list[_Item], strict: bool, is_request: bool, version: bytes) -> FieldInfo:
    """Scan *items* once for framing and connection-management facts.

    With *strict* (received messages) this raises RemoteProtocolError for
    framing that RFC 9112 calls invalid or ambiguous -- the request
    smuggling defences -- and otherwise LocalProtocolError (what our user
    asked to send).  Content-Length and Transfer-Encoding are canonicalized
    in *items* as h11 does: one Content-Length field with one value, and
    ``chunked`` in lower case.
    """
    info = FieldInfo()
    content_length: bytes | None = None
    codings: list[bytes] = []
    rewrite = False
    for _, name, value in items:
        if name not in _INTERESTING:
            continue
        if name == _CONTENT_LENGTH:
            canonical = _canonical_content_length(strict, value)
            if content_length is None:
                content_length = canonical
                rewrite = rewrite or canonical != value
            elif canonical != content_length:
                raise _framing_error(strict, "conflicting Content-Length values")
            else:
                rewrite = True  # a duplicate to drop
        elif name == _TRANSFER_ENCODING:
            if strict and version < b"1.1":
                raise _framing_error(strict, "Transfer-Encoding in an HTTP/1.0 message")
            # Several TE lines form one list (RFC 9110 section 5.3): decide
            # on the whole list after the loop.
            codings += [c.strip(WS) for c in value.lower().split(b",")]
            rewrite = rewrite or value != b"chunked"
        elif name == _HOST:
            info.host_count += 1
            if value.translate(None, HOST_CHARS):
                raise _framing_error(strict, f"invalid Host header {value!r}")
        else:
            tokens = value.lower().split(b",")
            if len(tokens) > 1:
                tokens = [t.strip(WS) for t in tokens]
            if name == _CONNECTION:
                if b"close" in tokens:
                    info.close = True
                if b"keep-alive" in tokens:
                    info.keep_alive = True
            elif name == _EXPECT:
                if b"100-continue" in tokens:
                    info.expect_continue = True
            elif any(tokens):
                info.upgrade = True
    if codings:
        if codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
            # chunked applied twice, or a body whose end we cannot find.
            raise _framing_error(
                strict, f"Transfer-Encoding {b', '.join(codings)!r} does not end in one chunked"
            )
        if len(codings) > 1:
            raise _framing_error(
                strict, f"unsupported Transfer-Encoding {b', '.join(codings)!r}", 501
            )
        info.chunked = True
    if content_length is not None:
        if info.chunked:
            raise _framing_error(
                strict, "both Transfer-Encoding and Content-Length (possible request smuggling)"
            )
        info.content_length = int(content_length)
        if rewrite:
            _canonicalize(items, content_length)
            info.rewritten = True
    elif rewrite:
        _canonicalize(items, b"")
        info.rewritten = True
    if strict and is_request:
        if info.host_count > 1:
            raise _framing_error(strict, "more than one Host header")
        if info.host_count == 0 and version >= b"1.1":
            raise _framing_error(strict, "missing Host header in an HTTP/1.1 request")
    return info


def analyze_remembered(
    items: list[_Item], key: tuple[Any, ...] | None, strict: bool, is_request: bool, version: bytes
) -> FieldInfo:
    """analyze_fields(items, strict, is_request, version), remembered by *key*.

    A key is the tuple of remembered items (of the parser's line table or of
    the pair table) that a header list was made of, with None for new items
    that analyze_fields ignores; so equal keys mean equal results.  Results
    that canonicalized *items* are not remembered, since the next list would
    need canonicalizing too, and errors never are.
    """
    if key is None:
        return analyze_fields(items, strict, is_request, version)
    memo_key = (key, strict, is_request, version)
    info = _INFO_MEMO.get(memo_key)
    if info is None:
        info = analyze_fields(items, strict, is_request, version)
        if not info.rewritten:
            if len(_INFO_MEMO) >= _INFO_MEMO_MAX:
                _INFO_MEMO.clear()
            _INFO_MEMO[memo_key] = info
    return info


#: analyze_fields results by key (bounded).  FieldInfo objects are never
#: changed once made (code that needs another changes a copy()), so
#: header lists can share one.
_INFO_MEMO: dict[tuple[Any, ...], FieldInfo] = {}
_INFO_MEMO_MAX = 256
#: Longer header lists get no key (a key keeps its items alive).
KEY_MAX_FIELDS = 32


def _canonicalize(items: list[_Item], content_length: bytes) -> None:
    out: list[_Item] = []
    seen_length = False
    for item in items:
        name = item[1]
        if name == _CONTENT_LENGTH:
            if seen_length:
                continue
            seen_length = True
            item = (item[0], name, content_length)
        elif name == _TRANSFER_ENCODING:
            item = (item[0], name, b"chunked")
        out.append(item)
    items[:] = out
