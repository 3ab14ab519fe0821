"""HTTP operations shared by every adapter's client and server.

These are pure generators in the sense of :mod:`protomata._core._ops`: they
yield :class:`~protomata._core._ops.Send`, ``Receive``, ``Close`` and
``Call`` requests and never touch a socket.  The blocking, asyncio and trio
adapters run them unchanged, so keep-alive, 100-continue, HEAD handling,
error replies and redirects behave the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urljoin, urlsplit

from .._core import CLIENT, NEED_DATA, LocalProtocolError, RemoteProtocolError
from .._core._events import _event_builder
from .._core._ops import Call, Close, Operation, Receive, Send, ServerShutdown, TimeoutKind
from ._connection import _END_OF_MESSAGE, Connection
from ._events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    HTTPEvent,
    InformationalResponse,
    Request,
    Response,
)
from ._headers import Headers, normalize_and_validate
from ._state import DONE, MUST_CLOSE, SEND_BODY

__all__ = [
    "USER_AGENT",
    "BodyTooLarge",
    "Exchange",
    "HTTPError",
    "Origin",
    "PreparedRequest",
    "ProtocolFailure",
    "ResponseSpec",
    "ServerSettings",
    "TooManyRedirects",
    "build_request",
    "end_response",
    "exchange",
    "finish_cycle",
    "next_chunk",
    "next_event",
    "next_hop",
    "prepare_request",
    "read_body_chunk",
    "read_request_body_chunk",
    "redirect_target",
    "respond",
    "send_body",
    "serve_connection",
    "should_retry",
    "split_url",
    "start_response",
    "transport_error",
]

USER_AGENT = b"protomata"

# -- errors the high-level clients raise ---------------------------------------


class HTTPError(Exception):
    """Base class of the errors raised by protomata's HTTP clients."""


class ProtocolFailure(HTTPError):
    """The server broke HTTP (wraps the :class:`RemoteProtocolError`)."""


class TooManyRedirects(HTTPError):
    """Redirects went on longer than the client's limit."""


# -- URLs ---------------------------------------------------------------------------


