"""The HTTP/1.1 connection: h11's public API over our parser and writers.

Theory of operation
-------------------
``receive_data`` only appends to the buffer; ``next_event`` parses lazily,
one event per call, with the reader that fits the peer's current state.
Every event, sent or received, goes through ``_process_event``, which
updates the two-sided state (``_state.ConnectionState``), keep-alive,
100-continue and protocol-switch bookkeeping, then swaps the reader or
writer when a side's state changed.  ``send`` validates an event against
our state before serializing it, so an invalid send never emits bytes.
"""

from __future__ import annotations

from typing import Any, Callable, Union

from .._core import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    LocalProtocolError,
    ReceiveBuffer,
    RemoteProtocolError,
    Role,
    SentinelType,
)
from ._events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    HTTPEvent,
    InformationalResponse,
    Request,
    Response,
)
from ._headers import Headers, get_comma_header, set_comma_header
from ._readers import (
    ChunkedReader,
    ContentLengthReader,
    HeadLimits,
    Http10Reader,
    read_request_head,
    read_response_head,
)
from ._state import (
    CLOSED,
    DONE,
    ERROR,
    IDLE,
    MIGHT_SWITCH_PROTOCOL,
    MUST_CLOSE,
    SEND_BODY,
    SEND_RESPONSE,
    SWITCHED_PROTOCOL,
    ConnectionState,
    State,
    Switch,
)
from ._writers import (
    ChunkedWriter,
    ContentLengthWriter,
    Http10Writer,
    write_request,
    write_response,
)

__all__ = ["DEFAULT_MAX_HEADER_COUNT", "DEFAULT_MAX_INCOMPLETE_EVENT_SIZE", "Connection"]

#: Largest head (start line plus fields) we buffer, as in h11: 16 KiB.
DEFAULT_MAX_INCOMPLETE_EVENT_SIZE = 16 * 1024
#: Most header fields in one head.
DEFAULT_MAX_HEADER_COUNT = 128

_ReaderFn = Callable[[ReceiveBuffer], Any]
_WriterFn = Callable[[Any, Callable[[bytes], None]], None]
_CONTENT_LENGTH_ZERO = ("content-length", 0)


def _expect_nothing(buf: ReceiveBuffer) -> None:
    if buf:
        raise RemoteProtocolError("Got data when expecting EOF")
    return None


def _body_framing(request_method: bytes | None, event: Request | Response) -> tuple[str, int]:
    """("chunked" | "content-length" | "http/1.0", length) for a message."""
    if type(event) is Response:
        status = event.status_code
        if (
            status == 204
            or status == 304
            or request_method == b"HEAD"
            or (request_method == b"CONNECT" and 200 <= status < 300)
        ):
            return _CONTENT_LENGTH_ZERO
    info = event.headers.info
    if info.chunked:
        return ("chunked", 0)
    if info.content_length is not None:
        return ("content-length", info.content_length)
    if type(event) is Request:
        return _CONTENT_LENGTH_ZERO
    return ("http/1.0", 0)


def _keep_alive(event: Request | Response) -> bool:
    info = event.headers.info
    if info.close:
        return False
    if event.http_version < b"1.1":
        # HTTP/1.0 persistence is opt-in (RFC 9112 appendix C.2.2).
        return info.keep_alive
    return True


