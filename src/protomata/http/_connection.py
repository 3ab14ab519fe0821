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

from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any, overload

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
_CONNECTION_CLOSED = ConnectionClosed()
# A zero-length body reader has no state to change: connections share one.
_NO_BODY = ContentLengthReader(0)


@lru_cache(maxsize=64)
def _limits_and_reader(
    head: int, line: int, count: int, client: bool
) -> tuple[HeadLimits, _ReaderFn]:
    # Connections with equal settings share one (immutable) HeadLimits and
    # one head reader bound to it, so creating a connection allocates less.
    limits = HeadLimits(head, line, count, obs_fold_ok=client)
    return limits, partial(read_response_head if client else read_request_head, limits)


_DEFAULT_LIMITS = {
    client: _limits_and_reader(
        DEFAULT_MAX_INCOMPLETE_EVENT_SIZE,
        DEFAULT_MAX_INCOMPLETE_EVENT_SIZE,
        DEFAULT_MAX_HEADER_COUNT,
        client,
    )
    for client in (False, True)
}


def _expect_nothing(buf: ReceiveBuffer) -> None:
    if buf:
        raise RemoteProtocolError("Got data when expecting EOF")


_END_OF_MESSAGE = EndOfMessage()  # immutable: one serves every message without trailers


def _body_framing(request_method: bytes | None, event: Request | Response) -> tuple[str, int]:
    """("chunked" | "content-length" | "http/1.0", length) for a message."""
    if type(event) is Response:
        status = event.status_code
        if (
            status in (204, 304)
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


def _without_framing(headers: Headers) -> Headers:
    headers = set_comma_header(headers, b"content-length", [])
    return set_comma_header(headers, b"transfer-encoding", [])


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
        # obs-fold: user agents must accept it in responses; servers may
        # reject it in requests, and we do (RFC 9112 section 5.2).
        if (
            max_line_length is None
            and max_incomplete_event_size == DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
            and max_header_count == DEFAULT_MAX_HEADER_COUNT
        ):
            self._limits, self._head_reader = _DEFAULT_LIMITS[our_role is CLIENT]
        else:
            self._limits, self._head_reader = _limits_and_reader(
                max_incomplete_event_size,
                max_line_length if max_line_length is not None else max_incomplete_event_size,
                max_header_count,
                our_role is CLIENT,
            )
        self._cstate = ConnectionState()
        self._receive_buffer = ReceiveBuffer()
        self._writer = write_request if our_role is CLIENT else write_response
        self._reader = self._head_reader

    # Defaults that most connections never change live on the class.
    _receive_buffer_closed = False
    _request_method: bytes | None = None
    #: The HTTP version the peer used in its last request or response head.
    their_http_version: bytes | None = None
    #: Whether the client has sent ``Expect: 100-continue`` and not yet
    #: seen a response nor sent body data.
    client_is_waiting_for_100_continue = False
    _writer: _WriterFn | None
    _reader: _ReaderFn

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
        self._cstate.start_next_cycle()
        self._request_method = None
        # their_http_version stays: it describes the peer, not one cycle.
        self.client_is_waiting_for_100_continue = False
        # Both sides went from DONE to IDLE: _respond_to_state_changes gives
        # the head writer and the head reader.
        self._writer = write_request if self.our_role is CLIENT else write_response
        self._reader = self._head_reader

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
                return ContentLengthReader(length) if length else _NO_BODY
            return ChunkedReader(self._limits) if framing == "chunked" else Http10Reader()
        if state is IDLE or (state is SEND_RESPONSE and self.their_role is SERVER):
            return self._head_reader
        return _expect_nothing

    def _respond_to_state_changes(self, old_client: State, old_server: State, event: Any) -> None:
        """Swap the reader and writer for the sides whose state changed."""
        cstate = self._cstate
        if self.our_role is CLIENT:
            if cstate.client is not old_client:
                self._writer = self._writer_for(cstate.client, event)
            if cstate.server is not old_server:
                self._reader = self._reader_for(cstate.server, event)
        else:
            if cstate.server is not old_server:
                self._writer = self._writer_for(cstate.server, event)
            if cstate.client is not old_client:
                self._reader = self._reader_for(cstate.client, event)

    # -- the event pipeline ----------------------------------------------------

    def _process_event(self, role: Role, event: Any) -> None:
        """Apply one event, sent (role = our_role) or received, to the state."""
        cstate = self._cstate
        etype = type(event)
        if etype is Data:
            # The hot path: body data changes no state.
            state = cstate.client if role is CLIENT else cstate.server
            if state is not SEND_BODY:
                raise LocalProtocolError(
                    f"can't handle event type Data when role={role!r} and state={state!r}"
                )
            if role is CLIENT:
                self.client_is_waiting_for_100_continue = False
            return
        if etype is EndOfMessage:
            # The next most common: SEND_BODY -> DONE, exactly as the
            # transition table says, without the general path's lookups.
            # With keep-alive on, no switch proposed and the other side
            # neither closed nor broken, no state-triggered transition
            # follows (see _state._JOINT), and the side that finished gets
            # no writer (ours) or a reader that expects nothing (theirs).
            if role is CLIENT:
                finished = cstate.client is SEND_BODY
                if finished:
                    self.client_is_waiting_for_100_continue = False
                    other = cstate.server
                    cstate.client = DONE
            else:
                finished = cstate.server is SEND_BODY
                if finished:
                    other = cstate.client
                    cstate.server = DONE
            if finished:
                if (
                    cstate.keep_alive
                    and not cstate.pending_switch_proposals
                    and other is not CLOSED
                    and other is not ERROR
                    and other is not MIGHT_SWITCH_PROTOCOL
                ):
                    if role is self.our_role:
                        self._writer = None
                    else:
                        self._reader = _expect_nothing
                else:
                    cstate._fire_state_triggered_transitions()
                    if role is CLIENT:
                        self._respond_to_state_changes(SEND_BODY, other, event)
                    else:
                        self._respond_to_state_changes(other, SEND_BODY, event)
                return
        elif (
            etype is Response
            and role is SERVER
            and cstate.server is SEND_RESPONSE
            and not cstate.pending_switch_proposals
        ):
            # A final response that accepts no protocol switch.
            old_client = cstate.client
            cstate.server = SEND_BODY
            cstate._fire_state_triggered_transitions()
            self._response_started(event)
            if cstate.client is not old_client:
                self._respond_to_state_changes(old_client, SEND_RESPONSE, event)
            elif self.our_role is SERVER:
                self._writer = self._writer_for(SEND_BODY, event)
            else:
                self._reader = self._reader_for(SEND_BODY, event)
            return
        elif (
            etype is Request
            and role is CLIENT
            and cstate.client is IDLE
            and cstate.server is IDLE
            and cstate.keep_alive
            and not cstate.pending_switch_proposals
            and event.method != b"CONNECT"
            and not event.headers.info.upgrade
        ):
            # A request that proposes no protocol switch, on a fresh cycle:
            # the client starts its body and the server its response.
            cstate.client = SEND_BODY
            cstate.server = SEND_RESPONSE
            self._request_started(event)
            # (what _respond_to_state_changes(IDLE, IDLE, event) does here;
            # a request's body is chunked, or has a length, 0 if none given)
            info = event.headers.info
            if self.our_role is SERVER:
                self._writer = write_response
                if info.chunked:
                    self._reader = ChunkedReader(self._limits)
                elif info.content_length:
                    self._reader = ContentLengthReader(info.content_length)
                else:
                    self._reader = _NO_BODY
            else:
                self._writer = (
                    ChunkedWriter()
                    if info.chunked
                    else ContentLengthWriter(info.content_length or 0)
                )
                self._reader = self._head_reader
            return
        old_client = cstate.client
        old_server = cstate.server
        server_switch = None
        if etype is Request:
            if role is CLIENT:
                if event.method == b"CONNECT":
                    cstate.process_client_switch_proposal(Switch.CONNECT)
                if event.headers.info.upgrade:
                    cstate.process_client_switch_proposal(Switch.UPGRADE)
        elif role is SERVER and cstate.pending_switch_proposals:
            if etype is InformationalResponse and event.status_code == 101:
                server_switch = Switch.UPGRADE
            elif (
                etype is Response
                and Switch.CONNECT in cstate.pending_switch_proposals
                and 200 <= event.status_code < 300
            ):
                server_switch = Switch.CONNECT
        elif etype is InformationalResponse and event.status_code == 101 and role is SERVER:
            server_switch = Switch.UPGRADE  # refused below: nothing was proposed
        cstate.process_event(role, etype, server_switch)
        if etype is Request:
            self._request_started(event)
        elif etype is Response:
            self._response_started(event)
        elif etype is InformationalResponse:
            if role is self.their_role:
                self.their_http_version = event.http_version
            self.client_is_waiting_for_100_continue = False
        elif etype is EndOfMessage and role is CLIENT:
            self.client_is_waiting_for_100_continue = False
        if cstate.client is not old_client or cstate.server is not old_server:
            self._respond_to_state_changes(old_client, old_server, event)

    def _request_started(self, event: Request) -> None:
        """What a request says about the rest of the cycle and the connection."""
        self._request_method = event.method
        version = event.http_version
        if self.their_role is CLIENT:
            self.their_http_version = version
        info = event.headers.info
        if info.close or (version < b"1.1" and not info.keep_alive):
            self._cstate.process_keep_alive_disabled()
        if info.expect_continue and version >= b"1.1":
            self.client_is_waiting_for_100_continue = True

    def _response_started(self, event: Response) -> None:
        """What a final response says about the connection."""
        if self.their_role is SERVER:
            self.their_http_version = event.http_version
        info = event.headers.info
        # HTTP/1.0 persistence is opt-in (RFC 9112 appendix C.2.2).
        if info.close or (event.http_version < b"1.1" and not info.keep_alive):
            self._cstate.process_keep_alive_disabled()
        self.client_is_waiting_for_100_continue = False

    def _process_error(self, role: Role) -> None:
        old_client, old_server = self._cstate.client, self._cstate.server
        self._cstate.process_error(role)
        self._respond_to_state_changes(old_client, old_server, None)

    # -- receiving --------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed (EOF)."""
        if data:
            if self._receive_buffer_closed:
                raise RuntimeError("received close, then received more data?")
            self._receive_buffer._data += data  # (what ReceiveBuffer.__iadd__ does)
        else:
            self._receive_buffer_closed = True

    def next_event(self) -> HTTPEvent | SentinelType:
        """Parse and return the next event from the peer, or a sentinel.

        Returns ``NEED_DATA`` when more bytes are needed and ``PAUSED`` when
        the peer has started a new request (or switched protocols) before we
        finished the current cycle.  Raises :class:`RemoteProtocolError` for
        anything the peer got wrong; after that, ``their_state`` is ERROR.
        """
        cstate = self._cstate
        state = cstate.server if self.our_role is CLIENT else cstate.client
        if state is ERROR:
            raise RemoteProtocolError("Can't receive data when peer state is ERROR")
        buf = self._receive_buffer
        # (buf._data: the bytearray's own truth test, not a Python __bool__)
        if not buf._data and self._reader is self._head_reader and not self._receive_buffer_closed:
            return NEED_DATA  # waiting for a head with nothing buffered: nothing to parse
        try:
            if state is DONE:
                if buf._data:
                    return PAUSED
            elif state is MIGHT_SWITCH_PROTOCOL or state is SWITCHED_PROTOCOL:
                return PAUSED
            reader = self._reader
            # (a message without a body ends at once: no call to its reader)
            event = _END_OF_MESSAGE if reader is _NO_BODY else reader(buf)
            if event is None:
                if not buf and self._receive_buffer_closed:
                    read_eof = getattr(self._reader, "read_eof", None)
                    event = read_eof() if read_eof is not None else _CONNECTION_CLOSED
                else:
                    if len(buf) > self._max_incomplete_event_size:
                        # Bodies never wait here: only an unfinished head can.
                        raise RemoteProtocolError("Receive buffer too long", error_status_hint=431)
                    if self._receive_buffer_closed:
                        raise RemoteProtocolError("peer unexpectedly closed connection")
                    return NEED_DATA
            self._process_event(self.their_role, event)
            return event
        except BaseException as exc:
            self._process_error(self.their_role)
            if isinstance(exc, LocalProtocolError):
                exc._reraise_as_remote_protocol_error()
            raise

    # -- sending -------------------------------------------------------------------

    @overload
    def send(self, event: ConnectionClosed) -> None: ...
    @overload
    def send(
        self, event: Request | InformationalResponse | Response | Data | EndOfMessage
    ) -> bytes: ...
    def send(self, event: HTTPEvent) -> bytes | None:
        """Serialize *event* to bytes (``None`` for ConnectionClosed)."""
        writer = self._writer
        if type(writer) is ContentLengthWriter and (
            type(event) is Data or type(event) is EndOfMessage
        ):
            # The body of a Content-Length message: what
            # send_with_data_passthrough does, without its list.
            try:
                self._process_event(self.our_role, event)
                data = writer.body_piece(event)
            except BaseException:
                self._process_error(self.our_role)
                raise
            if data is None:
                return b""
            return data if type(data) is bytes else b"".join((data,))
        data_list = self.send_with_data_passthrough(event)
        if data_list is None:
            return None
        if len(data_list) == 1 and type(data_list[0]) is bytes:
            return data_list[0]  # no copy for a lone piece
        return b"".join(data_list)

    @overload
    def send_with_data_passthrough(self, event: ConnectionClosed) -> None: ...
    @overload
    def send_with_data_passthrough(
        self, event: Request | InformationalResponse | Response | Data | EndOfMessage
    ) -> list[bytes]: ...
    def send_with_data_passthrough(self, event: HTTPEvent) -> list[bytes] | None:
        """Like :meth:`send`, but return a list of byte strings to write.

        A ``Data`` event's payload object appears in the list as it was
        given, uncopied (for zero-copy writes of large bodies).
        """
        cstate = self._cstate
        if (cstate.client if self.our_role is CLIENT else cstate.server) is ERROR:
            raise LocalProtocolError("Can't send data when our state is ERROR")
        try:
            if type(event) is Response:
                event = self._clean_up_response_headers_for_sending(event)
            elif type(event) is InformationalResponse and (
                event.headers.info.content_length is not None or event.headers.info.chunked
            ):
                event = InformationalResponse(
                    status_code=event.status_code,
                    headers=_without_framing(event.headers),
                    http_version=event.http_version,
                    reason=event.reason,
                )
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

    def _send_rest_of_body(self, data: bytes) -> list[bytes]:
        """``send_with_data_passthrough(Data(data=data))`` (when *data* is not
        empty) then ``send(EndOfMessage())``: the pieces to write.

        When *data* is exactly what a Content-Length body still lacks (a
        whole response body, or none for HEAD, 204 and 304), this is done in
        one step with the same checks and state changes; anything else takes
        the two general calls.
        """
        writer = self._writer
        cstate = self._cstate
        if (
            type(writer) is ContentLengthWriter
            and writer._length == len(data)
            and (cstate.client if self.our_role is CLIENT else cstate.server) is SEND_BODY
        ):
            writer._length = 0
            if data and self.our_role is CLIENT:
                self.client_is_waiting_for_100_continue = False
            try:
                self._process_event(self.our_role, _END_OF_MESSAGE)
            except BaseException:
                self._process_error(self.our_role)
                raise
            return [data] if data else []
        pieces = self.send_with_data_passthrough(Data(data=data)) if data else []
        pieces += self.send_with_data_passthrough(_END_OF_MESSAGE)
        return pieces

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
        need_close = False
        changed = False
        status = response.status_code
        if (status == 204 or (method == b"CONNECT" and status < 300)) and (
            headers.info.content_length is not None or headers.info.chunked
        ):
            # RFC 9110 sections 8.6 and 9.3.6, RFC 9112 section 6.1: these
            # responses never carry framing fields.  Drop them, as we drop
            # Content-Length from a chunked response.
            headers = _without_framing(headers)
            changed = True
        framing, _ = _body_framing(b"GET" if method == b"HEAD" else method, response)
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
        # After the peer broke the protocol the connection closes: say so.
        keep_alive = self._cstate.keep_alive and not need_close and self.their_state is not ERROR
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
