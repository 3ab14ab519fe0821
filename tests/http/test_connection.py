"""Connection: whole conversations, pipelining, EOF, switches, sending, error hints."""

from __future__ import annotations

from typing import Any

import pytest

from protomata.http import (
    CLIENT,
    DEFAULT_MAX_HEADER_COUNT,
    DEFAULT_MAX_INCOMPLETE_EVENT_SIZE,
    DONE,
    ERROR,
    IDLE,
    MUST_CLOSE,
    NEED_DATA,
    PAUSED,
    SEND_BODY,
    SERVER,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    Response,
)

HOST = ("Host", "example.com")


def next_events(conn: Connection) -> list[Any]:
    """Events up to NEED_DATA (excluded) or PAUSED / ConnectionClosed (included)."""
    events = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if event is PAUSED or type(event) is ConnectionClosed:
            return events


def feed(conn: Connection, data: bytes) -> list[Any]:
    conn.receive_data(data)
    return next_events(conn)


def server_with(data: bytes) -> tuple[Connection, list[Any]]:
    conn = Connection(SERVER)
    return conn, feed(conn, data)


def send_all(conn: Connection, *events: Any) -> bytes:
    out = b""
    for event in events:
        data = conn.send(event)
        assert data is not None
        out += data
    return out


def fields_of(data: bytes) -> list[tuple[bytes, bytes]]:
    """Header fields of a serialized head, as (lower name, value)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    fields = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields.append((name.lower(), value.strip()))
    return fields


def tokens(data: bytes, name: bytes) -> set[bytes]:
    return {
        t.strip().lower()
        for n, v in fields_of(data)
        if n == name
        for t in v.split(b",")
        if t.strip()
    }


# -- construction ------------------------------------------------------------------


def test_role_must_be_client_or_server() -> None:
    for bad in ("CLIENT", None, 0, PAUSED):
        with pytest.raises(ValueError):
            Connection(bad)  # type: ignore[arg-type]


def test_defaults() -> None:
    assert DEFAULT_MAX_INCOMPLETE_EVENT_SIZE == 16 * 1024
    assert DEFAULT_MAX_HEADER_COUNT == 128
    conn = Connection(SERVER, 1000, max_header_count=5, max_line_length=100)
    assert conn.our_role is SERVER
    assert conn.their_role is CLIENT


# -- whole conversations -------------------------------------------------------------


def test_client_conversation() -> None:
    client = Connection(CLIENT)
    wire = send_all(
        client,
        Request(method="POST", target="/submit", headers=[HOST, ("Content-Length", "5")]),
        Data(b"hello"),
        EndOfMessage(),
    )
    assert wire == b"POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello"
    assert client.our_state is DONE
    assert next_events(client) == []
    events = feed(client, b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX: y\r\n\r\nok")
    assert events == [
        Response(status_code=201, reason=b"Created", headers=[("content-length", "2"), ("x", "y")]),
        Data(b"ok"),
        EndOfMessage(),
    ]
    assert client.their_http_version == b"1.1"
    assert client.states == {CLIENT: DONE, SERVER: DONE}


def test_server_conversation() -> None:
    server, events = server_with(
        b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
    )
    assert events == [
        Request(
            method="GET",
            target="/index.html",
            headers=[("host", "example.com"), ("accept", "*/*")],
        ),
        EndOfMessage(),
    ]
    assert server.their_http_version == b"1.1"
    wire = send_all(
        server,
        Response(status_code=200, reason="OK", headers=[("Content-Type", "text/plain")]),
        Data(b"hi"),
        EndOfMessage(),
    )
    assert wire == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nhi\r\n0\r\n\r\n"
    )
    assert server.states == {CLIENT: DONE, SERVER: DONE}


def test_client_and_server_talk_over_many_cycles() -> None:
    client, server = Connection(CLIENT), Connection(SERVER)
    for i in range(3):
        body = b"x" * i
        wire = send_all(
            client,
            Request(method="PUT", target=f"/{i}", headers=[HOST, ("Transfer-Encoding", "chunked")]),
            Data(body),
            EndOfMessage(headers=[("X-Sum", str(i))]),
        )
        events = feed(server, wire)
        assert events[0].target == f"/{i}".encode()
        assert b"".join(e.data for e in events if type(e) is Data) == body
        assert events[-1] == EndOfMessage(headers=[("x-sum", str(i))])
        wire = send_all(
            server,
            Response(status_code=200, headers=[("Content-Length", str(len(body)))]),
            Data(body),
            EndOfMessage(),
        )
        events = feed(client, wire)
        assert events[-1] == EndOfMessage()
        client.start_next_cycle()
        server.start_next_cycle()
        assert client.states == server.states == {CLIENT: IDLE, SERVER: IDLE}


# -- pipelining ---------------------------------------------------------------------------

TWO_REQUESTS = (
    b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
)


def test_pipelined_requests_pause_until_next_cycle() -> None:
    server, events = server_with(TWO_REQUESTS)
    assert [type(e) for e in events] == [Request, EndOfMessage, type(PAUSED)]
    assert events[0].target == b"/1"
    # Stays paused, however often we ask and however much more arrives.
    assert server.next_event() is PAUSED
    server.receive_data(b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert server.next_event() is PAUSED
    with pytest.raises(LocalProtocolError):
        server.start_next_cycle()  # we have not answered yet
    send_all(server, Response(status_code=200, headers=[("Content-Length", "0")]), EndOfMessage())
    server.start_next_cycle()
    events = next_events(server)
    assert events[0].target == b"/2"
    assert events[1:] == [Data(b"abc"), EndOfMessage(), PAUSED]
    send_all(server, Response(status_code=204, headers=[]), EndOfMessage())
    server.start_next_cycle()
    assert next_events(server)[0].target == b"/3"


def test_paused_on_partial_pipelined_request() -> None:
    server, events = server_with(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGE")
    assert events[-1] is PAUSED
    send_all(server, Response(status_code=204, headers=[]), EndOfMessage())
    server.start_next_cycle()
    assert server.next_event() is NEED_DATA
    assert feed(server, b"T /2 HTTP/1.1\r\nHost: h\r\n\r\n")[0].target == b"/2"


def test_no_pause_without_buffered_bytes() -> None:
    server, events = server_with(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert events[-1] == EndOfMessage()
    assert server.next_event() is NEED_DATA


def test_client_pauses_on_early_bytes_after_response() -> None:
    client = Connection(CLIENT)
    send_all(client, Request(method="GET", target="/", headers=[HOST]), EndOfMessage())
    events = feed(client, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert events[-1] is PAUSED


# -- 100-continue ---------------------------------------------------------------------------


def expect_request(version: str = "1.1") -> Request:
    headers = [("Expect", "100-continue"), ("Content-Length", "3")]
    if version == "1.1":
        headers.insert(0, HOST)
    return Request(method="PUT", target="/", headers=headers, http_version=version)


def test_expect_100_continue_flags_cleared_by_informational_response() -> None:
    client, server = Connection(CLIENT), Connection(SERVER)
    assert not client.client_is_waiting_for_100_continue
    feed(server, client.send(expect_request()) or b"")
    assert client.client_is_waiting_for_100_continue
    assert not client.they_are_waiting_for_100_continue
    assert server.they_are_waiting_for_100_continue
    assert server.client_is_waiting_for_100_continue
    feed(client, server.send(InformationalResponse(status_code=100, headers=[])) or b"")
    assert not server.they_are_waiting_for_100_continue
    assert not client.client_is_waiting_for_100_continue


def test_expect_100_continue_cleared_by_final_response() -> None:
    client, server = Connection(CLIENT), Connection(SERVER)
    feed(server, client.send(expect_request()) or b"")
    feed(client, server.send(Response(status_code=417, headers=[("Content-Length", "0")])) or b"")
    assert not server.they_are_waiting_for_100_continue
    assert not client.client_is_waiting_for_100_continue


@pytest.mark.parametrize("event", [Data(b"abc"), Data(b"")], ids=["data", "empty-data"])
def test_expect_100_continue_cleared_when_client_sends_body(event: Data) -> None:
    client, server = Connection(CLIENT), Connection(SERVER)
    feed(server, client.send(expect_request()) or b"")
    client.send(event)
    assert not client.client_is_waiting_for_100_continue
    server.receive_data(b"abc")
    assert server.next_event() == Data(b"abc")
    assert not server.they_are_waiting_for_100_continue


def test_expect_100_continue_cleared_by_end_of_message() -> None:
    client = Connection(CLIENT)
    client.send(Request(method="GET", target="/", headers=[HOST, ("Expect", "100-continue")]))
    assert client.client_is_waiting_for_100_continue
    client.send(EndOfMessage())
    assert not client.client_is_waiting_for_100_continue


def test_expect_is_ignored_in_http10() -> None:
    server, _ = server_with(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert not server.they_are_waiting_for_100_continue


@pytest.mark.parametrize("value", [b"100-Continue", b"foo, 100-continue"])
def test_expect_tokens_are_case_insensitive_list(value: bytes) -> None:
    server, _ = server_with(
        b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: " + value + b"\r\n\r\n"
    )
    assert server.they_are_waiting_for_100_continue


def test_other_expectations_are_not_100_continue() -> None:
    server, _ = server_with(
        b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n"
    )
    assert not server.they_are_waiting_for_100_continue


def test_expect_on_bodiless_request_ends_with_the_request() -> None:
    # The server reads the (empty) body's end at once: nothing left to wait for.
    server, events = server_with(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n")
    assert events[-1] == EndOfMessage()
    assert not server.they_are_waiting_for_100_continue
    server = Connection(SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n")
    assert isinstance(server.next_event(), Request)
    assert server.they_are_waiting_for_100_continue


# -- protocol switches and trailing data ------------------------------------------------------


def test_connect_tunnel_trailing_data() -> None:
    server, events = server_with(
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01tls"
    )
    assert [type(e) for e in events] == [Request, EndOfMessage, type(PAUSED)]
    assert server.trailing_data == (b"\x16\x03\x01tls", False)
    out = server.send(Response(status_code=200, headers=[]))
    assert out == b"HTTP/1.1 200 \r\n\r\n"  # no framing fields added to a tunnel reply
    assert server.our_state.name == "SWITCHED_PROTOCOL"
    assert server.next_event() is PAUSED
    server.receive_data(b"more")
    server.receive_data(b"")
    assert server.trailing_data == (b"\x16\x03\x01tlsmore", True)
    assert server.next_event() is PAUSED


def test_client_sees_upgrade_and_keeps_bytes_after_101() -> None:
    client = Connection(CLIENT)
    send_all(
        client,
        Request(
            method="GET",
            target="/chat",
            headers=[HOST, ("Upgrade", "websocket"), ("Connection", "upgrade")],
        ),
        EndOfMessage(),
    )
    events = feed(
        client,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        b"\x81\x05hello",
    )
    assert isinstance(events[0], InformationalResponse)
    assert events[0].status_code == 101
    assert events[1] is PAUSED
    assert client.trailing_data == (b"\x81\x05hello", False)
    assert client.states[SERVER].name == "SWITCHED_PROTOCOL"


def test_client_waits_in_might_switch_until_answer() -> None:
    client = Connection(CLIENT)
    send_all(
        client, Request(method="GET", target="/", headers=[HOST, ("Upgrade", "x")]), EndOfMessage()
    )
    assert client.our_state.name == "MIGHT_SWITCH_PROTOCOL"
    events = feed(client, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz")
    assert [type(e) for e in events] == [Response, Data, EndOfMessage]
    assert client.states == {CLIENT: DONE, SERVER: DONE}


def test_trailing_data_reports_eof() -> None:
    conn = Connection(SERVER)
    assert conn.trailing_data == (b"", False)
    conn.receive_data(b"partial")
    conn.receive_data(b"")
    assert conn.trailing_data == (b"partial", True)


# -- EOF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_receive_data_accepts_bytes_like_and_copies(kind: Any) -> None:
    raw = bytearray(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    conn = Connection(SERVER)
    conn.receive_data(kind(raw) if kind is not bytearray else raw)
    raw[:3] = b"PUT"  # the caller reuses its buffer
    req = conn.next_event()
    assert isinstance(req, Request)
    assert req.method == b"GET"


def test_data_after_eof_is_a_runtime_error() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"")
    conn.receive_data(b"")  # repeated EOF is fine
    with pytest.raises(RuntimeError):
        conn.receive_data(b"x")


@pytest.mark.parametrize(
    "partial",
    [
        b"G",
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r",
    ],
)
def test_eof_inside_a_head_is_an_error(partial: bytes) -> None:
    conn = Connection(SERVER)
    conn.receive_data(partial)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="unexpectedly closed"):
        conn.next_event()
    assert conn.their_state is ERROR


def test_eof_between_messages_is_connection_closed() -> None:
    server, _ = server_with(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    send_all(server, Response(status_code=200, headers=[("Content-Length", "0")]), EndOfMessage())
    server.start_next_cycle()
    assert feed(server, b"") == [ConnectionClosed()]
    assert server.their_state.name == "CLOSED"
    assert server.our_state is MUST_CLOSE


def test_eof_after_request_before_response() -> None:
    server, _ = server_with(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert feed(server, b"") == [ConnectionClosed()]
    assert server.their_state.name == "CLOSED"
    send_all(server, Response(status_code=200, headers=[("Content-Length", "0")]), EndOfMessage())
    assert server.our_state is MUST_CLOSE


def test_eof_ends_close_delimited_response() -> None:
    client = Connection(CLIENT)
    send_all(client, Request(method="GET", target="/", headers=[HOST]), EndOfMessage())
    events = feed(client, b"HTTP/1.0 200 OK\r\n\r\nbody")
    assert events[-1] == Data(b"body")
    assert feed(client, b"") == [EndOfMessage(), ConnectionClosed()]
    assert client.next_event() == ConnectionClosed()


def test_eof_inside_body_errors() -> None:
    server, _ = server_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
    with pytest.raises(RemoteProtocolError):
        feed(server, b"")
    assert server.their_state is ERROR
    with pytest.raises(RemoteProtocolError, match="ERROR"):
        server.next_event()


# -- response header clean-up on send ------------------------------------------------------------


def respond(
    request: bytes | None, *headers: tuple[str, str], status: int = 200
) -> tuple[Connection, bytes]:
    server = Connection(SERVER)
    if request is not None:
        feed(server, request)
    out = server.send(Response(status_code=status, headers=list(headers)))
    assert out is not None
    return server, out


GET11 = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"
GET10_KEEP_ALIVE = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"


def test_unknown_length_goes_chunked_to_http11_client() -> None:
    server, out = respond(GET11, ("Content-Type", "a/b"))
    assert fields_of(out) == [(b"content-type", b"a/b"), (b"transfer-encoding", b"chunked")]
    assert server.send(Data(b"abc")) == b"3\r\nabc\r\n"
    assert server.send(EndOfMessage()) == b"0\r\n\r\n"
    assert server.our_state is DONE


def test_known_length_is_left_alone_for_http11_client() -> None:
    _, out = respond(GET11, ("Content-Length", "3"))
    assert out == b"HTTP/1.1 200 \r\nContent-Length: 3\r\n\r\n"


def test_unknown_length_is_close_delimited_for_http10_client() -> None:
    server, out = respond(GET10, ("Transfer-Encoding", "chunked"))
    assert b"transfer-encoding" not in out.lower()
    assert tokens(out, b"connection") == {b"close"}
    assert server.send(Data(b"raw")) == b"raw"
    assert server.send(EndOfMessage()) == b""
    assert server.our_state is MUST_CLOSE


def test_http10_keep_alive_client_gets_keep_alive_answer() -> None:
    server, out = respond(GET10_KEEP_ALIVE, ("Content-Length", "0"))
    assert tokens(out, b"connection") == {b"keep-alive"}
    server.send(EndOfMessage())
    assert server.states == {CLIENT: DONE, SERVER: DONE}
    server.start_next_cycle()


def test_http10_keep_alive_field_not_duplicated() -> None:
    _, out = respond(GET10_KEEP_ALIVE, ("Content-Length", "0"), ("Connection", "Keep-Alive"))
    assert [v for n, v in fields_of(out) if n == b"connection"] == [b"Keep-Alive"]


def test_http10_keep_alive_client_with_unknown_length_must_close() -> None:
    server, out = respond(GET10_KEEP_ALIVE)
    assert tokens(out, b"connection") == {b"close"}
    assert b"transfer-encoding" not in out.lower()
    server.send(EndOfMessage())
    assert server.our_state is MUST_CLOSE


def test_connection_close_added_when_client_asked_to_close() -> None:
    _, out = respond(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        ("Content-Length", "0"),
        ("Connection", "keep-alive"),
    )
    assert tokens(out, b"connection") == {b"close"}


def test_other_connection_options_are_kept_when_adding_close() -> None:
    _, out = respond(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        ("Content-Length", "0"),
        ("Connection", "x-custom"),
    )
    assert tokens(out, b"connection") == {b"close", b"x-custom"}


def test_empty_connection_list_elements_are_dropped() -> None:
    _, out = respond(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        ("Content-Length", "0"),
        ("Connection", "x-a,,x-b"),
    )
    assert [v for n, v in fields_of(out) if n == b"connection"] == [b"close", b"x-a", b"x-b"]


def test_close_not_duplicated() -> None:
    _, out = respond(GET10, ("Content-Length", "0"), ("Connection", "close"))
    assert [v for n, v in fields_of(out) if n == b"connection"] == [b"close"]


def test_head_response_headers() -> None:
    _, out = respond(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    # Same fields a GET would get, no body.
    assert tokens(out, b"transfer-encoding") == {b"chunked"}
    server, out = respond(b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert tokens(out, b"connection") == {b"keep-alive"}
    assert server.send(EndOfMessage()) == b""
    assert server.states == {CLIENT: DONE, SERVER: DONE}


def test_response_before_any_request_assumes_the_worst() -> None:
    server, out = respond(None, status=400)
    assert b"transfer-encoding" not in out.lower()
    assert tokens(out, b"connection") == {b"close"}
    assert server.send(Data(b"bad request")) == b"bad request"


def test_204_response_is_left_alone() -> None:
    _, out = respond(GET11, status=204)
    assert out == b"HTTP/1.1 204 \r\n\r\n"


def test_cleanup_keeps_header_case_and_order() -> None:
    _, out = respond(GET11, ("X-First", "1"), ("content-TYPE", "t/t"), ("Content-Length", "10"))
    assert out == b"HTTP/1.1 200 \r\nX-First: 1\r\ncontent-TYPE: t/t\r\nContent-Length: 10\r\n\r\n"


# -- error hints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "hint", "limits"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400, {}),
        (b"GET / HTTP/1.1\r\nHost: h\r\nBad Field: x\r\n\r\n", 400, {}),
        (b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414, {"max_line_length": 50}),
        (b"GET / HTTP/1.1\r\nHost: " + b"h" * 100 + b"\r\n\r\n", 431, {"max_line_length": 50}),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: y\r\n" * 5 + b"\r\n",
            431,
            {"max_header_count": 5},
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"y" * 300 + b"\r\n\r\n",
            431,
            {"max_incomplete_event_size": 200},
        ),
        (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, {}),
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, {}),
        (b"GET / HTTP/0.9\r\n\r\n", 505, {}),
    ],
    ids=[
        "no-host",
        "bad-field",
        "414",
        "431-line",
        "431-count",
        "431-size",
        "501",
        "505",
        "505-old",
    ],
)
def test_error_status_hints(data: bytes, hint: int, limits: dict[str, int]) -> None:
    server = Connection(SERVER, **limits)
    server.receive_data(data)
    with pytest.raises(RemoteProtocolError) as excinfo:
        server.next_event()
    assert excinfo.value.error_status_hint == hint
    assert server.their_state is ERROR
    # The server can still tell the client why.
    out = server.send(Response(status_code=hint, headers=[("Content-Length", "0")]))
    assert out is not None and out.startswith(b"HTTP/1.1 %d " % hint)


def test_incomplete_head_buffer_limit_is_431() -> None:
    conn = Connection(SERVER, 64)
    conn.receive_data(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20)
    with pytest.raises(RemoteProtocolError) as excinfo:
        conn.next_event()
    assert excinfo.value.error_status_hint == 431


def test_unfinished_chunk_line_is_bounded_by_buffer_limit() -> None:
    # Even when the line-length limit is set above the buffer limit, a peer
    # cannot make us buffer more than max_incomplete_event_size.
    conn = Connection(SERVER, 100, max_line_length=10_000)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert isinstance(conn.next_event(), Request)
    conn.receive_data(b"5;" + b"e" * 50)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"e" * 100)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert conn.their_state is ERROR


# -- send-side errors ------------------------------------------------------------------------------


def test_sending_response_as_client_is_refused() -> None:
    client = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(Response(status_code=200, headers=[]))
    assert client.our_state is ERROR
    with pytest.raises(LocalProtocolError, match="ERROR"):
        client.send(Request(method="GET", target="/", headers=[HOST]))


def test_send_failed_then_send_is_refused() -> None:
    server, _ = server_with(GET11)
    server.send_failed()
    assert server.our_state is ERROR
    with pytest.raises(LocalProtocolError):
        server.send(Response(status_code=500, headers=[]))


def test_sending_unknown_objects_is_refused() -> None:
    client = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(b"GET / HTTP/1.1\r\n\r\n")  # type: ignore[arg-type]
    assert client.our_state is ERROR


@pytest.mark.parametrize(
    ("method", "target"),
    [("GET", "relative/path"), ("GET", "*"), ("CONNECT", "/path"), ("CONNECT", "example.com")],
)
def test_client_refuses_invalid_request_target(method: str, target: str) -> None:
    client = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(Request(method=method, target=target, headers=[HOST]))


# -- their_http_version ---------------------------------------------------------------------


def test_their_http_version_follows_peer() -> None:
    server, _ = server_with(GET10_KEEP_ALIVE)
    assert server.their_http_version == b"1.0"
    client = Connection(CLIENT)
    assert client.their_http_version is None
    send_all(client, Request(method="GET", target="/", headers=[HOST]), EndOfMessage())
    assert client.their_http_version is None  # our own request does not count
    feed(client, b"HTTP/1.1 100 Continue\r\n\r\n")
    assert client.their_http_version == b"1.1"


def test_their_http_version_survives_start_next_cycle() -> None:
    client = Connection(CLIENT)
    send_all(client, Request(method="GET", target="/", headers=[HOST]), EndOfMessage())
    feed(client, b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    assert client.their_http_version == b"1.0"
    client.start_next_cycle()
    assert client.their_http_version == b"1.0"


# -- differential: the same events as h11 for inputs both accept -------------------------------

h11 = pytest.importorskip("h11")

SERVER_CORPUS = [
    GET11,
    b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nX-A:  v  \r\n\r\nbody",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n",
    b"GET / HTTP/1.0\r\nX: y\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET http://h/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n12345",
    b"GET / HTTP/1.1\nHost: h\n\n",
]

CLIENT_CORPUS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"1\r\nx\r\n0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nServer: s\r\n\r\nuntil close",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
]


def as_tuple(event: Any) -> Any:
    if event is NEED_DATA or event is h11.NEED_DATA:
        return "NEED_DATA"
    if event is PAUSED or event is h11.PAUSED:
        return "PAUSED"
    name = type(event).__name__
    if name == "Data":
        return (name, bytes(event.data), event.chunk_start, event.chunk_end)
    fields = {}
    for attr in ("method", "target", "http_version", "status_code", "reason"):
        if hasattr(event, attr):
            fields[attr] = getattr(event, attr)
    if hasattr(event, "headers"):
        fields["headers"] = [(bytes(n), bytes(v)) for n, v in event.headers]
    return (name, fields)


def drain(conn: Any, data: bytes, need_data: Any, paused: Any) -> list[Any]:
    conn.receive_data(data)
    conn.receive_data(b"")
    out = []
    for _ in range(20):
        event = conn.next_event()
        out.append(as_tuple(event))
        if event is need_data or event is paused or type(event).__name__ == "ConnectionClosed":
            break
    return out


@pytest.mark.parametrize("data", SERVER_CORPUS)
def test_server_events_match_h11(data: bytes) -> None:
    ours = drain(Connection(SERVER), data, NEED_DATA, PAUSED)
    theirs = drain(h11.Connection(h11.SERVER), data, h11.NEED_DATA, h11.PAUSED)
    assert ours == theirs


@pytest.mark.parametrize("data", CLIENT_CORPUS)
def test_client_events_match_h11(data: bytes) -> None:
    ours_conn = Connection(CLIENT)
    send_all(ours_conn, Request(method="GET", target="/", headers=[HOST]), EndOfMessage())
    theirs_conn = h11.Connection(h11.CLIENT)
    theirs_conn.send(h11.Request(method="GET", target="/", headers=[HOST]))
    theirs_conn.send(h11.EndOfMessage())
    ours = drain(ours_conn, data, NEED_DATA, PAUSED)
    theirs = drain(theirs_conn, data, h11.NEED_DATA, h11.PAUSED)
    assert ours == theirs


@pytest.mark.parametrize(
    "events",
    [
        [Response(status_code=200, headers=[("X", "y")]), Data(b"abc"), EndOfMessage()],
        [
            Response(status_code=200, headers=[("Content-Length", "3")]),
            Data(b"abc"),
            EndOfMessage(),
        ],
        [
            InformationalResponse(status_code=100, headers=[]),
            Response(status_code=204, headers=[]),
            EndOfMessage(),
        ],
        [
            Response(status_code=200, headers=[("Connection", "close"), ("Content-Length", "0")]),
            EndOfMessage(),
        ],
    ],
)
@pytest.mark.parametrize("request_bytes", [GET11, GET10, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"])
def test_server_output_matches_h11(events: list[Any], request_bytes: bytes) -> None:
    ours = Connection(SERVER)
    ours.receive_data(request_bytes)
    next_events(ours)
    theirs = h11.Connection(h11.SERVER)
    theirs.receive_data(request_bytes)
    while theirs.next_event() is not h11.NEED_DATA:
        pass
    for event in events:
        if request_bytes.startswith(b"HEAD") and type(event) is Data:
            continue
        h11_event = convert_to_h11(event)
        assert same_message(ours.send(event), theirs.send(h11_event))
        assert ours.our_state.name == theirs.our_state.__name__


def same_message(a: bytes | None, b: bytes | None) -> bool:
    """Equal bytes, except that header fields may come in another order."""
    assert a is not None and b is not None
    head_a, sep_a, body_a = a.partition(b"\r\n\r\n")
    head_b, sep_b, body_b = b.partition(b"\r\n\r\n")
    if not sep_a or not sep_b or not a.startswith(b"HTTP/"):
        return a == b
    lines_a, lines_b = head_a.split(b"\r\n"), head_b.split(b"\r\n")
    return (lines_a[0], sorted(lines_a[1:]), body_a) == (lines_b[0], sorted(lines_b[1:]), body_b)


def convert_to_h11(event: Any) -> Any:
    cls = getattr(h11, type(event).__name__)
    if type(event) is Data:
        return cls(data=event.data)
    if type(event) is EndOfMessage:
        return cls(headers=event.headers.raw_items())
    return cls(
        status_code=event.status_code, headers=event.headers.raw_items(), reason=event.reason
    )


def test_body_framing_state_after_response_matches() -> None:
    server, _ = server_with(GET11)
    server.send(Response(status_code=200, headers=[("Content-Length", "1")]))
    assert server.our_state is SEND_BODY


# -- the one-step end of a body (used for whole server responses) ------------------

_SEND_REST_CASES = {
    "content-length": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [(b"Content-Length", b"5")], b"hello"),
    "head": (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", [(b"Content-Length", b"5")], b""),
    "empty": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [(b"Content-Length", b"0")], b""),
    "chunked": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [], b"abc"),
    "http/1.0": (b"GET / HTTP/1.0\r\n\r\n", [], b"abc"),
    "too short": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [(b"Content-Length", b"5")], b"hi"),
    "too long": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [(b"Content-Length", b"1")], b"hi"),
    "connection close": (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        [(b"Content-Length", b"2")],
        b"hi",
    ),
}


def _server_with_response(request: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[Any, bytes]:
    conn = Connection(SERVER)
    conn.receive_data(request)
    assert type(conn.next_event()) is Request
    assert type(conn.next_event()) is EndOfMessage
    return conn, conn.send(Response(status_code=200, headers=headers))


@pytest.mark.parametrize("case", list(_SEND_REST_CASES))
def test_send_rest_of_body_matches_data_then_end_of_message(case: str) -> None:
    request, headers, body = _SEND_REST_CASES[case]
    general, head = _server_with_response(request, headers)
    fused, head_again = _server_with_response(request, headers)
    assert head == head_again
    expected: Any
    try:
        pieces = [general.send(Data(data=body))] if body else []
        pieces.append(general.send(EndOfMessage()))
        expected = b"".join(pieces)
    except LocalProtocolError as exc:
        expected = exc
    if isinstance(expected, Exception):
        with pytest.raises(LocalProtocolError):
            fused._send_rest_of_body(body)
    else:
        assert b"".join(fused._send_rest_of_body(body)) == expected
    assert fused.states == general.states
    assert fused.our_state is general.our_state