class Connection:
    """One HTTP/1.1 connection, seen from one side (``CLIENT`` or ``SERVER``).

    :param our_role: which side we play.
    :param max_incomplete_event_size: the largest message head (start line
        and header fields, in bytes) we buffer; beyond it the peer gets
        431.  Enforced however the bytes arrive.
    :param max_header_count: the most header fields in one head (431).
    :param max_line_length: the longest single start or field line
        (414 for a request line, 431 for a field); defaults to
        *max_incomplete_event_size*.
    """

    def __init__(
        self,
        our_role: Role,
        max_incomplete_event_size: int = DEFAULT_MAX_INCOMPLETE_EVENT_SIZE,
        *,
        max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
        max_line_length: int | None = None,
    ) -> None:
        if our_role is not CLIENT and our_role is not SERVER:
            raise ValueError(f"expected CLIENT or SERVER, not {our_role!r}")
        self._max_incomplete_event_size = max_incomplete_event_size
        self.our_role: Role = our_role
        self.their_role: Role = SERVER if our_role is CLIENT else CLIENT
        self._limits = HeadLimits(
            max_incomplete_event_size,
            max_line_length if max_line_length is not None else max_incomplete_event_size,
            max_header_count,
            # obs-fold: user agents must accept it in responses; servers
            # may reject it in requests, and we do (RFC 9112 section 5.2).
            obs_fold_ok=our_role is CLIENT,
        )
        self._cstate = ConnectionState()
        self._receive_buffer = ReceiveBuffer()
        self._receive_buffer_closed = False
        #: The HTTP version the peer used in its last request or response head.
        self.their_http_version: bytes | None = None
        self._request_method: bytes | None = None
        #: Whether the client has sent ``Expect: 100-continue`` and not yet
        #: seen a response nor sent body data.
        self.client_is_waiting_for_100_continue = False
        self._writer: _WriterFn | None = self._writer_for(IDLE, None)
        self._reader: _ReaderFn = self._reader_for(IDLE, None)

    # -- public state ------------------------------------------------------

    @property
    def states(self) -> dict[Role, State]:
        """Both sides' states, as a new dict."""
        return self._cstate.states

    @property
    def our_state(self) -> State:
        return self._cstate.client if self.our_role is CLIENT else self._cstate.server

    @property
    def their_state(self) -> State:
        return self._cstate.server if self.our_role is CLIENT else self._cstate.client

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        return self.their_role is CLIENT and self.client_is_waiting_for_100_continue

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Unparsed bytes and whether EOF was seen (for protocol switches)."""
        return (bytes(self._receive_buffer), self._receive_buffer_closed)

    def start_next_cycle(self) -> None:
        """Reset both sides to IDLE after a completed request/response."""
        old = (self._cstate.client, self._cstate.server)
        self._cstate.start_next_cycle()
        self._request_method = None
        self.their_http_version = None
        self.client_is_waiting_for_100_continue = False
        self._respond_to_state_changes(old, None)

    # -- I/O objects ---------------------------------------------------------

    def _writer_for(self, state: State, event: Any) -> _WriterFn | None:
        if state is SEND_BODY:
            framing, length = _body_framing(self._request_method, event)
            if framing == "content-length":
                return ContentLengthWriter(length)
            return ChunkedWriter() if framing == "chunked" else Http10Writer()
        if state is IDLE and self.our_role is CLIENT:
            return write_request
        if self.our_role is SERVER and (state is IDLE or state is SEND_RESPONSE):
            return write_response
        return None

    def _reader_for(self, state: State, event: Any) -> _ReaderFn:
        if state is SEND_BODY:
            framing, length = _body_framing(self._request_method, event)
            if framing == "content-length":
                return ContentLengthReader(length)
            return ChunkedReader(self._limits) if framing == "chunked" else Http10Reader()
        limits = self._limits
        if state is IDLE and self.their_role is CLIENT:
            return lambda buf: read_request_head(buf, limits)
        if self.their_role is SERVER and (state is IDLE or state is SEND_RESPONSE):
            return lambda buf: read_response_head(buf, limits)
        return _expect_nothing

    def _respond_to_state_changes(self, old: tuple[State, State], event: Any) -> None:
        cstate = self._cstate
        if self.our_role is CLIENT:
            our_old, their_old = old
            ours, theirs = cstate.client, cstate.server
        else:
            their_old, our_old = old
            ours, theirs = cstate.server, cstate.client
        if ours is not our_old:
            self._writer = self._writer_for(ours, event)
        if theirs is not their_old:
            self._reader = self._reader_for(theirs, event)

    # -- the event pipeline ----------------------------------------------------

    def _server_switch_event(self, event: Any) -> Switch | None:
        pending = self._cstate.pending_switch_proposals
        if type(event) is InformationalResponse and event.status_code == 101:
            return Switch.UPGRADE
        if (
            type(event) is Response
            and Switch.CONNECT in pending
            and 200 <= event.status_code < 300
        ):
            return Switch.CONNECT
        return None

    def _process_event(self, role: Role, event: Any) -> None:
        cstate = self._cstate
        old = (cstate.client, cstate.server)
        etype = type(event)
        if etype is Request and role is CLIENT:
            if event.method == b"CONNECT":
                cstate.process_client_switch_proposal(Switch.CONNECT)
            if event.headers.info.upgrade:
                cstate.process_client_switch_proposal(Switch.UPGRADE)
        server_switch = self._server_switch_event(event) if role is SERVER else None
        cstate.process_event(role, etype, server_switch)
        if etype is Request:
            self._request_method = event.method
            if role is self.their_role:
                self.their_http_version = event.http_version
            if not _keep_alive(event):
                cstate.process_keep_alive_disabled()
            if event.http_version >= b"1.1" and event.headers.info.expect_continue:
                self.client_is_waiting_for_100_continue = True
        elif etype is Response or etype is InformationalResponse:
            if role is self.their_role:
                self.their_http_version = event.http_version
            if etype is Response and not _keep_alive(event):
                cstate.process_keep_alive_disabled()
            self.client_is_waiting_for_100_continue = False
        elif role is CLIENT and (etype is Data or etype is EndOfMessage):
            self.client_is_waiting_for_100_continue = False
        if (cstate.client, cstate.server) != old:
            self._respond_to_state_changes(old, event)

    def _process_error(self, role: Role) -> None:
        old = (self._cstate.client, self._cstate.server)
        self._cstate.process_error(role)
        self._respond_to_state_changes(old, None)

    # -- receiving --------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed (EOF)."""
        if data:
            if self._receive_buffer_closed:
                raise RuntimeError("received close, then received more data?")
            self._receive_buffer += data
        else:
            self._receive_buffer_closed = True

    def _extract_next_receive_event(self) -> Any:
        state = self.their_state
        if state is DONE and self._receive_buffer:
            return PAUSED
        if state is MIGHT_SWITCH_PROTOCOL or state is SWITCHED_PROTOCOL:
            return PAUSED
        event = self._reader(self._receive_buffer)
        if event is None:
            if not self._receive_buffer and self._receive_buffer_closed:
                read_eof = getattr(self._reader, "read_eof", None)
                return read_eof() if read_eof is not None else ConnectionClosed()
            return NEED_DATA
        return event

    def next_event(self) -> HTTPEvent | SentinelType:
        """Parse and return the next event from the peer, or a sentinel.

        Returns ``NEED_DATA`` when more bytes are needed and ``PAUSED`` when
        the peer has started a new request (or switched protocols) before we
        finished the current cycle.  Raises :class:`RemoteProtocolError` for
        anything the peer got wrong; after that, ``their_state`` is ERROR.
        """
        if self.their_state is ERROR:
            raise RemoteProtocolError("Can't receive data when peer state is ERROR")
        try:
            event = self._extract_next_receive_event()
            if event is NEED_DATA:
                if len(self._receive_buffer) > self._max_incomplete_event_size:
                    # Bodies never wait here: only an unfinished head can.
                    raise RemoteProtocolError("Receive buffer too long", error_status_hint=431)
                if self._receive_buffer_closed:
                    raise RemoteProtocolError("peer unexpectedly closed connection")
            elif event is not PAUSED:
                self._process_event(self.their_role, event)
            return event  # type: ignore[no-any-return]
        except BaseException as exc:
            self._process_error(self.their_role)
            if isinstance(exc, LocalProtocolError):
                exc._reraise_as_remote_protocol_error()
            raise

    # -- sending -------------------------------------------------------------------

    def send(self, event: HTTPEvent) -> bytes | None:
        """Serialize *event* to bytes (``None`` for ConnectionClosed)."""
        data_list = self.send_with_data_passthrough(event)
        if data_list is None:
            return None
        return b"".join(data_list)

    def send_with_data_passthrough(self, event: HTTPEvent) -> list[bytes] | None:
        """Like :meth:`send`, but return a list of byte strings to write.

        A ``Data`` event's payload object appears in the list as it was
        given, uncopied (for zero-copy writes of large bodies).
        """
        if self.our_state is ERROR:
            raise LocalProtocolError("Can't send data when our state is ERROR")
        try:
            if type(event) is Response:
                event = self._clean_up_response_headers_for_sending(event)
            writer = self._writer
            self._process_event(self.our_role, event)
            if type(event) is ConnectionClosed:
                return None
            if writer is None:
                raise LocalProtocolError(f"can't send {type(event).__name__} now")
            data_list: list[bytes] = []
            writer(event, data_list.append)
            return data_list
        except BaseException:
            self._process_error(self.our_role)
            raise

    def send_failed(self) -> None:
        """Tell the machine a send failed; our state becomes ERROR."""
        self._process_error(self.our_role)

    def _clean_up_response_headers_for_sending(self, response: Response) -> Response:
        """Fix framing and Connection fields of a response we are about to send.

        Mirrors h11: a response whose length we cannot declare is sent
        chunked to HTTP/1.1 clients and close-delimited to HTTP/1.0 ones;
        Connection: close is added when the connection will close.  We also
        answer an HTTP/1.0 keep-alive request with Connection: keep-alive.
        """
        headers = response.headers
        method = self._request_method
        framing, _ = _body_framing(b"GET" if method == b"HEAD" else method, response)
        need_close = False
        changed = False
        their_version = self.their_http_version
        old_http = their_version is None or their_version < b"1.1"
        if framing != "content-length":
            changed = True
            headers = set_comma_header(headers, b"content-length", [])
            if old_http:
                headers = set_comma_header(headers, b"transfer-encoding", [])
                if method != b"HEAD":
                    need_close = True
            else:
                headers = set_comma_header(headers, b"transfer-encoding", [b"chunked"])
        keep_alive = self._cstate.keep_alive and not need_close
        info = headers.info
        if not keep_alive and (info.keep_alive or not info.close):
            changed = True
            connection = set(get_comma_header(headers, b"connection"))
            connection.discard(b"keep-alive")
            connection.add(b"close")
            headers = set_comma_header(headers, b"connection", sorted(connection))
        elif keep_alive and old_http and their_version is not None and not info.keep_alive:
            changed = True
            connection = set(get_comma_header(headers, b"connection"))
            connection.add(b"keep-alive")
            headers = set_comma_header(headers, b"connection", sorted(connection))
        if not changed:
            return response
        return Response(
            headers=headers,
            status_code=response.status_code,
            http_version=response.http_version,
            reason=response.reason,
        )


ConnectionType = Union[Connection]