class Origin(tuple[str, str, int]):
    """(scheme, host, port): what a pooled connection is keyed by."""

    __slots__ = ()

    def __new__(cls, scheme: str, host: str, port: int) -> Origin:
        return super().__new__(cls, (scheme, host, port))

    @property
    def scheme(self) -> str:
        return self[0]

    @property
    def host(self) -> str:
        return self[1]

    @property
    def port(self) -> int:
        return self[2]

    @property
    def tls(self) -> bool:
        return self[0] == "https"

    def host_header(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return (host if self.port == default else f"{host}:{self.port}").encode("idna")


def split_url(url: str) -> tuple[Origin, bytes]:
    """Split an http(s) URL into its origin and request target."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"only http and https URLs are supported, not {url!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"bad port in URL {url!r}") from None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        raw_target = target.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"URL path must be ASCII (percent-encode it): {url!r}") from None
    return Origin(parts.scheme, parts.hostname, port), raw_target


def build_request(
    method: str | bytes,
    origin: Origin,
    target: bytes,
    headers: Iterable[tuple[Any, Any]] = (),
    *,
    body: bytes | None = None,
    streaming: bool = False,
) -> Request:
    """A Request with Host, User-Agent and framing fields filled in.

    *body* is a complete body (sent with Content-Length); *streaming* means
    the body comes in pieces of unknown total size (sent chunked).  Fields
    the caller gives win over the defaults.
    """
    given = [(n.encode("ascii") if isinstance(n, str) else bytes(n), v) for n, v in headers]
    names = {n.lower() for n, _ in given}
    fields: list[tuple[Any, Any]] = []
    if b"host" not in names:
        fields.append((b"Host", origin.host_header()))
    if b"user-agent" not in names:
        fields.append((b"User-Agent", USER_AGENT))
    fields += given
    if b"content-length" not in names and b"transfer-encoding" not in names:
        if body is not None and (body or method not in ("GET", b"GET", "HEAD", b"HEAD")):
            fields.append((b"Content-Length", str(len(body)).encode()))
        elif streaming:
            fields.append((b"Transfer-Encoding", b"chunked"))
    return Request(method=method, target=target, headers=fields)


class PreparedRequest:
    """A request ready for :func:`exchange`, with where and how to send it."""

    __slots__ = ("body", "method", "origin", "request", "streaming", "url")

    def __init__(
        self,
        url: str,
        *,
        method: bytes,
        origin: Origin,
        request: Request,
        body: bytes | None,
        streaming: bool,
    ) -> None:
        self.url = url
        self.method = method
        self.origin = origin
        self.request = request
        #: the whole body (sent with Content-Length), or None
        self.body = body
        #: the body comes from the adapter piece by piece (sent chunked)
        self.streaming = streaming


def prepare_request(
    method: bytes, url: str, headers: Iterable[tuple[Any, Any]], content: Any
) -> PreparedRequest:
    """Everything a client adapter needs to send *method url* with *content*.

    *content* is None, a bytes-like object (a complete body), or anything
    else the adapter can iterate (a streamed body, sent chunked).
    """
    origin, target = split_url(url)
    body = bytes(content) if isinstance(content, (bytes, bytearray, memoryview)) else None
    streaming = content is not None and body is None
    request = build_request(method, origin, target, headers, body=body, streaming=streaming)
    return PreparedRequest(
        url, method=method, origin=origin, request=request, body=body, streaming=streaming
    )


def next_hop(
    prepared: PreparedRequest, content: Any, response: Response, follow_redirects: bool
) -> tuple[str, bytes, Any] | None:
    """Where to go after *response*: (url, method, content), or None to stop.

    Raises :class:`HTTPError` when a 307/308 would need a streamed body
    again, which cannot be replayed.
    """
    if not follow_redirects:
        return None
    target = redirect_target(prepared.url, prepared.method, response)
    if target is None:
        return None
    url, method, keep_body = target
    if not keep_body:
        return url, method, None
    if prepared.streaming:
        raise HTTPError("cannot repeat a streamed body for a 307/308 redirect")
    return url, method, content


def should_retry(exc: BaseException, *, reused: bool, retried: bool, streaming: bool) -> bool:
    """Whether a failed exchange deserves one more try on a fresh connection.

    A pooled connection may have been closed by the server while it sat
    idle; the request never reached it.  A streamed body cannot be resent,
    and a timeout means the server is slow, not gone.
    """
    return reused and not retried and not streaming and not isinstance(exc, TimeoutError)


def transport_error(prepared: PreparedRequest, exc: BaseException) -> HTTPError:
    """The :class:`HTTPError` to raise for a transport failure during *prepared*."""
    what = f"{prepared.method.decode()} {prepared.url}"
    if isinstance(exc, TimeoutError):
        return HTTPError(f"{what}: timed out")
    return HTTPError(f"{what}: {exc}")


_REDIRECTS = {301, 302, 303, 307, 308}


def redirect_target(url: str, method: bytes, response: Response) -> tuple[str, bytes, bool] | None:
    """Where a redirect response points: (url, method, keep_body), or None.

    303 always becomes GET; 301 and 302 turn POST into GET, as browsers do;
    307 and 308 repeat the method and body.
    """
    if response.status_code not in _REDIRECTS:
        return None
    location = response.headers.get(b"location")
    if location is None:
        return None
    new_url = urljoin(url, location.decode("latin-1"))
    if response.status_code == 303 and method != b"HEAD":
        return new_url, b"GET", False
    if response.status_code in (301, 302) and method == b"POST":
        return new_url, b"GET", False
    return new_url, method, True


# -- the operations --------------------------------------------------------------


def next_event(conn: Connection, timeout: str = TimeoutKind.READ) -> Operation[HTTPEvent]:
    """The peer's next event, reading as much as that takes."""
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data((yield Receive(timeout=timeout)))
            continue
        return event  # type: ignore[return-value]  # PAUSED only after a switch


def exchange(
    conn: Connection, request: Request, body: bytes | None = None, streaming: bool = False
) -> Operation[Response]:
    """Send *request* with its body and return the response head.

    A streaming body is pulled from the adapter with ``Call("next_chunk")``
    (the result is the next byte string, or None at the end).  Interim 1xx
    responses are skipped; a 101 or a 2xx to CONNECT is returned like any
    final response, with the connection switched.
    """
    yield Send(conn.send(request))
    try:
        if body:
            yield Send(conn.send(Data(data=body)))
        elif streaming:
            while (chunk := (yield Call("next_chunk"))) is not None:
                if chunk:
                    yield Send(conn.send_with_data_passthrough(Data(data=chunk)))
        yield Send(conn.send(EndOfMessage()))
    except (BrokenPipeError, ConnectionResetError) as send_error:
        # A server may answer early (413, 401, 404 ...) and close before the
        # upload ends (RFC 9112 section 9.5).  What it said is more useful
        # than the broken pipe, if it said anything.
        conn.send_failed()
        try:
            event = yield from next_event(conn)
        except (RemoteProtocolError, OSError):
            raise send_error from None
        if type(event) is Response:
            return event
        raise send_error from None
    while True:
        try:
            event = yield from next_event(conn)
        except RemoteProtocolError as exc:
            if conn.trailing_data == (b"", True):  # not one byte came back
                raise ProtocolFailure("server closed the connection without responding") from exc
            raise ProtocolFailure(f"bad response from server: {exc}") from exc
        if type(event) is Response:
            return event
        if type(event) is InformationalResponse:
            if event.status_code == 101:
                return event  # type: ignore[return-value]
            continue
        if type(event) is ConnectionClosed:
            raise ProtocolFailure("server closed the connection without responding")
        raise ProtocolFailure(f"unexpected {type(event).__name__} before the response")


def read_body_chunk(conn: Connection) -> Operation[bytes | None]:
    """The next piece of the peer's message body, or None at its end.

    On the server side, a client waiting for ``100 Continue`` gets it the
    first time the body is read (RFC 9110 section 10.1.1).
    """
    if conn.they_are_waiting_for_100_continue:
        yield Send(
            conn.send(InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
        )
    while True:
        try:
            event = yield from next_event(conn)
        except RemoteProtocolError as exc:
            if conn.our_role is CLIENT:
                raise ProtocolFailure(f"bad response body: {exc}") from exc
            raise
        if type(event) is Data:
            if event.data:
                return event.data
            continue
        if type(event) is EndOfMessage:
            return None
        raise ProtocolFailure(f"unexpected {type(event).__name__} in a message body")


def finish_cycle(conn: Connection) -> bool:
    """After a complete exchange: reset for the next one if the connection
    can be reused, and say whether it can."""
    if conn.our_state is DONE and conn.their_state is DONE:
        conn.start_next_cycle()
        return True
    return False


# -- serving one connection -----------------------------------------------------

_REASONS = {
    100: b"Continue",
    101: b"Switching Protocols",
    200: b"OK",
    201: b"Created",
    204: b"No Content",
    206: b"Partial Content",
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    304: b"Not Modified",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    416: b"Range Not Satisfiable",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}


_new_response = _event_builder(Response)


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase for *status* (empty if we do not know it)."""
    return _REASONS.get(status, b"")


class ServerSettings:
    """What every adapter's HTTP server needs to know, whatever its I/O."""

    __slots__ = ("date", "draining", "log_exchanges", "max_body_size", "server_header")

    def __init__(
        self,
        server_header: bytes = b"protomata",
        max_body_size: int | None = None,
        *,
        date: Callable[[], bytes] | None = None,
        log_exchanges: bool = True,
    ) -> None:
        if server_header:
            normalize_and_validate([(b"Server", server_header)])  # refuse CR/LF etc. now
        #: value of the Server field added to responses (b"" adds none)
        self.server_header = server_header
        #: largest request body a handler may read (413 beyond), None: no limit
        self.max_body_size = max_body_size
        #: the adapter's source of the current HTTP date; when None, each
        #: response asks with ``Call("date")`` (the pure layer has no clock)
        self.date = date
        #: whether to hand every exchange to the adapter's access log
        self.log_exchanges = log_exchanges
        #: set by the adapter when its server shuts down gracefully: every
        #: response from then on says ``Connection: close``, so clients
        #: do not send another request on a connection about to close
        self.draining = False


class ResponseSpec:
    """A response a handler returns in one piece (rather than streaming it).

    *body* is the whole body, or None when the adapter streams it: the
    adapter then answers ``Call("next_chunk", spec)`` with each piece and
    None at the end.  ``content_length`` declares a streamed body's size.
    """

    __slots__ = ("body", "content_length", "headers", "reason", "status", "stream")

    def __init__(
        self,
        status: int,
        headers: Iterable[tuple[Any, Any]] = (),
        body: bytes | None = b"",
        *,
        stream: Any = None,
        content_length: int | None = None,
        reason: bytes | None = None,
    ) -> None:
        self.status = status
        self.headers = list(headers)
        self.body = body
        #: the adapter's body source when *body* is None (opaque here)
        self.stream = stream
        self.content_length = content_length
        self.reason = reason


def next_chunk(spec: ResponseSpec) -> Any:
    """The next piece of ``spec.stream`` for an async adapter's ``Call("next_chunk")``.

    The stream may be a sync or an async iterable; for an async one the
    result is an awaitable (the adapters' runners await awaitables).  None
    marks the end.  The iterator is kept in ``spec.stream``.
    """
    source = spec.stream
    if hasattr(source, "__anext__"):
        return _anext_or_none(source)
    if hasattr(source, "__aiter__"):
        spec.stream = source = source.__aiter__()
        return _anext_or_none(source)
    if not hasattr(source, "__next__"):
        spec.stream = source = iter(source)
    return next(source, None)


async def _anext_or_none(source: Any) -> bytes | None:
    try:
        return await source.__anext__()  # type: ignore[no-any-return]
    except StopAsyncIteration:
        return None


class Exchange:
    """One request on a server connection, and what has been answered so far.

    The response operations record the status and body size here; the serve
    loop hands the record to the adapter's access log.
    """

    __slots__ = ("body_bytes", "request", "status")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.status = 0
        self.body_bytes = 0


def start_response(
    conn: Connection,
    exchange: Exchange,
    settings: ServerSettings,
    status: int,
    headers: Iterable[tuple[Any, Any]],
    *,
    reason: bytes | None = None,
    content_length: int | None = None,
) -> Operation[None]:
    """Send a response head, adding Date, Server and Content-Length fields."""
    date = settings.date() if settings.date is not None else (yield Call("date"))
    yield Send(
        response_head(
            conn,
            exchange,
            settings,
            status,
            headers,
            reason=reason,
            content_length=content_length,
            date=date,
        )
    )


def response_head(
    conn: Connection,
    exchange: Exchange,
    settings: ServerSettings,
    status: int,
    headers: Iterable[tuple[Any, Any]],
    *,
    reason: bytes | None,
    content_length: int | None,
    date: bytes,
) -> bytes:
    """The bytes of a response head, with Date, Server and Content-Length added.

    Only the fields the application gave are validated; the ones added here
    come from the adapter's clock, validated settings and an integer.
    """
    if settings.draining and status >= 200:
        headers = [*headers, (b"Connection", b"close")]
    given = normalize_and_validate(headers)
    info = given.info
    items = list(given._full_items)
    names = {item[1] for item in items}
    if b"date" not in names:
        items.append((b"Date", b"date", date))
    if b"server" not in names and settings.server_header:
        items.append((b"Server", b"server", settings.server_header))
    if content_length is not None and info.content_length is None and not info.chunked:
        items.append((b"Content-Length", b"content-length", b"%d" % content_length))
        info = info.copy()
        info.content_length = content_length
    if reason is None and type(status) is int and 200 <= status < 1000:
        # The common case: a final status and our own reason phrase, both
        # valid by construction, so the event is built without re-checking.
        event: Response | InformationalResponse = _new_response(
            status, Headers(items, info), b"1.1", _REASONS.get(status, b"")
        )
    else:
        cls = InformationalResponse if status < 200 else Response
        event = cls(
            status_code=status,
            headers=Headers(items, info),
            reason=reason_phrase(status) if reason is None else reason,
        )
    if status >= 200:
        exchange.status = status
    return conn.send(event)


def send_body(conn: Connection, exchange: Exchange, data: bytes) -> Operation[None]:
    """Send a piece of the response body (nothing for a HEAD request)."""
    if data and exchange.request.method != b"HEAD":
        exchange.body_bytes += len(data)
        yield Send(conn.send_with_data_passthrough(Data(data=data)))


def end_response(conn: Connection) -> Operation[None]:
    """Finish the response body."""
    data = conn.send(_END_OF_MESSAGE)
    if data:
        yield Send(data)


def whole_response(
    conn: Connection,
    exchange: Exchange,
    settings: ServerSettings,
    status: int,
    headers: Iterable[tuple[Any, Any]],
    *,
    body: bytes,
    reason: bytes | None = None,
    content_length: int | None = None,
    date: bytes,
) -> list[bytes]:
    """The pieces of a complete response whose body is known: head, body, end.

    A plain function rather than an operation, for adapters that queue the
    bytes themselves (the asyncio ASGI server); :func:`respond` uses it too.
    """
    head = response_head(
        conn,
        exchange,
        settings,
        status,
        headers,
        reason=reason,
        content_length=len(body) if content_length is None else content_length,
        date=date,
    )
    if exchange.request.method == b"HEAD":
        body = b""
    exchange.body_bytes += len(body)
    return [head, *conn._send_rest_of_body(body)]


def respond(
    conn: Connection, exchange: Exchange, settings: ServerSettings, spec: ResponseSpec
) -> Operation[None]:
    """Send a whole :class:`ResponseSpec`, pulling a streamed body piece by piece."""
    length = spec.content_length
    body = spec.body
    if body is not None:
        # The whole response at once: one Send, so one write for the adapter.
        date = settings.date() if settings.date is not None else (yield Call("date"))
        yield Send(
            whole_response(
                conn,
                exchange,
                settings,
                spec.status,
                spec.headers,
                body=body,
                reason=spec.reason,
                content_length=length,
                date=date,
            )
        )
        return
    yield from start_response(
        conn,
        exchange,
        settings,
        spec.status,
        spec.headers,
        reason=spec.reason,
        content_length=length,
    )
    if exchange.request.method != b"HEAD":
        while (chunk := (yield Call("next_chunk", spec))) is not None:
            yield from send_body(conn, exchange, chunk)
    yield from end_response(conn)


def error_response(conn: Connection, status: int, server_header: bytes, date: bytes) -> bytes:
    """The bytes of a short plain-text error reply, or b"" if none can be sent."""
    body = b"%d %s\n" % (status, reason_phrase(status))
    fields = [
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", b"%d" % len(body)),
        (b"Connection", b"close"),
        (b"Date", date),
    ]
    if server_header:
        fields.append((b"Server", server_header))
    try:
        head = conn.send(Response(status_code=status, reason=reason_phrase(status), headers=fields))
        return (
            (head or b"") + (conn.send(Data(data=body)) or b"") + (conn.send(EndOfMessage()) or b"")
        )
    except LocalProtocolError:
        return b""  # a response had already begun: closing is all we can do


def serve_connection(conn: Connection, settings: ServerSettings) -> Operation[None]:
    """Serve requests on one connection until it closes.

    Per request the adapter gets ``Call("handle", exchange)``.  Its handler
    reads the body with :func:`read_body_chunk` and either answers itself
    with :func:`start_response` / :func:`send_body` / :func:`end_response`
    (ASGI apps do) and returns None, or returns a :class:`ResponseSpec` that
    this loop sends.  Then ``Call("log", exchange)`` feeds the access log.
    This loop drains an unread body, keeps the connection alive when HTTP
    allows, and answers malformed input and timeouts with 400/408/413/431/
    505 as the parser suggests, or 500 when the handler fails (after
    ``Call("log_exception", exchange, exception)``).
    """
    while True:
        try:
            event = yield from _next_request_event(conn)
        except RemoteProtocolError as exc:
            yield from _reply_error(conn, settings, exc.error_status_hint)
            return
        except TimeoutError:
            if conn.trailing_data[0]:
                yield from _reply_error(conn, settings, 408)  # a head began: slow peer
            else:
                yield Close()  # idle keep-alive connection
            return
        except ServerShutdown:  # idle between requests while the server drains
            yield Close()
            return
        if type(event) is not Request:  # ConnectionClosed
            yield Close()
            return
        exchange = Exchange(event)
        try:
            spec = yield Call("handle", exchange)
            if spec is not None:
                yield from respond(conn, exchange, settings, spec)
        except RemoteProtocolError as exc:  # a malformed body, read by the handler
            yield from _reply_error(conn, settings, exc.error_status_hint)
            return
        except BodyTooLarge:
            yield from _reply_error(conn, settings, 413)
            return
        except TimeoutError:
            yield from _reply_error(conn, settings, 408)
            return
        except Exception as exc:  # the application failed
            yield Call("log_exception", exchange, exc)
            yield from _reply_error(conn, settings, 500)
            return
        if settings.log_exchanges:
            yield Call("log", exchange)
        if conn.our_state is not DONE and conn.our_state is not MUST_CLOSE:
            # The handler returned mid-response (or without one): unsafe to go on.
            if exchange.status == 0:
                yield from _reply_error(conn, settings, 500)
                return
            yield Close()
            return
        # Drain what the handler did not read, so the next request parses.
        try:
            if conn.their_state is SEND_BODY and not conn.client_is_waiting_for_100_continue:
                conn.next_event()  # most often the EndOfMessage of a request without a body
            while conn.their_state is SEND_BODY:
                if (yield from read_body_chunk(conn)) is None:
                    break
        except (RemoteProtocolError, TimeoutError, ProtocolFailure):
            yield Close()
            return
        if not finish_cycle(conn):
            yield Close()
            return


class BodyTooLarge(Exception):
    """A request body exceeded :attr:`ServerSettings.max_body_size` (413)."""


def read_request_body_chunk(
    conn: Connection, exchange: Exchange, settings: ServerSettings, received: int
) -> Operation[bytes | None]:
    """Like :func:`read_body_chunk`, enforcing the server's body size limit.

    *received* is how many body bytes the handler has read so far.
    """
    limit = settings.max_body_size
    request = exchange.request
    if limit is not None and received == 0:
        declared = request.headers.info.content_length
        if declared is not None and declared > limit:
            raise BodyTooLarge(f"request body of {declared} bytes exceeds {limit}")
    chunk = yield from read_body_chunk(conn)
    if limit is not None and chunk is not None and received + len(chunk) > limit:
        raise BodyTooLarge(f"request body exceeds {limit} bytes")
    return chunk


def _next_request_event(conn: Connection) -> Operation[HTTPEvent]:
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            # Between requests the idle timeout applies; once a head has
            # begun, the shorter head timeout cuts off slow-loris peers.
            timeout = TimeoutKind.HEAD if conn.trailing_data[0] else TimeoutKind.IDLE
            conn.receive_data((yield Receive(timeout=timeout)))
            continue
        return event  # type: ignore[return-value]


def _reply_error(conn: Connection, settings: ServerSettings, status: int) -> Operation[None]:
    data = error_response(conn, status, settings.server_header, (yield Call("date")))
    if data:
        yield Send(data)
        yield Call("log_error", status)
    yield Close()
