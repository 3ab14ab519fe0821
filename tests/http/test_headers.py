"""Header fields: the Headers sequence, what we let users send, what we accept."""

from __future__ import annotations

from typing import Any

import pytest

from protomata.http import (
    CLIENT,
    NEED_DATA,
    SERVER,
    Connection,
    EndOfMessage,
    Headers,
    InformationalResponse,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    Response,
)

# -- helpers -----------------------------------------------------------------------


def request_with(*fields: tuple[Any, Any], version: str = "1.1") -> Request:
    return Request(method="GET", target="/", headers=[("Host", "h"), *fields], http_version=version)


def receive_request(head: bytes) -> Request:
    """Parse one request head (lines joined by CRLF) on a fresh server."""
    conn = Connection(SERVER)
    conn.receive_data(head)
    event = conn.next_event()
    assert isinstance(event, Request), event
    return event


def receive_request_error(head: bytes) -> RemoteProtocolError:
    conn = Connection(SERVER)
    conn.receive_data(head)
    with pytest.raises(RemoteProtocolError) as excinfo:
        conn.next_event()
    return excinfo.value


def receive_response(head: bytes, method: str = "GET") -> Any:
    conn = Connection(CLIENT)
    conn.send(Request(method=method, target="/", headers=[("Host", "h")]))
    conn.send(EndOfMessage())
    conn.receive_data(head)
    return conn.next_event()


def receive_response_error(head: bytes) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as excinfo:
        receive_response(head)
    return excinfo.value


def head(*lines: bytes, start: bytes = b"GET / HTTP/1.1") -> bytes:
    return b"\r\n".join([start, *lines]) + b"\r\n\r\n"


# -- the Headers sequence ---------------------------------------------------------


HEADERS = request_with(("Content-Type", "text/plain"), ("X-Dup", "1"), ("x-dup", "2")).headers


def test_iteration_gives_lowercase_names() -> None:
    assert list(HEADERS) == [
        (b"host", b"h"),
        (b"content-type", b"text/plain"),
        (b"x-dup", b"1"),
        (b"x-dup", b"2"),
    ]


def test_raw_items_keep_original_case() -> None:
    assert HEADERS.raw_items() == [
        (b"Host", b"h"),
        (b"Content-Type", b"text/plain"),
        (b"X-Dup", b"1"),
        (b"x-dup", b"2"),
    ]


def test_sequence_protocol() -> None:
    assert len(HEADERS) == 4
    assert HEADERS
    assert not Headers([])
    assert HEADERS[0] == (b"host", b"h")
    assert HEADERS[-1] == (b"x-dup", b"2")
    assert HEADERS[1:3] == [(b"content-type", b"text/plain"), (b"x-dup", b"1")]
    assert (b"x-dup", b"2") in HEADERS
    assert (b"X-Dup", b"1") not in HEADERS
    assert HEADERS.index((b"x-dup", b"1")) == 2
    assert next(reversed(HEADERS)) == (b"x-dup", b"2")
    with pytest.raises(IndexError):
        HEADERS[4]


def test_get_and_get_all_ignore_case() -> None:
    assert HEADERS.get(b"X-DUP") == b"1"
    assert HEADERS.get("content-type") == b"text/plain"
    assert HEADERS.get("missing") is None
    assert HEADERS.get("missing", b"fallback") == b"fallback"
    assert HEADERS.get_all("X-Dup") == [b"1", b"2"]
    assert HEADERS.get_all(b"missing") == []


def test_equality_with_headers_lists_and_tuples() -> None:
    same = request_with(("content-type", "text/plain"), ("X-DUP", "1"), ("X-Dup", "2")).headers
    assert same == HEADERS  # name case does not matter
    assert hash(HEADERS) == hash(same)
    assert list(HEADERS) == HEADERS
    assert tuple(HEADERS) == HEADERS
    assert list(HEADERS)[:-1] != HEADERS
    assert HEADERS.raw_items() != HEADERS  # raw names are not lowercase
    assert HEADERS.__eq__("not headers") is NotImplemented
    assert HEADERS != "not headers"
    assert HEADERS != {b"host": b"h"}


