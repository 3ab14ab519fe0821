"""HTTP events: the values that cross the boundary of the state machine.

Field names and types match h11's events so code written against h11 works
unchanged.  Constructors validate what users build; the parser creates
events through ``_make_event`` after validating the bytes itself.
"""

from __future__ import annotations

import re
from typing import Any

from .._core import Event, LocalProtocolError
from .._core._events import _make_event
from ._abnf import COMMON_METHODS, FIELD_LINE_CHARS, TOKEN_CHARS, VCHAR
from ._headers import Headers, HeaderTypes, bytesify, normalize_and_validate

__all__ = [
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "InformationalResponse",
    "Request",
    "Response",
]

_REASON_CHARS = FIELD_LINE_CHARS
_VERSION_OK = {b"1.0", b"1.1"}
_VERSION_RE = re.compile(rb"[0-9]\.[0-9]")


def _check_version(version: bytes) -> None:
    if version in _VERSION_OK:
        return
    if _VERSION_RE.fullmatch(version) is None:
        raise LocalProtocolError(f"illegal HTTP version {version!r}")


class Request(Event):
    """The start of a request: method, target, headers and version."""

    __slots__ = ("headers", "http_version", "method", "target")
    _fields = ("method", "headers", "target", "http_version")
    __match_args__ = ("method", "headers", "target", "http_version")

    method: bytes
    headers: Headers
    target: bytes
    http_version: bytes

    def __init__(
        self,
        *,
        method: bytes | str,
        headers: HeaderTypes,
        target: bytes | str,
        http_version: bytes | str = b"1.1",
    ) -> None:
        if type(method) is not bytes:
            method = _ascii(method)
        if type(target) is not bytes:
            target = _ascii(target)
        if type(http_version) is not bytes:
            http_version = bytesify(http_version)
        headers = normalize_and_validate(headers)
        if method not in COMMON_METHODS and (not method or method.translate(None, TOKEN_CHARS)):
            raise LocalProtocolError("Illegal method characters")
        if not target or target.translate(None, VCHAR):
            raise LocalProtocolError("Illegal target characters")
        if http_version not in _VERSION_OK:
            _check_version(http_version)
        hosts = headers.info.host_count
        if hosts != 1:
            if hosts > 1:
                raise LocalProtocolError("Found multiple Host: headers")
            if http_version == b"1.1":
                raise LocalProtocolError("Missing mandatory Host: header")
        # (the slots' own setters: events refuse ordinary assignment)
        _set_method(self, method)
        _set_request_headers(self, headers)
        _set_target(self, target)
        _set_request_version(self, http_version)


class _ResponseBase(Event):
    __slots__ = ("headers", "http_version", "reason", "status_code")
    _fields = ("status_code", "headers", "http_version", "reason")
    __match_args__ = ("status_code", "headers", "http_version", "reason")

    status_code: int
    headers: Headers
    http_version: bytes
    reason: bytes

    _min_status = 100
    _max_status = 1000

    def __init__(
        self,
        *,
        status_code: int,
        headers: HeaderTypes,
        http_version: bytes | str = b"1.1",
        reason: bytes | str = b"",
    ) -> None:
        if type(status_code) is not int:
            if not isinstance(status_code, int) or isinstance(status_code, bool):
                raise LocalProtocolError("status code must be integer")
            status_code = int(status_code)  # HTTPStatus and other int subclasses
        if not self._min_status <= status_code < self._max_status:
            raise LocalProtocolError(
                f"{type(self).__name__} status_code should be in range "
                f"[{self._min_status}, {self._max_status}), not {status_code}"
            )
        if type(http_version) is not bytes:
            http_version = bytesify(http_version)
        if type(reason) is not bytes:
            reason = bytesify(reason)
        if http_version not in _VERSION_OK:
            _check_version(http_version)
        if reason and reason.translate(None, _REASON_CHARS):
            raise LocalProtocolError(f"illegal reason phrase {reason!r}")
        _set_status(self, status_code)
        _set_response_headers(self, normalize_and_validate(headers))
        _set_response_version(self, http_version)
        _set_reason(self, reason)


_set_method = vars(Request)["method"].__set__
_set_request_headers = vars(Request)["headers"].__set__
_set_target = vars(Request)["target"].__set__
_set_request_version = vars(Request)["http_version"].__set__
_set_status = vars(_ResponseBase)["status_code"].__set__
_set_response_headers = vars(_ResponseBase)["headers"].__set__
_set_response_version = vars(_ResponseBase)["http_version"].__set__
_set_reason = vars(_ResponseBase)["reason"].__set__


def _ascii(text: Any) -> bytes:
    if type(text) is str:
        try:
            return text.encode("ascii")
        except UnicodeEncodeError:
            pass
    return bytesify(text)


class InformationalResponse(_ResponseBase):
    """A 1xx response (100 Continue, 101 Switching Protocols, 103 ...)."""

    __slots__ = ()
    _max_status = 200


class Response(_ResponseBase):
    """The start of a final (2xx-9xx) response."""

    __slots__ = ()
    _min_status = 200


class Data(Event):
    """A piece of a message body.

    ``chunk_start`` and ``chunk_end`` mark where chunks of a chunked body
    begin and end; they carry no meaning of their own.
    """

    __slots__ = ("chunk_end", "chunk_start", "data")
    _fields = ("data", "chunk_start", "chunk_end")
    __match_args__ = ("data", "chunk_start", "chunk_end")

    data: bytes
    chunk_start: bool
    chunk_end: bool

    def __init__(self, data: Any, chunk_start: bool = False, chunk_end: bool = False) -> None:
        _set_data(self, data)
        _set_chunk_start(self, chunk_start)
        _set_chunk_end(self, chunk_end)


class EndOfMessage(Event):
    """The end of a message, with the trailer fields of a chunked body."""

    __slots__ = ("headers",)
    _fields = ("headers",)
    __match_args__ = ("headers",)

    headers: Headers

    def __init__(self, *, headers: HeaderTypes | None = None) -> None:
        _set_trailers(self, _NO_HEADERS if headers is None else normalize_and_validate(headers))


_set_data = vars(Data)["data"].__set__
_set_chunk_start = vars(Data)["chunk_start"].__set__
_set_chunk_end = vars(Data)["chunk_end"].__set__
_set_trailers = vars(EndOfMessage)["headers"].__set__


class ConnectionClosed(Event):
    """The peer closed its side of the connection (``receive_data(b"")``)."""

    __slots__ = ()
    _fields = ()
    __match_args__ = ()

    def __init__(self) -> None:
        pass


_NO_HEADERS = Headers([])

HTTPEvent = Request | InformationalResponse | Response | Data | EndOfMessage | ConnectionClosed

__all__ += ["HTTPEvent", "_make_event"]
