"""Message framing: heads, the three body framings, limits, chunking invariance."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protomata.http import (
    CLIENT,
    NEED_DATA,
    PAUSED,
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

# -- helpers -------------------------------------------------------------------------


def pieces(data: bytes, byte_by_byte: bool) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]


def receive(conn: Connection, data: bytes, byte_by_byte: bool = False) -> list[Any]:
    """Feed *data* (EOF if ``b""``) and collect events up to NEED_DATA or PAUSED."""
    events: list[Any] = []
    for piece in pieces(data, byte_by_byte) if data else [b""]:
        conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
            if event is PAUSED or type(event) is ConnectionClosed:
                return events
    return events


def merged(events: list[Any]) -> list[Any]:
    """Events with adjacent Data joined and chunk markers dropped."""
    out: list[Any] = []
    for event in events:
        if type(event) is Data:
            if out and type(out[-1]) is Data:
                out[-1] = Data(out[-1].data + event.data)
            else:
                out.append(Data(bytes(event.data)))
        else:
            out.append(event)
    return out


def server_receives(data: bytes, byte_by_byte: bool = False, **limits: Any) -> list[Any]:
    return receive(Connection(SERVER, **limits), data, byte_by_byte)


def server_error(data: bytes, byte_by_byte: bool = False, **limits: Any) -> RemoteProtocolError:
    conn = Connection(SERVER, **limits)
    with pytest.raises(RemoteProtocolError) as excinfo:
        receive(conn, data, byte_by_byte)
    assert conn.their_state.name == "ERROR"
    return excinfo.value


def client_after_request(method: str = "GET", **limits: Any) -> Connection:
    conn = Connection(CLIENT, **limits)
    conn.send(Request(method=method, target="/" if method != "CONNECT" else "a:1", headers=HOST))
    conn.send(EndOfMessage())
    return conn


def client_receives(data: bytes, method: str = "GET", byte_by_byte: bool = False, **limits: Any):  # type: ignore[no-untyped-def]
    return receive(client_after_request(method, **limits), data, byte_by_byte)


def client_error(data: bytes, byte_by_byte: bool = False, **limits: Any) -> RemoteProtocolError:
    conn = client_after_request(**limits)
    with pytest.raises(RemoteProtocolError) as excinfo:
        receive(conn, data, byte_by_byte)
    return excinfo.value


HOST = [("Host", "h")]
GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
CHUNKED_POST = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
BOTH = pytest.mark.parametrize("byte_by_byte", [False, True], ids=["at-once", "byte-by-byte"])


def body_of(events: list[Any]) -> bytes:
    return b"".join(bytes(e.data) for e in events if type(e) is Data)


# -- Content-Length bodies -------------------------------------------------------------


@BOTH
def test_content_length_request_body(byte_by_byte: bool) -> None:
    data = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
    events = server_receives(data, byte_by_byte)
    assert isinstance(events[0], Request)
    assert body_of(events) == b"hello world"
    assert events[-1] == EndOfMessage()
    assert all(not e.chunk_start and not e.chunk_end for e in events if type(e) is Data)


def test_content_length_zero_and_absent_mean_no_body() -> None:
    for head in (GET, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"):
        events = server_receives(head)
        assert [type(e) for e in events] == [Request, EndOfMessage]


def test_content_length_body_stops_at_declared_length() -> None:
    conn = Connection(SERVER)
    events = receive(conn, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET")
    assert merged(events) == [events[0], Data(b"abc"), EndOfMessage(), PAUSED]
    assert conn.trailing_data == (b"GET", False)


def test_eof_inside_content_length_body_is_an_error() -> None:
    conn = Connection(SERVER)
    receive(conn, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="received 3 bytes, expected 10"):
        conn.next_event()
    assert conn.their_state.name == "ERROR"


def test_large_body_is_not_limited_by_head_limits() -> None:
    body = b"x" * 100_000
    data = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + body
    events = server_receives(data, max_incomplete_event_size=100)
    assert body_of(events) == body
    assert events[-1] == EndOfMessage()


# -- chunked bodies ---------------------------------------------------------------------


def test_chunked_body_marks_chunk_boundaries() -> None:
    events = server_receives(CHUNKED_POST + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert events[1:] == [
        Data(b"hello", chunk_start=True, chunk_end=True),
        Data(b" world", chunk_start=True, chunk_end=True),
        EndOfMessage(),
    ]


def test_chunk_split_across_reads_marks_first_and_last_piece() -> None:
    conn = Connection(SERVER)
    assert receive(conn, CHUNKED_POST + b"a\r\n0123")[1:] == [Data(b"0123", chunk_start=True)]
    assert receive(conn, b"456") == [Data(b"456")]
    assert receive(conn, b"789\r\n0\r\n\r\n") == [Data(b"789", chunk_end=True), EndOfMessage()]


@pytest.mark.parametrize(
    ("size_line", "size"),
    [
        (b"a", 10),
        (b"A", 10),
        (b"00a", 10),
        (b"a;name", 10),
        (b"a;name=value", 10),
        (b"a;n1=v1;n2;n3=v3", 10),
        (b'a;name="quoted value"', 10),
        (b'a;name="esc\\"aped\\\\"', 10),
        (b"a ; name = value", 10),  # BWS around ; and =
        (b"a\t;\tname", 10),
        (b"a ", 10),  # trailing whitespace, tolerated (documented)
        (b"a\t", 10),
        (b'a;n="\xe9"', 10),  # obs-text in a quoted string
    ],
)
def test_chunk_size_lines_accepted(size_line: bytes, size: int) -> None:
    body = b"0123456789"[:size]
    events = server_receives(CHUNKED_POST + size_line + b"\r\n" + body + b"\r\n0\r\n\r\n")
    assert merged(events[1:]) == [Data(body), EndOfMessage()]


@pytest.mark.parametrize(
    "size_line",
    [
        b"",
        b"x",
        b"-5",
        b"+5",
        b" 5",
        b"0x5",
        b"5;",
        b"5;=v",
        b"5;n=",
        b'5;n="unterminated',
        b'5;n="a"b',
        b"5;n=v w",
        b"5;n@=v",
        b"5;n=\x00",
        b"5 5",
        b"5\r",  # bare CR inside the size line
        b"1" * 17,  # more hex digits than any sane size
    ],
)
def test_bad_chunk_size_lines_are_400(size_line: bytes) -> None:
    data = CHUNKED_POST + size_line + b"\r\n" + b"hello\r\n0\r\n\r\n"
    assert server_error(data).error_status_hint == 400


def test_sixteen_hex_digits_is_a_valid_size() -> None:
    conn = Connection(SERVER)
    events = receive(conn, CHUNKED_POST + b"000000000000000F\r\n0123456789abcde\r\n0\r\n\r\n")
    assert merged(events[1:]) == [Data(b"0123456789abcde"), EndOfMessage()]


@BOTH
def test_bare_lf_after_chunk_size_is_refused(byte_by_byte: bool) -> None:
    server_error(CHUNKED_POST + b"5\nhello\r\n0\r\n\r\n", byte_by_byte)


@BOTH
@pytest.mark.parametrize("after", [b"X", b"\n", b"\r\r", b"\rX", b" \r\n"])
def test_chunk_data_must_be_followed_by_crlf(after: bytes, byte_by_byte: bool) -> None:
    server_error(CHUNKED_POST + b"5\r\nhello" + after + b"0\r\n\r\n", byte_by_byte)


@BOTH
def test_trailers(byte_by_byte: bool) -> None:
    events = server_receives(
        CHUNKED_POST + b"3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Other:  v \r\n\r\n", byte_by_byte
    )
    assert events[-1] == EndOfMessage(headers=[("X-Checksum", "123"), ("x-other", "v")])
    assert events[-1].headers.raw_items() == [(b"X-Checksum", b"123"), (b"X-Other", b"v")]


def test_last_chunk_may_carry_extensions() -> None:
    events = server_receives(CHUNKED_POST + b"0;final=yes\r\n\r\n")
    assert events[1:] == [EndOfMessage()]


@BOTH
@pytest.mark.parametrize(
    "trailer",
    [
        b"X: v\n\n",  # bare LF line ends
        b"X: v\r\n\n",
        b"X: v\n\r\n",
        b"\n",
        b"X: a\x00b\r\n\r\n",
        b"X : v\r\n\r\n",
        b"no colon\r\n\r\n",
        b"X: a\rb\r\n\r\n",
        b"\x01\r\n\r\n",
        b" X: folded\r\n\r\n",
        b"X: v\r\n folded\r\n\r\n",  # obs-fold is refused in requests, trailers too
        # framing and routing fields can't be trailers (RFC 9110 6.5.1)
        b"Content-Length: 5\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n",
        b"Host: other\r\n\r\n",
    ],
)
def test_bad_trailers_are_refused(trailer: bytes, byte_by_byte: bool) -> None:
    server_error(CHUNKED_POST + b"0\r\n" + trailer, byte_by_byte)


def test_eof_inside_chunked_body_is_an_error() -> None:
    for partial in (b"", b"5\r\nhel", b"5\r\nhello\r\n", b"0\r\n", b"0\r\nX: y\r\n"):
        conn = Connection(SERVER)
        receive(conn, CHUNKED_POST + partial)
        conn.receive_data(b"")
        with pytest.raises(RemoteProtocolError):
            conn.next_event()


def test_response_trailers_may_be_folded() -> None:
    events = client_receives(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n"
    )
    assert events[-1] == EndOfMessage(headers=[("X", "a b")])


# -- close-delimited and bodiless responses ---------------------------------------------


@BOTH
@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
def test_response_without_framing_reads_until_eof(version: bytes, byte_by_byte: bool) -> None:
    conn = client_after_request()
    events = receive(conn, b"HTTP/" + version + b" 200 OK\r\n\r\nsome body", byte_by_byte)
    assert body_of(events) == b"some body"
    assert conn.their_state.name == "SEND_BODY"
    assert receive(conn, b"") == [EndOfMessage(), ConnectionClosed()]
    assert conn.their_state.name == "CLOSED"


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", 200), ("GET", 204), ("GET", 304), ("HEAD", 404), ("HEAD", 204)],
)
def test_bodiless_responses_ignore_content_length(method: str, status: int) -> None:
    conn = client_after_request(method)
    events = receive(
        conn,
        b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\n" % status,
    )
    assert [type(e) for e in events] == [Response, EndOfMessage]


def test_head_response_with_chunked_has_no_body() -> None:
    events = client_receives(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD")
    assert [type(e) for e in events] == [Response, EndOfMessage]


def test_non_2xx_to_connect_has_a_body() -> None:
    events = client_receives(b"HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\nno", "CONNECT")
    assert merged(events[1:]) == [Data(b"no"), EndOfMessage()]


def test_informational_responses_have_no_body() -> None:
    events = client_receives(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    assert [type(e) for e in events] == [
        InformationalResponse,
        InformationalResponse,
        Response,
        Data,
        EndOfMessage,
    ]
    assert [e.status_code for e in events[:3]] == [100, 103, 200]
    assert events[1].headers == [(b"link", b"</s>")]


# -- start lines ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "method", "target"),
    [
        (b"GET / HTTP/1.1", b"GET", b"/"),
        (b"GET /a/b?c=d&e=%20 HTTP/1.1", b"GET", b"/a/b?c=d&e=%20"),
        (b"GET http://example.com/x HTTP/1.1", b"GET", b"http://example.com/x"),
        (b"OPTIONS * HTTP/1.1", b"OPTIONS", b"*"),
        (b"OPTIONS http://h HTTP/1.1", b"OPTIONS", b"http://h"),
        (b"CONNECT example.com:443 HTTP/1.1", b"CONNECT", b"example.com:443"),
        (b"CONNECT [2001:db8::1]:443 HTTP/1.1", b"CONNECT", b"[2001:db8::1]:443"),
        (b"M-SEARCH * HTTP/1.1", None, None),
        (b"PURGE /x HTTP/1.1", b"PURGE", b"/x"),
    ],
)
def test_request_lines(line: bytes, method: bytes | None, target: bytes | None) -> None:
    data = line + b"\r\nHost: h\r\n\r\n"
    if method is None:  # asterisk-form is only for OPTIONS
        assert server_error(data).error_status_hint == 400
        return
    req = server_receives(data)[0]
    assert (req.method, req.target, req.http_version) == (method, target, b"1.1")


@pytest.mark.parametrize(
    "line",
    [
        b"GET  / HTTP/1.1",
        b"GET / HTTP/1.1 ",
        b" GET / HTTP/1.1",
        b"GET\t/ HTTP/1.1",
        b"GET / http/1.1",
        b"GET / HTTP/1.10",
        b"GET / HTTP/1",
        b"GET /",
        b"GET / HTTP/1.1 extra",
        b"G@T / HTTP/1.1",
        b"GET /a\x7f HTTP/1.1",
        b"GET foo HTTP/1.1",  # not any of the four target forms
        b"GET * HTTP/1.1",
        b"GET :x HTTP/1.1",
        b"CONNECT /path HTTP/1.1",
        b"CONNECT example.com HTTP/1.1",  # no port
        b"CONNECT http://a:1/ HTTP/1.1",
        b"CONNECT a:1/x HTTP/1.1",
    ],
)
def test_bad_request_lines_are_400(line: bytes) -> None:
    assert server_error(line + b"\r\nHost: h\r\n\r\n").error_status_hint == 400


@pytest.mark.parametrize("version", [b"2.0", b"0.9", b"3.0", b"9.9"])
def test_other_http_versions_are_505(version: bytes) -> None:
    assert server_error(b"GET / HTTP/" + version + b"\r\nHost: h\r\n\r\n").error_status_hint == 505


def test_higher_minor_version_is_accepted_as_http1() -> None:
    conn = Connection(SERVER)
    req = receive(conn, b"GET / HTTP/1.9\r\nHost: h\r\n\r\n")[0]
    assert req.http_version == b"1.9"
    assert conn.their_http_version == b"1.9"


@BOTH
@pytest.mark.parametrize("garbage", [b"\x16\x03\x01\x02\x00", b"\x00GET", b"{json}", b"@GET"])
def test_non_http_bytes_fail_at_once(garbage: bytes, byte_by_byte: bool) -> None:
    conn = Connection(SERVER)
    conn.receive_data(garbage[:1])
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


@BOTH
def test_leading_empty_lines_before_request_are_ignored(byte_by_byte: bool) -> None:
    events = server_receives(b"\r\n\r\n\n" + GET, byte_by_byte)
    assert [type(e) for e in events] == [Request, EndOfMessage]


def test_leading_empty_lines_before_response_are_ignored() -> None:
    events = client_receives(b"\r\n\n" + b"HTTP/1.1 204 No Content\r\n\r\n")
    assert [type(e) for e in events] == [Response, EndOfMessage]


def test_leading_empty_lines_before_response_byte_by_byte() -> None:
    data = b"\r\n" + b"HTTP/1.1 204 No Content\r\n\r\n"
    events = client_receives(data, byte_by_byte=True)
    assert [type(e) for e in events] == [Response, EndOfMessage]


@BOTH
def test_bare_cr_before_start_line_is_refused(byte_by_byte: bool) -> None:
    server_error(b"\r\r" + GET, byte_by_byte)
    server_error(b"\rX" + GET, byte_by_byte)


@pytest.mark.parametrize(
    ("line", "status", "reason"),
    [
        (b"HTTP/1.1 200 OK", 200, b"OK"),
        (b"HTTP/1.1 200", 200, b""),  # missing SP before an empty reason (tolerated)
        (b"HTTP/1.1 200 ", 200, b""),
        (b"HTTP/1.1 404 Not  Found\t", 404, b"Not  Found\t"),
        (b"HTTP/1.1 599 Caf\xe9", 599, b"Caf\xe9"),
        (b"HTTP/1.0 200 OK", 200, b"OK"),
        (b"HTTP/1.1 999 Max", 999, b"Max"),
    ],
)
def test_status_lines(line: bytes, status: int, reason: bytes) -> None:
    resp = client_receives(line + b"\r\nContent-Length: 0\r\n\r\n")[0]
    assert isinstance(resp, Response)
    assert (resp.status_code, resp.reason) == (status, reason)


@pytest.mark.parametrize(
    "line",
    [
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1 099 Low",
        b"HTTP/1.1 000 Zero",
        b"HTTP/1.1 200 O\x00K",
        b"HTTP/1.1 200 O\x7fK",
        b"HTTP/11 200 OK",
        b"http/1.1 200 OK",
    ],
)
def test_bad_status_lines(line: bytes) -> None:
    client_error(line + b"\r\n\r\n")


def test_response_in_other_http_version_is_505() -> None:
    assert client_error(b"HTTP/2.0 200 OK\r\n\r\n").error_status_hint == 505


@BOTH
@pytest.mark.parametrize("garbage", [b"ICY 200 OK\r\n\r\n", b"HTTX/1.1 200 OK\r\n", b"<html>"])
def test_non_http_response_fails_before_a_blank_line(garbage: bytes, byte_by_byte: bool) -> None:
    # No blank line ever arrives: we must not wait for one.
    client_error(garbage.replace(b"\r\n\r\n", b"\r\n"), byte_by_byte)


# -- limits ------------------------------------------------------------------------------


@BOTH
def test_head_over_max_incomplete_event_size_is_431(byte_by_byte: bool) -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 300 + b"\r\n\r\n"
    err = server_error(data, byte_by_byte, max_incomplete_event_size=200)
    assert err.error_status_hint == 431


@BOTH
def test_head_without_end_over_limit_is_431(byte_by_byte: bool) -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X-A: b\r\n" * 100
    assert server_error(data, byte_by_byte, max_incomplete_event_size=200).error_status_hint == 431


@BOTH
def test_head_exactly_at_size_limit_is_accepted(byte_by_byte: bool) -> None:
    events = server_receives(GET, byte_by_byte, max_incomplete_event_size=len(GET))
    assert [type(e) for e in events] == [Request, EndOfMessage]
    server_error(GET, byte_by_byte, max_incomplete_event_size=len(GET) - 1)


@BOTH
def test_too_many_header_fields_is_431(byte_by_byte: bool) -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(10))
    ok = b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n"  # 11 fields
    assert isinstance(server_receives(ok, byte_by_byte, max_header_count=11)[0], Request)
    assert server_error(ok, byte_by_byte, max_header_count=10).error_status_hint == 431


@BOTH
def test_too_many_response_fields(byte_by_byte: bool) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 5 + b"Content-Length: 0\r\n\r\n"
    client_error(head, byte_by_byte, max_header_count=5)
    assert isinstance(
        client_receives(head, byte_by_byte=byte_by_byte, max_header_count=6)[0], Response
    )


@BOTH
def test_request_line_over_max_line_length_is_414(byte_by_byte: bool) -> None:
    data = b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    err = server_error(data, byte_by_byte, max_line_length=100)
    assert err.error_status_hint == 414


@BOTH
def test_request_line_without_end_over_max_line_length_is_414(byte_by_byte: bool) -> None:
    err = server_error(b"GET /" + b"a" * 200, byte_by_byte, max_line_length=100)
    assert err.error_status_hint == 414


@BOTH
def test_field_line_over_max_line_length_is_431(byte_by_byte: bool) -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + b"v" * 200 + b"\r\n\r\n"
    err = server_error(data, byte_by_byte, max_line_length=100)
    assert err.error_status_hint == 431


@BOTH
def test_lines_exactly_at_max_line_length_are_accepted(byte_by_byte: bool) -> None:
    field = b"X-Long: " + b"v" * 92  # 100 bytes
    data = b"GET / HTTP/1.1\r\nHost: h\r\n" + field + b"\r\n\r\n"
    events = server_receives(data, byte_by_byte, max_line_length=100)
    assert events[0].headers.get("x-long") == b"v" * 92


def test_request_line_exactly_at_max_line_length_byte_by_byte() -> None:
    line = b"GET /" + b"a" * 86 + b" HTTP/1.1"  # 100 bytes
    assert len(line) == 100
    data = line + b"\r\nHost: h\r\n\r\n"
    at_once = server_receives(data, max_line_length=100)
    assert at_once[0].target == b"/" + b"a" * 86
    byte_by_byte = server_receives(data, True, max_line_length=100)
    assert byte_by_byte == at_once


@BOTH
def test_status_line_over_max_line_length(byte_by_byte: bool) -> None:
    client_error(b"HTTP/1.1 200 " + b"R" * 200 + b"\r\n\r\n", byte_by_byte, max_line_length=100)


@BOTH
def test_chunk_size_line_over_max_line_length(byte_by_byte: bool) -> None:
    data = CHUNKED_POST + b"5;" + b"e" * 200 + b"\r\nhello\r\n0\r\n\r\n"
    server_error(data, byte_by_byte, max_line_length=100)
    ok = CHUNKED_POST + b"5;" + b"e" * 50 + b"\r\nhello\r\n0\r\n\r\n"
    assert body_of(server_receives(ok, byte_by_byte, max_line_length=100)) == b"hello"


@BOTH
def test_trailer_section_over_limit_is_431(byte_by_byte: bool) -> None:
    trailers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 20) for i in range(20))
    data = CHUNKED_POST + b"0\r\n" + trailers + b"\r\n"
    err = server_error(data, byte_by_byte, max_incomplete_event_size=300)
    assert err.error_status_hint == 431


def test_default_limits_accept_16k_head_and_refuse_more() -> None:
    filler = b"X-Fill: " + b"f" * 1000 + b"\r\n"
    base = b"GET / HTTP/1.1\r\nHost: h\r\n"
    ok = base + filler * 16
    ok = ok + b"X: " + b"p" * (16 * 1024 - len(ok) - 7) + b"\r\n\r\n"
    assert len(ok) == 16 * 1024
    assert isinstance(server_receives(ok)[0], Request)
    assert server_error(base + filler * 17 + b"\r\n").error_status_hint == 431


# -- sending bodies ------------------------------------------------------------------------


def client_sending(*headers: tuple[str, str]) -> Connection:
    conn = Connection(CLIENT)
    conn.send(Request(method="POST", target="/", headers=[*HOST, *headers]))
    return conn


def test_content_length_writer() -> None:
    conn = client_sending(("Content-Length", "5"))
    assert conn.send(Data(b"he")) == b"he"
    assert conn.send(Data(b"llo")) == b"llo"
    assert conn.send(EndOfMessage()) == b""
    assert conn.our_state.name == "DONE"


@pytest.mark.parametrize("chunks", [[b"123456"], [b"123", b"456"], [b"12345", b"6"]])
def test_content_length_writer_refuses_too_much(chunks: list[bytes]) -> None:
    conn = client_sending(("Content-Length", "5"))
    with pytest.raises(LocalProtocolError, match="Too much data"):
        for chunk in chunks:
            conn.send(Data(chunk))
    assert conn.our_state.name == "ERROR"


def test_content_length_writer_refuses_too_little() -> None:
    conn = client_sending(("Content-Length", "5"))
    conn.send(Data(b"1234"))
    with pytest.raises(LocalProtocolError, match="Too little data"):
        conn.send(EndOfMessage())
    assert conn.our_state.name == "ERROR"


def test_content_length_writer_refuses_trailers() -> None:
    conn = client_sending(("Content-Length", "1"))
    conn.send(Data(b"x"))
    with pytest.raises(LocalProtocolError, match="trailers"):
        conn.send(EndOfMessage(headers=[("X-Trailer", "v")]))
    assert conn.our_state.name == "ERROR"


def test_request_without_framing_headers_has_empty_body() -> None:
    conn = client_sending()
    with pytest.raises(LocalProtocolError):
        conn.send(Data(b"x"))
    conn = client_sending()
    assert conn.send(Data(b"")) == b""
    assert conn.send(EndOfMessage()) == b""


def test_chunked_writer() -> None:
    conn = client_sending(("Transfer-Encoding", "chunked"))
    assert conn.send(Data(b"hello")) == b"5\r\nhello\r\n"
    assert conn.send(Data(b"x" * 26)) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    # An empty chunk would end the body early; nothing is sent for it.
    assert conn.send(Data(b"")) == b""
    assert conn.send(EndOfMessage()) == b"0\r\n\r\n"


def test_chunked_writer_sends_trailers() -> None:
    conn = client_sending(("Transfer-Encoding", "chunked"))
    conn.send(Data(b"abc"))
    out = conn.send(EndOfMessage(headers=[("X-Checksum", "900150983cd2"), ("x-other", "1")]))
    assert out == b"0\r\nX-Checksum: 900150983cd2\r\nx-other: 1\r\n\r\n"


@pytest.mark.parametrize("field", ["Content-Length", "Transfer-Encoding", "Host"])
def test_chunked_writer_refuses_framing_trailers(field: str) -> None:
    conn = client_sending(("Transfer-Encoding", "chunked"))
    value = "chunked" if field == "Transfer-Encoding" else "5"
    with pytest.raises(LocalProtocolError):
        conn.send(EndOfMessage(headers=[(field, value)]))


def test_send_with_data_passthrough_does_not_copy_payload() -> None:
    payload = bytearray(b"x" * 1000)
    conn = client_sending(("Content-Length", "1000"))
    out = conn.send_with_data_passthrough(Data(payload))
    assert out is not None
    assert any(piece is payload for piece in out)
    assert b"".join(out) == payload

    conn = client_sending(("Transfer-Encoding", "chunked"))
    out = conn.send_with_data_passthrough(Data(payload))
    assert out is not None
    assert any(piece is payload for piece in out)
    assert b"".join(out) == b"3e8\r\n" + payload + b"\r\n"


def test_send_with_data_passthrough_for_heads_and_close() -> None:
    conn = Connection(CLIENT)
    out = conn.send_with_data_passthrough(Request(method="GET", target="/", headers=HOST))
    assert out is not None
    assert b"".join(out) == GET
    conn.send(EndOfMessage())
    assert conn.send_with_data_passthrough(ConnectionClosed()) is None


def test_request_head_bytes() -> None:
    conn = Connection(CLIENT)
    out = conn.send(
        Request(
            method="PUT",
            target="/path?q=1",
            headers=[("Content-Type", "a/b"), ("host", "example.com"), ("X-Empty", "")],
        )
    )
    # Host first (RFC 9110 7.2 advice), then the others in order, case kept.
    assert out == (
        b"PUT /path?q=1 HTTP/1.1\r\nhost: example.com\r\nContent-Type: a/b\r\nX-Empty: \r\n\r\n"
    )


def test_client_only_sends_http11() -> None:
    conn = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        conn.send(Request(method="GET", target="/", headers=[], http_version="1.0"))
    assert conn.our_state.name == "ERROR"


def test_server_only_sends_http11() -> None:
    conn = Connection(SERVER)
    receive(conn, GET)
    with pytest.raises(LocalProtocolError):
        conn.send(Response(status_code=200, headers=[("Content-Length", "0")], http_version="1.0"))


def server_ready(request: bytes = GET) -> Connection:
    conn = Connection(SERVER)
    receive(conn, request)
    return conn


def test_response_head_bytes() -> None:
    conn = server_ready()
    out = conn.send(
        Response(status_code=404, reason="Not Found", headers=[("Content-Length", "0")])
    )
    assert out == b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    conn = server_ready()
    out = conn.send(InformationalResponse(status_code=100, headers=[]))
    assert out == b"HTTP/1.1 100 \r\n\r\n"


def test_head_response_body_must_be_empty() -> None:
    conn = server_ready(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    out = conn.send(Response(status_code=200, headers=[("Content-Length", "100")]))
    assert out == b"HTTP/1.1 200 \r\nContent-Length: 100\r\n\r\n"
    with pytest.raises(LocalProtocolError):
        conn.send(Data(b"x"))


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_status_body_must_be_empty(status: int) -> None:
    conn = server_ready()
    conn.send(Response(status_code=status, headers=[]))
    with pytest.raises(LocalProtocolError):
        conn.send(Data(b"x"))


@pytest.mark.parametrize(
    ("request_bytes", "event"),
    [
        (GET, Response(status_code=204, headers=[("Content-Length", "5")])),
        (GET, Response(status_code=204, headers=[("Transfer-Encoding", "chunked")])),
        (GET, InformationalResponse(status_code=103, headers=[("Content-Length", "0")])),
        (
            b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n",
            Response(status_code=200, headers=[("Content-Length", "0")]),
        ),
    ],
    ids=["204-CL", "204-TE", "103-CL", "CONNECT-200-CL"],
)
def test_bodiless_responses_never_go_out_with_framing_fields(
    request_bytes: bytes, event: Any
) -> None:
    conn = server_ready(request_bytes)
    try:
        out = conn.send(event)
    except LocalProtocolError:
        return
    assert out is not None
    assert b"content-length" not in out.lower()
    assert b"transfer-encoding" not in out.lower()


def test_http10_writer_streams_raw_bytes_and_refuses_trailers() -> None:
    conn = server_ready(b"GET / HTTP/1.0\r\n\r\n")
    conn.send(Response(status_code=200, headers=[]))
    assert conn.send(Data(b"raw ")) == b"raw "
    assert conn.send(Data(b"bytes")) == b"bytes"
    assert conn.send(EndOfMessage()) == b""

    conn = server_ready(b"GET / HTTP/1.0\r\n\r\n")
    conn.send(Response(status_code=200, headers=[]))
    with pytest.raises(LocalProtocolError, match="trailers"):
        conn.send(EndOfMessage(headers=[("X", "y")]))


# -- chunking invariance and round trips -------------------------------------------------

SERVER_INPUTS = [
    GET,
    b"\r\n" + GET,
    b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n",
    CHUNKED_POST + b'5;ext="q"\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: x\r\n\r\n',
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.1\nHost: h\nX: y\n\n",
    b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
]

CLIENT_INPUTS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nclose delimited",
    b"HTTP/1.1 200 OK\r\nX: a\r\n  folded\r\nContent-Length: 0\r\n\r\n",
]


def split_feed(conn: Connection, data: bytes, cuts: list[int]) -> list[Any]:
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    events: list[Any] = []
    for start, end in pairwise(bounds):
        events += receive(conn, data[start:end])
        if events and events[-1] is PAUSED:
            break
    return merged(events)


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(0, len(SERVER_INPUTS) - 1),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_server_events_do_not_depend_on_how_bytes_arrive(index: int, cuts: list[int]) -> None:
    data = SERVER_INPUTS[index]
    expected = split_feed(Connection(SERVER), data, [])
    assert split_feed(Connection(SERVER), data, cuts) == expected


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(0, len(CLIENT_INPUTS) - 1),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_client_events_do_not_depend_on_how_bytes_arrive(index: int, cuts: list[int]) -> None:
    data = CLIENT_INPUTS[index]
    expected = split_feed(client_after_request(), data, [])
    assert split_feed(client_after_request(), data, cuts) == expected


@pytest.mark.parametrize("data", SERVER_INPUTS)
def test_server_inputs_byte_by_byte(data: bytes) -> None:
    assert merged(server_receives(data, True)) == merged(server_receives(data))


token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~",
    min_size=1,
    max_size=12,
)
field_value = st.binary(max_size=20).map(
    lambda b: bytes(c for c in b if c >= 0x21 and c != 0x7F)
) | st.just(b"a b\tc")
body_chunks = st.lists(st.binary(min_size=0, max_size=50), max_size=5)


@settings(max_examples=80, deadline=None)
@given(
    method=token.filter(lambda m: m.upper() not in ("CONNECT", "HEAD")),
    path=st.text(alphabet="abcxyz0123/?=&%", max_size=20),
    fields=st.lists(st.tuples(token, field_value), max_size=6),
    chunks=body_chunks,
    chunked=st.booleans(),
    trailers=st.lists(st.tuples(token, field_value), max_size=2),
)
def test_request_round_trip(
    method: str,
    path: str,
    fields: list[tuple[str, bytes]],
    chunks: list[bytes],
    chunked: bool,
    trailers: list[tuple[str, bytes]],
) -> None:
    reserved = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "expect"}
    fields = [f for f in fields if f[0].lower() not in reserved]
    trailers = [t for t in trailers if t[0].lower() not in reserved]
    body = b"".join(chunks)
    framing = (
        [("Transfer-Encoding", "chunked")] if chunked else [("Content-Length", str(len(body)))]
    )
    request = Request(method=method, target="/" + path, headers=[*HOST, *fields, *framing])
    eom = EndOfMessage(headers=trailers if chunked else [])

    client = Connection(CLIENT)
    wire = client.send(request) or b""
    for chunk in chunks:
        wire += client.send(Data(chunk)) or b""
    wire += client.send(eom) or b""
    assert client.our_state.name == "DONE"

    server = Connection(SERVER)
    events = merged(receive(server, wire))
    assert events[0] == request
    assert events[0].headers.raw_items() == request.headers.raw_items()
    expected_body = [Data(body)] if body else []
    assert events[1:] == [*expected_body, eom]
    assert server.their_state.name == "DONE"
