"""WSGI (PEP 3333) without I/O: the environ, ``start_response`` and ``wsgi.input``.

Theory of operation: an adapter turns a received
:class:`~protomata.http.Request` into an environ with :func:`build_environ`,
giving it a :class:`InputStream` that pulls body pieces through a callable
the adapter supplies.  The application calls a :class:`StartResponse`,
which validates and records the status and fields and enforces the
``exc_info`` rules; the adapter sends the head (with
:meth:`StartResponse.head`) before the first non-empty body piece, and
calls :meth:`StartResponse.mark_sent` when it has.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes

from ._events import Request

__all__ = ["HOP_BY_HOP", "InputStream", "StartResponse", "WSGIError", "build_environ"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

#: fields a WSGI application must not set (PEP 3333, "Other HTTP Features")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

_STATUS = re.compile(r"([1-9][0-9]{2}) ([^\r\n\x00]*)\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_FIELD_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*\Z")


class WSGIError(Exception):
    """The application broke a WSGI rule (bad status, bad field, misuse)."""


def build_environ(
    request: Request,
    *,
    server: tuple[str, int],
    client: tuple[str, int],
    scheme: str,
    wsgi_input: Any,
    errors: Any,
    multithread: bool = True,
    multiprocess: bool = False,
) -> dict[str, Any]:
    """The PEP 3333 environ for *request*.

    *server* is the (host, port) the server listens on, *client* the peer's
    address.  Header fields become ``HTTP_*`` keys (repeated fields joined
    with ``,``); fields whose names contain ``_`` are dropped, because
    ``X-Foo`` and ``X_Foo`` would map to the same key and let a client spoof
    a header a proxy set.
    """
    target = request.target
    if target.startswith((b"http://", b"https://")):  # absolute-form
        after = target.split(b"//", 1)[1]
        cut = min((i for i in (after.find(b"/"), after.find(b"?")) if i >= 0), default=len(after))
        target = after[cut:]
        if not target.startswith(b"/"):
            target = b"/" + target
    path, _, query = target.partition(b"?")
    if target == b"*":
        path = b"*"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method.decode("ascii"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "RAW_URI": request.target.decode("latin-1"),
        "REQUEST_URI": request.target.decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": wsgi_input,
        "wsgi.errors": errors,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        text_name = name.decode("latin-1")
        if "_" in text_name:
            continue
        text_value = value.decode("latin-1")
        if text_name == "content-type":
            environ["CONTENT_TYPE"] = text_value
            continue
        if text_name == "content-length":
            environ["CONTENT_LENGTH"] = text_value
            continue
        key = "HTTP_" + text_name.upper().replace("-", "_")
        if key in environ:
            separator = "; " if key == "HTTP_COOKIE" else ","
            environ[key] += separator + text_value
        else:
            environ[key] = text_value
    return environ


class StartResponse:
    """The ``start_response`` callable handed to a WSGI application.

    *write* is what the returned legacy ``write()`` callable does; the
    adapter makes it send the head if needed, then the data.
    """

    __slots__ = ("headers", "reason", "sent", "status", "write")

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.write = write
        #: the status code, 0 until the application called us
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        #: whether the adapter has sent the head
        self.sent = False

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    # Too late to change the response: re-raise (PEP 3333).
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the reference cycle with the frame
        elif self.status:
            raise WSGIError("start_response() called twice without exc_info")
        code, reason = _parse_status(status)
        self.headers = _parse_headers(headers)
        self.status = code
        self.reason = reason
        return self.write

    def head(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """(status, reason, fields) to send; raises if the application never called us."""
        if not self.status:
            raise WSGIError("the application did not call start_response()")
        return self.status, self.reason, self.headers

    def mark_sent(self) -> None:
        """Record that the head went out (later ``exc_info`` calls re-raise)."""
        self.sent = True


def _parse_status(status: str) -> tuple[int, bytes]:
    if not isinstance(status, str):
        raise WSGIError(f"status must be a str, not {type(status).__name__}")
    match = _STATUS.match(status)
    if match is None:
        raise WSGIError(f"malformed status {status!r}")
    code, reason = match.groups()
    try:
        return int(code), reason.encode("latin-1")
    except UnicodeEncodeError:
        raise WSGIError(f"status {status!r} is not latin-1") from None


def _parse_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    if not isinstance(headers, list):
        raise WSGIError(f"headers must be a list, not {type(headers).__name__}")
    fields: list[tuple[bytes, bytes]] = []
    for item in headers:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise WSGIError(f"header {item!r} is not a (name, value) tuple")
        name, value = item
        if not (isinstance(name, str) and isinstance(value, str)):
            raise WSGIError(f"header {item!r} must be a pair of str")
        if not _TOKEN.match(name):
            raise WSGIError(f"invalid header name {name!r}")
        if name.lower() in HOP_BY_HOP:
            raise WSGIError(f"hop-by-hop header {name!r} is not allowed in WSGI")
        if not _FIELD_VALUE.match(value):
            raise WSGIError(f"invalid characters in the value of header {name!r}")
        try:
            fields.append((name.encode("ascii"), value.strip(" \t").encode("latin-1")))
        except UnicodeEncodeError:
            raise WSGIError(f"header {name!r} is not latin-1") from None
    return fields


class InputStream:
    """``wsgi.input``: the request body, pulled on demand through *next_chunk*.

    *next_chunk* returns the next piece of the body, or None at its end;
    the adapter implements it with its body reader (so a 413 limit or a
    malformed body surfaces where the application reads).
    """

    def __init__(self, next_chunk: Callable[[], bytes | None]) -> None:
        self._next_chunk = next_chunk
        self._buffer = bytearray()
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._next_chunk()
        if chunk is None:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to *size* bytes (all that is left when *size* is -1 or None)."""
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        """One line including its ``\\n`` (at most *size* bytes when given)."""
        limit = None if size is None or size < 0 else size
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                n = end + 1
                break
            if limit is not None and len(self._buffer) >= limit:
                n = limit
                break
            start = len(self._buffer)
            if not self._fill():
                n = len(self._buffer)
                break
        if limit is not None:
            n = min(n, limit)
        return self._take(n)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """The remaining lines (stopping once *hint* bytes were read, if given)."""
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line
