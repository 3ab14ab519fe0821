"""Serialization: message heads and the three body framings.

Writers append byte strings to a list; ``Connection.send`` joins them and
``send_with_data_passthrough`` hands the list over so large bodies are
never copied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._core import LocalProtocolError
from ._abnf import target_form_ok
from ._events import Data, EndOfMessage, InformationalResponse, Request, Response
from ._headers import Headers

__all__ = [
    "BodyWriter",
    "ChunkedWriter",
    "ContentLengthWriter",
    "Http10Writer",
    "write_request",
    "write_response",
]

Write = Callable[[bytes], None]


def _head_bytes(start_line: bytes, headers: Headers) -> bytes:
    wire = headers._wire
    if wire is None:
        wire = headers._wire = _field_lines(headers)
    return start_line + wire


def _field_lines(headers: Headers) -> bytes:
    # Host goes first in requests (RFC 9110 section 7.2 advice); order is
    # otherwise preserved, names keep the case the user gave them.
    items = headers._full_items
    if headers.info.host_count and items[0][1] != b"host":
        items = [item for item in items if item[1] == b"host"] + [
            item for item in items if item[1] != b"host"
        ]
    parts: list[bytes] = []
    for raw, _, value in items:
        parts += (raw, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def write_request(request: Request, write: Write) -> None:
    if request.http_version != b"1.1":
        raise LocalProtocolError("I only send HTTP/1.1")
    if (request.target[:1] != b"/" or request.method == b"CONNECT") and not target_form_ok(
        request.method, request.target
    ):
        raise LocalProtocolError(
            f"request target {request.target[:80]!r} has no form allowed for {request.method!r}"
        )
    write(_head_bytes(b"%s %s HTTP/1.1\r\n" % (request.method, request.target), request.headers))


def write_response(response: Response | InformationalResponse, write: Write) -> None:
    if response.http_version != b"1.1":
        raise LocalProtocolError("I only send HTTP/1.1")
    write(
        _head_bytes(
            b"HTTP/1.1 %d %s\r\n" % (response.status_code, response.reason), response.headers
        )
    )


def _write_trailers(headers: Headers, write: Write) -> None:
    write(_head_bytes(b"0\r\n", headers))


class ContentLengthWriter:
    __slots__ = ("_length",)

    def __init__(self, length: int) -> None:
        self._length = length

    def __call__(self, event: Data | EndOfMessage, write: Write) -> None:
        data = self.body_piece(event)
        if data is not None:
            write(data)

    def body_piece(self, event: Data | EndOfMessage) -> Any:
        """The payload to send for *event*: the data of a Data event, None
        for EndOfMessage (after checking the length adds up)."""
        if isinstance(event, Data):
            self._length -= len(event.data)
            if self._length < 0:
                raise LocalProtocolError("Too much data for declared Content-Length")
            return event.data
        if self._length != 0:
            raise LocalProtocolError("Too little data for declared Content-Length")
        if event.headers:
            raise LocalProtocolError("Content-Length and trailers don't mix")
        return None


class ChunkedWriter:
    __slots__ = ()

    def __call__(self, event: Data | EndOfMessage, write: Write) -> None:
        if isinstance(event, Data):
            data = event.data
            # An empty chunk would end the body; send nothing instead.
            if len(data):
                write(b"%x\r\n" % len(data))
                write(data)
                write(b"\r\n")
        else:
            info = event.headers.info
            if info.content_length is not None or info.chunked or info.host_count:
                # RFC 9110 section 6.5.1: framing and routing fields are never trailers.
                raise LocalProtocolError(
                    "Content-Length, Transfer-Encoding and Host are not allowed as trailers"
                )
            _write_trailers(event.headers, write)


class Http10Writer:
    """A body that ends when we close the connection."""

    __slots__ = ()

    def __call__(self, event: Data | EndOfMessage, write: Write) -> None:
        if isinstance(event, Data):
            write(event.data)
        elif event.headers:
            raise LocalProtocolError("can't send trailers to HTTP/1.0 client")


BodyWriter = ContentLengthWriter | ChunkedWriter | Http10Writer
