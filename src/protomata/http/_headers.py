"""Header lists: validation of what users send, and comma-list helpers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union, overload

from .._core import LocalProtocolError, RemoteProtocolError
from ._abnf import CONTENT_LENGTH_MAX_DIGITS, FIELD_LINE_CHARS, HOST_CHARS, TOKEN_CHARS, WS

if TYPE_CHECKING:
    from typing_extensions import TypeAlias

__all__ = ["HeaderTypes", "Headers", "bytesify"]

_BytesLike = Union[bytes, bytearray, memoryview, str]
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

    __slots__ = ("_full_items", "_info")

    _full_items: list[_Item]
    _info: FieldInfo | None

    def __init__(self, full_items: list[_Item], info: FieldInfo | None = None) -> None:
        self._full_items = full_items
        self._info = info

    @property
    def info(self) -> FieldInfo:
        """What the framing and connection-management fields say (cached)."""
        info = self._info
        if info is None:
            info = self._info = analyze_fields(self._full_items, False, False, b"1.1")
        return info

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


def normalize_and_validate(headers: HeaderTypes) -> Headers:
    """Validate user-supplied headers and build a :class:`Headers`.

    Framing headers are checked and canonicalized as h11 does: duplicate
    identical Content-Length values collapse into one, conflicting ones are
    an error, and the only Transfer-Encoding we can produce is ``chunked``.
    """
    if isinstance(headers, Headers):
        return headers
    items: list[_Item] = []
    seen_content_length: bytes | None = None
    saw_transfer_encoding = False
    for raw_name, raw_value in headers:
        name = bytesify(raw_name)
        value = bytesify(raw_value)
        if not name or name.translate(None, TOKEN_CHARS):
            raise LocalProtocolError(f"illegal header name {name!r}")
        if value.translate(None, FIELD_LINE_CHARS) or value[:1] in _WS_BYTES or value[-1:] in _WS_BYTES:
            raise LocalProtocolError(f"illegal header value {value!r}")
        lname = name.lower()
        if lname == b"content-length":
            lengths = {length.strip(WS) for length in value.split(b",")}
            if len(lengths) != 1:
                raise LocalProtocolError("conflicting Content-Length headers")
            value = lengths.pop()
            if not value.isdigit() or not value.isascii() or len(value) > CONTENT_LENGTH_MAX_DIGITS:
                raise LocalProtocolError("bad Content-Length")
            if seen_content_length is None:
                seen_content_length = value
                items.append((name, lname, value))
            elif seen_content_length != value:
                raise LocalProtocolError("conflicting Content-Length headers")
        elif lname == b"transfer-encoding":
            if saw_transfer_encoding:
                raise LocalProtocolError("multiple Transfer-Encoding headers", error_status_hint=501)
            value = value.lower()
            if value != b"chunked":
                raise LocalProtocolError(
                    "Only Transfer-Encoding: chunked is supported", error_status_hint=501
                )
            saw_transfer_encoding = True
            items.append((name, lname, value))
        else:
            items.append((name, lname, value))
    return Headers(items)


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
    """The facts the state machine needs from a header list, found in one pass."""

    __slots__ = ("chunked", "close", "content_length", "expect_continue", "keep_alive", "upgrade")

    def __init__(self) -> None:
        self.content_length: int | None = None
        self.chunked = False
        #: ``Connection: close`` / ``Connection: keep-alive`` present.
        self.close = False
        self.keep_alive = False
        #: ``Expect: 100-continue`` present.
        self.expect_continue = False
        #: a non-empty ``Upgrade`` field present.
        self.upgrade = False


def _framing_error(strict: bool, msg: str, hint: int = 400) -> Exception:
    if strict:
        return RemoteProtocolError(msg, error_status_hint=hint)
    return LocalProtocolError(msg, error_status_hint=hint)


def analyze_fields(items: list[_Item], strict: bool, is_request: bool, version: bytes) -> FieldInfo:
    """Scan *items* once for framing and connection-management facts.

    With *strict* (received messages) this also enforces RFC 9112's framing
    rules -- the request-smuggling defences -- and canonicalizes
    Content-Length and Transfer-Encoding in place as h11 does.  Without it
    (headers the user built, already canonical) it only records.
    """
    info = FieldInfo()
    content_length = b""
    cl_index = -1
    hosts = 0
    index = 0
    while index < len(items):
        raw, name, value = items[index]
        if name not in _INTERESTING:
            index += 1
            continue
        if name == _CONTENT_LENGTH:
            values = {v.strip(WS) for v in value.split(b",")}
            if len(values) != 1:
                raise _framing_error(strict, "conflicting Content-Length values")
            (value,) = values
            if not value.isdigit() or not value.isascii() or len(value) > CONTENT_LENGTH_MAX_DIGITS:
                raise _framing_error(strict, f"invalid Content-Length {value[:30]!r}")
            if cl_index >= 0:
                if value != content_length:
                    raise _framing_error(strict, "conflicting Content-Length values")
                del items[index]
                continue
            cl_index = index
            content_length = value
            info.content_length = int(value)
            items[index] = (raw, name, value)
        elif name == _TRANSFER_ENCODING:
            if version < b"1.1" and strict:
                raise _framing_error(strict, "Transfer-Encoding in an HTTP/1.0 message")
            codings = [c.strip(WS) for c in value.lower().split(b",")]
            if info.chunked or codings[-1] != b"chunked":
                # chunked applied twice, or a body whose end we cannot find.
                raise _framing_error(
                    strict, f"Transfer-Encoding {value!r} does not end in one chunked"
                )
            if len(codings) > 1:
                raise _framing_error(strict, f"unsupported Transfer-Encoding {value!r}", 501)
            info.chunked = True
            items[index] = (raw, name, b"chunked")
        elif name == _HOST:
            hosts += 1
            if strict and value.translate(None, HOST_CHARS):
                raise _framing_error(strict, f"invalid Host header {value!r}")
        else:
            tokens = [t.strip(WS) for t in value.lower().split(b",")]
            if name == _CONNECTION:
                info.close = info.close or b"close" in tokens
                info.keep_alive = info.keep_alive or b"keep-alive" in tokens
            elif name == _EXPECT:
                info.expect_continue = info.expect_continue or b"100-continue" in tokens
            else:
                info.upgrade = info.upgrade or any(tokens)
        index += 1
    if info.chunked and cl_index >= 0:
        if strict:
            raise _framing_error(
                strict, "both Transfer-Encoding and Content-Length (possible request smuggling)"
            )
        info.content_length = None
    if strict and is_request:
        if hosts > 1:
            raise _framing_error(strict, "more than one Host header")
        if hosts == 0 and version >= b"1.1":
            raise _framing_error(strict, "missing Host header in an HTTP/1.1 request")
    return info