def test_repr() -> None:
    assert repr(Headers([])) == "<Headers([])>"
    assert repr(request_with().headers) == "<Headers([(b'host', b'h')])>"


def test_headers_instance_passes_through_unchanged() -> None:
    req = Request(method="GET", target="/x", headers=HEADERS)
    assert req.headers is HEADERS


def test_accepts_any_iterable_of_pairs() -> None:
    def pairs():  # type: ignore[no-untyped-def]
        yield "Host", "h"
        yield b"X", bytearray(b"y")

    req = Request(method="GET", target="/", headers=pairs())
    assert req.headers.raw_items() == [(b"Host", b"h"), (b"X", b"y")]


# -- what users may send --------------------------------------------------------------

#: normalize_and_validate joins all names (and all values) with LF and then
#: allows LF in the joined string, so an LF *inside* one name or value passes.

BAD_NAMES = [
    b"",
    b"Bad Name",
    b"Bad\tName",
    b"Colon:",
    pytest.param(b"New\nLine"),
    b"Carriage\rReturn",
    b"Nul\x00",
    b"Paren(",
    b"Slash/",
    b'Quote"',
    b"caf\xc3\xa9",
    b" Leading",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_header_names_are_refused(name: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        request_with((name, b"value"))
    with pytest.raises(LocalProtocolError):
        Response(status_code=200, headers=[(name, b"value")])
    with pytest.raises(LocalProtocolError):
        EndOfMessage(headers=[(b"Ok", b"1"), (name, b"value")])


BAD_VALUES = [
    b"a\rb",
    pytest.param(b"a\nb"),
    b"a\r\nInjected: yes",
    pytest.param(b"a\n\nGET /smuggled HTTP/1.1"),
    pytest.param(b"\n"),
    b"a\x00b",
    b"a\x7fb",
    b"a\x01b",
    b"a\x1fb",
    b" leading space",
    b"trailing space ",
    b"\tleading tab",
    b"trailing tab\t",
    b" ",
]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_bad_header_values_are_refused(value: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        request_with((b"X-Field", value))
    with pytest.raises(LocalProtocolError):
        Response(status_code=200, headers=[(b"X-Field", value)])
    with pytest.raises(LocalProtocolError):
        InformationalResponse(status_code=103, headers=[(b"Link", value)])
    with pytest.raises(LocalProtocolError):
        EndOfMessage(headers=[(b"X-Field", value)])


@pytest.mark.parametrize("value", BAD_VALUES)
def test_bad_header_value_never_reaches_the_wire(value: bytes) -> None:
    conn = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        conn.send(request_with((b"X-Field", value)))


@pytest.mark.parametrize(
    "value",
    [b"", b"x", b"inner  spaces\tand tabs", b"caf\xe9 \xff", bytes(range(0x21, 0x7F))],
)
def test_good_header_values_are_kept_verbatim(value: bytes) -> None:
    assert request_with((b"X-Field", value)).headers.get("x-field") == value


def test_every_token_character_is_a_valid_name() -> None:
    name = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert request_with((name, b"v")).headers.raw_items()[1] == (name, b"v")


def test_non_ascii_str_header_is_refused_with_clear_error() -> None:
    with pytest.raises(LocalProtocolError, match="non-ASCII"):
        request_with(("X-Name", "café"))
    with pytest.raises(LocalProtocolError, match="non-ASCII"):
        request_with(("Naïve", "x"))


def test_str_and_bytes_headers_mix() -> None:
    req = request_with(("X-A", b"1"), (b"X-B", "2"))
    assert req.headers.raw_items()[1:] == [(b"X-A", b"1"), (b"X-B", b"2")]


# framing fields, canonicalized as h11 does


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([("Content-Length", "5")], [(b"Content-Length", b"5")]),
        ([("Content-Length", "5, 5")], [(b"Content-Length", b"5")]),
        ([("Content-Length", "5,5 , 5")], [(b"Content-Length", b"5")]),
        ([("Content-Length", "5"), ("content-length", "5")], [(b"Content-Length", b"5")]),
        ([("content-length", "0")], [(b"content-length", b"0")]),
        ([("Content-Length", "9" * 19)], [(b"Content-Length", b"9" * 19)]),
    ],
)
def test_content_length_is_canonicalized(fields: list[Any], expected: list[Any]) -> None:
    assert request_with(*fields).headers.raw_items()[1:] == expected


@pytest.mark.parametrize(
    "fields",
    [
        [("Content-Length", "5, 6")],
        [("Content-Length", "5"), ("Content-Length", "6")],
        [("Content-Length", "")],
        [("Content-Length", "-1")],
        [("Content-Length", "+1")],
        [("Content-Length", "0x10")],
        [("Content-Length", "1e3")],
        [("Content-Length", "1 2")],
        [("Content-Length", "1" * 20)],
        [("Content-Length", b"\xd9\xa1")],  # Arabic-Indic digit one
        [("Content-Length", "5,")],
    ],
)
def test_bad_content_length_is_refused(fields: list[Any]) -> None:
    with pytest.raises(LocalProtocolError):
        request_with(*fields)
    with pytest.raises(LocalProtocolError):
        Response(status_code=200, headers=fields)


@pytest.mark.parametrize("value", ["chunked", "Chunked", "CHUNKED"])
def test_transfer_encoding_chunked_is_canonicalized(value: str) -> None:
    req = request_with(("Transfer-Encoding", value))
    assert req.headers.raw_items()[1:] == [(b"Transfer-Encoding", b"chunked")]


@pytest.mark.parametrize(
    "fields",
    [
        [("Transfer-Encoding", "gzip")],
        [("Transfer-Encoding", "identity")],
        [("Transfer-Encoding", "gzip, chunked")],
        [("Transfer-Encoding", "chunked, gzip")],
        [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
        [("Transfer-Encoding", "chunked, chunked")],
    ],
)
def test_unsupported_transfer_encoding_is_refused(fields: list[Any]) -> None:
    with pytest.raises(LocalProtocolError):
        request_with(*fields)
    with pytest.raises(LocalProtocolError):
        Response(status_code=200, headers=fields)


def send_or_refuse(conn: Connection, build: Any) -> bytes | None:
    """Build and send an event; None if either step refused it."""
    try:
        return conn.send(build())
    except LocalProtocolError:
        return None


def test_request_never_goes_out_with_both_transfer_encoding_and_content_length() -> None:
    # RFC 9112 section 6.2: a sender MUST NOT send Content-Length together
    # with Transfer-Encoding.  Refusing or dropping Content-Length are both fine.
    out = send_or_refuse(
        Connection(CLIENT),
        lambda: request_with(("Transfer-Encoding", "chunked"), ("Content-Length", "5")),
    )
    assert out is None or b"content-length" not in out.lower()


def test_response_never_goes_out_with_both_transfer_encoding_and_content_length() -> None:
    conn = Connection(SERVER)
    conn.receive_data(head(b"Host: h"))
    assert isinstance(conn.next_event(), Request)
    out = send_or_refuse(
        conn,
        lambda: Response(
            status_code=200, headers=[("Transfer-Encoding", "chunked"), ("Content-Length", "5")]
        ),
    )
    assert out is None or b"content-length" not in out.lower()


@pytest.mark.parametrize("host", ["a b", "a/b", "user@a", "a\\b", "a?b", 'a"b', "a{b"])
def test_bad_host_is_refused_on_send(host: str) -> None:
    assert send_or_refuse(Connection(CLIENT), lambda: request_with2(host)) is None


def request_with2(host: str) -> Request:
    return Request(method="GET", target="/", headers=[("Host", host)])


@pytest.mark.parametrize(
    "host",
    ["", "example.com", "example.com:8080", "[::1]:443", "10.0.0.1", "xn--d1a.example", "a_b"],
)
def test_good_host_values_are_sent(host: str) -> None:
    out = Connection(CLIENT).send(request_with2(host))
    assert out == b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"


# -- what we accept from the peer --------------------------------------------------------


def test_received_values_lose_surrounding_whitespace_only() -> None:
    req = receive_request(head(b"Host: h", b"X-A:   spaced  value \t ", b"X-B:\tv", b"X-C:"))
    assert req.headers.raw_items() == [
        (b"Host", b"h"),
        (b"X-A", b"spaced  value"),
        (b"X-B", b"v"),
        (b"X-C", b""),
    ]


def test_received_names_keep_case_and_order_and_duplicates() -> None:
    req = receive_request(head(b"hOsT: h", b"Set-Thing: 1", b"set-thing: 2", b"SET-THING: 3"))
    assert req.headers.raw_items() == [
        (b"hOsT", b"h"),
        (b"Set-Thing", b"1"),
        (b"set-thing", b"2"),
        (b"SET-THING", b"3"),
    ]
    assert req.headers.get_all("set-thing") == [b"1", b"2", b"3"]


def test_received_value_may_contain_colons_and_obs_text() -> None:
    req = receive_request(head(b"Host: h", b"X-Url: http://a:1/b", b"X-Latin: caf\xe9"))
    assert req.headers.get("x-url") == b"http://a:1/b"
    assert req.headers.get("x-latin") == b"caf\xe9"


def test_received_bare_lf_line_endings_are_tolerated() -> None:
    req = receive_request(b"GET / HTTP/1.1\nHost: h\nX-A: 1\n\n")
    assert req.headers == [(b"host", b"h"), (b"x-a", b"1")]
    req = receive_request(b"GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\n")
    assert req.headers == [(b"host", b"h"), (b"x-a", b"1")]


@pytest.mark.parametrize(
    "bad_head",
    [
        head(b"Host: h", b"X-A : 1"),  # whitespace before the colon (RFC 9112 5.1: MUST reject)
        head(b"Host: h", b"X-A\t: 1"),
        head(b"Host: h", b"no colon here"),
        head(b"Host: h", b": empty name"),
        head(b"Host: h", b"B@d: name"),
        head(b"Host: h", b"X-A: a\x00b"),  # NUL
        head(b"Host: h", b"X-A: a\rb"),  # bare CR inside a value
        head(b"Host: h", b"X-A: a\x7fb"),
        head(b"Host: h", b"X-A: a\x0bb"),
        head(b"Host: h\r", b"X-A: 1"),  # CR CR LF
        head(b"Host: h", b" folded: continuation"),  # obs-fold is refused in requests
        head(b"Host: h", b"X-A: 1", b"\tcontinued"),
        b"GET / HTTP/1.1\r\n folded-first: x\r\nHost: h\r\n\r\n",
    ],
)
def test_malformed_received_fields_are_400(bad_head: bytes) -> None:
    assert receive_request_error(bad_head).error_status_hint == 400


def test_obs_fold_in_responses_is_unfolded_with_one_space() -> None:
    resp = receive_response(
        b"HTTP/1.1 200 OK\r\nX-Long: first\r\n   second\r\n\tthird \r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(resp, Response)
    assert resp.headers.get("x-long") == b"first second third"
    assert resp.headers.get("content-length") == b"0"


def test_obs_fold_before_first_response_field_is_an_error() -> None:
    err = receive_response_error(b"HTTP/1.1 200 OK\r\n continuation: x\r\n\r\n")
    assert err.error_status_hint == 400


@pytest.mark.parametrize(
    ("value", "canonical"),
    [(b"5", b"5"), (b"5, 5", b"5"), (b" 5 ", b"5"), (b"5,5", b"5"), (b"007", b"007")],
)
def test_received_content_length_is_canonicalized(value: bytes, canonical: bytes) -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + value + b"\r\n\r\n")
    req = conn.next_event()
    assert isinstance(req, Request)
    assert req.headers.get_all("content-length") == [canonical]
    conn.receive_data(b"1234567890")
    assert conn.next_event().data == b"1234567890"[: int(canonical)]  # type: ignore[union-attr]
    assert isinstance(conn.next_event(), EndOfMessage)


def test_received_duplicate_identical_content_length_fields_merge() -> None:
    req = receive_request(head(b"Host: h", b"Content-Length: 3", b"Content-Length: 3"))
    assert req.headers.get_all("content-length") == [b"3"]


@pytest.mark.parametrize(
    "fields",
    [
        [b"Content-Length: 3", b"Content-Length: 4"],
        [b"Content-Length: 3, 4"],
        [b"Content-Length: -3"],
        [b"Content-Length: +3"],
        [b"Content-Length: 0x3"],
        [b"Content-Length: 3 4"],
        [b"Content-Length:"],
        [b"Content-Length: " + b"9" * 20],
        [b"Content-Length: \xd9\xa1"],
        # framing smuggling defences (RFC 9112 6.1, 6.3, 11.2)
        [b"Transfer-Encoding: chunked", b"Content-Length: 3"],
        [b"Content-Length: 3", b"Transfer-Encoding: chunked"],
        [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"],
        [b"Transfer-Encoding: chunked, identity"],
        [b"Transfer-Encoding: identity"],
        [b"Transfer-Encoding: xchunked"],
        [b"Transfer-Encoding:"],
    ],
)
def test_received_bad_framing_fields_are_400(fields: list[bytes]) -> None:
    err = receive_request_error(head(b"Host: h", *fields, start=b"POST / HTTP/1.1"))
    assert err.error_status_hint == 400


@pytest.mark.parametrize("value", [b"gzip, chunked", b"deflate, chunked", b"gzip,chunked"])
def test_received_unsupported_coding_is_501(value: bytes) -> None:
    err = receive_request_error(head(b"Host: h", b"Transfer-Encoding: " + value))
    assert err.error_status_hint == 501


@pytest.mark.parametrize("value", [b"chunked", b"Chunked", b"CHUNKED", b" chunked "])
def test_received_chunked_is_canonicalized(value: bytes) -> None:
    req = receive_request(head(b"Host: h", b"Transfer-Encoding: " + value))
    assert req.headers.get_all("transfer-encoding") == [b"chunked"]


def test_transfer_encoding_in_http10_request_is_refused() -> None:
    err = receive_request_error(
        head(b"Host: h", b"Transfer-Encoding: chunked", start=b"POST / HTTP/1.0")
    )
    assert err.error_status_hint == 400


def test_transfer_encoding_in_http10_response_is_refused() -> None:
    receive_response_error(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")


def test_both_framing_fields_in_a_response_are_refused() -> None:
    receive_response_error(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    )


@pytest.mark.parametrize(
    "fields",
    [
        [],  # HTTP/1.1 requires Host
        [b"Host: a", b"Host: a"],
        [b"Host: a", b"host: b"],
        [b"Host: a b"],
        [b"Host: a/b"],
        [b"Host: user@a"],
        [b"Host: a\\b"],
        [b"Host: a?b"],
        [b"Host: a`b"],
    ],
)
def test_received_bad_host_is_400(fields: list[bytes]) -> None:
    assert receive_request_error(head(*fields)).error_status_hint == 400


def test_received_host_with_fragment_delimiter_is_400() -> None:
    # RFC 9110 7.2: MUST answer 400 to a Host field with an invalid value.
    assert receive_request_error(head(b"Host: a#b")).error_status_hint == 400


def test_host_with_fragment_delimiter_is_refused_on_send() -> None:
    assert send_or_refuse(Connection(CLIENT), lambda: request_with2("a#b")) is None


@pytest.mark.parametrize(
    "value", [b"", b"example.com", b"example.com:80", b"[::1]:8080", b"127.0.0.1", b"a-b_c.d~e"]
)
def test_received_good_host_is_kept(value: bytes) -> None:
    assert receive_request(head(b"Host: " + value)).headers.get("host") == value


def test_http10_request_needs_no_host_but_may_not_repeat_it() -> None:
    req = receive_request(b"GET / HTTP/1.0\r\n\r\n")
    assert req.headers == []
    assert receive_request_error(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n")


def test_received_request_event_equals_user_built_one() -> None:
    req = receive_request(head(b"Host: h", b"Accept: */*"))
    assert req == Request(method="GET", target="/", headers=[("host", "h"), ("accept", "*/*")])


def test_received_many_fields_within_the_count_limit() -> None:
    fields = [b"X-%d: %d" % (i, i) for i in range(127)]
    conn = Connection(SERVER)
    conn.receive_data(head(b"Host: h", *fields))
    req = conn.next_event()
    assert isinstance(req, Request)
    assert len(req.headers) == 128
    assert conn.next_event() != NEED_DATA  # EndOfMessage of the empty body
