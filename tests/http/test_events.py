"""HTTP events: construction, validation of what users build, value semantics."""

from __future__ import annotations

import copy
import pickle
from http import HTTPStatus
from typing import Any

import pytest

from protomata.http import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    HTTPEvent,
    InformationalResponse,
    LocalProtocolError,
    Request,
    Response,
)

HOST = [("Host", "example.com")]


# -- Request -------------------------------------------------------------------


def test_request_fields_and_defaults() -> None:
    req = Request(method="GET", target="/index.html", headers=HOST)
    assert req.method == b"GET"
    assert req.target == b"/index.html"
    assert req.http_version == b"1.1"
    assert isinstance(req.headers, Headers)
    assert list(req.headers) == [(b"host", b"example.com")]
    assert isinstance(req, Event)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_request_accepts_bytes_like(kind: Any) -> None:
    req = Request(
        method=kind(b"POST"),
        target=kind(b"/x"),
        headers=[(kind(b"Host"), kind(b"h"))],
        http_version=kind(b"1.0"),
    )
    assert (req.method, req.target, req.http_version) == (b"POST", b"/x", b"1.0")
    assert type(req.method) is bytes
    assert type(req.target) is bytes
    assert req.headers.raw_items() == [(b"Host", b"h")]
    assert all(type(x) is bytes for pair in req.headers.raw_items() for x in pair)


def test_request_str_and_bytes_build_equal_events() -> None:
    a = Request(method="GET", target="/", headers=[("Host", "h"), ("X-A", "1")])
    b = Request(method=b"GET", target=b"/", headers=[(b"Host", b"h"), (b"X-A", b"1")])
    assert a == b
    assert hash(a) == hash(b)


def test_request_http11_requires_exactly_one_host() -> None:
    with pytest.raises(LocalProtocolError, match="Host"):
        Request(method="GET", target="/", headers=[])
    with pytest.raises(LocalProtocolError, match="Host"):
        Request(method="GET", target="/", headers=[("Host", "a"), ("host", "a")])
    with pytest.raises(LocalProtocolError, match="Host"):
        Request(
            method="GET", target="/", headers=[("Host", "a"), ("Host", "b")], http_version="1.0"
        )
    # HTTP/1.0 did not require Host.
    assert Request(method="GET", target="/", headers=[], http_version="1.0").headers == []


@pytest.mark.parametrize("method", ["", "GE T", "GET\r\n", "GET\x00", "G(ET", "G/ET", "GÉT"])
def test_request_rejects_bad_method(method: str) -> None:
    with pytest.raises(LocalProtocolError):
        Request(method=method, target="/", headers=HOST)


@pytest.mark.parametrize("method", ["GET", "M-SEARCH", "PROPFIND", "x!#$%&'*+.^_`|~9"])
def test_request_accepts_token_methods(method: str) -> None:
    assert Request(method=method, target="/", headers=HOST).method == method.encode()


@pytest.mark.parametrize(
    "target", [b"", b"/a b", b"/a\tb", b"/\x7f", b"/\x00", b"/\r\n", b"/\xc3\xa9"]
)
def test_request_rejects_bad_target(target: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        Request(method="GET", target=target, headers=HOST)


def test_request_rejects_non_ascii_str() -> None:
    with pytest.raises(LocalProtocolError, match="non-ASCII"):
        Request(method="GET", target="/é", headers=HOST)
    with pytest.raises(LocalProtocolError, match="non-ASCII"):
        Request(method="GET", target="/", headers=[("Host", "é")])


@pytest.mark.parametrize("version", ["2", "1", "11", "1.1.1", "x.y", "1,1", "", "HTTP/1.1"])
def test_request_rejects_bad_version(version: str) -> None:
    with pytest.raises(LocalProtocolError):
        Request(method="GET", target="/", headers=HOST, http_version=version)


@pytest.mark.parametrize("version", ["1..", "..1"])
def test_request_rejects_version_with_two_dots(version: str) -> None:
    with pytest.raises(LocalProtocolError):
        Request(method="GET", target="/", headers=HOST, http_version=version)


def test_request_accepts_other_well_formed_versions() -> None:
    # Not sendable (the writer only sends 1.1), but a well-formed value.
    assert (
        Request(method="GET", target="/", headers=HOST, http_version="2.0").http_version == b"2.0"
    )


def test_int_where_bytes_expected_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Request(method=1, target="/", headers=HOST)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Request(method="GET", target="/", headers=[("Host", 1)])  # type: ignore[list-item]


# -- responses ---------------------------------------------------------------------


def test_response_fields_and_defaults() -> None:
    resp = Response(status_code=404, headers=[("Content-Length", "0")])
    assert resp.status_code == 404
    assert resp.http_version == b"1.1"
    assert resp.reason == b""
    assert resp.headers == [(b"content-length", b"0")]
    resp = Response(status_code=200, headers=[], reason="Okay Then", http_version="1.0")
    assert resp.reason == b"Okay Then"
    assert resp.http_version == b"1.0"


@pytest.mark.parametrize("code", [100, 101, 103, 199])
def test_informational_response_range(code: int) -> None:
    assert InformationalResponse(status_code=code, headers=[]).status_code == code
    with pytest.raises(LocalProtocolError):
        Response(status_code=code, headers=[])


@pytest.mark.parametrize("code", [200, 204, 304, 404, 599, 999])
def test_final_response_range(code: int) -> None:
    assert Response(status_code=code, headers=[]).status_code == code
    with pytest.raises(LocalProtocolError):
        InformationalResponse(status_code=code, headers=[])


@pytest.mark.parametrize("code", [-1, 0, 99, 1000, 10_000])
def test_status_code_out_of_any_range(code: int) -> None:
    with pytest.raises(LocalProtocolError, match="range"):
        Response(status_code=code, headers=[])
    with pytest.raises(LocalProtocolError, match="range"):
        InformationalResponse(status_code=code, headers=[])


def test_status_code_accepts_int_subclasses_as_plain_int() -> None:
    resp = Response(status_code=HTTPStatus.NOT_FOUND, headers=[])
    assert resp.status_code == 404
    assert type(resp.status_code) is int
    assert resp == Response(status_code=404, headers=[])
    info = InformationalResponse(status_code=HTTPStatus.CONTINUE, headers=[])
    assert type(info.status_code) is int


@pytest.mark.parametrize("code", [True, False, 200.0, "200", b"200", None])
def test_status_code_must_be_an_integer(code: Any) -> None:
    with pytest.raises(LocalProtocolError, match="integer"):
        Response(status_code=code, headers=[])


@pytest.mark.parametrize("reason", [b"OK\r\n", b"O\nK", b"\x00", b"a\x7fb", "Ünïcode"])
def test_reason_rejects_control_bytes_and_non_ascii_str(reason: Any) -> None:
    with pytest.raises(LocalProtocolError):
        Response(status_code=200, headers=[], reason=reason)


@pytest.mark.parametrize("reason", [b"", b"OK", b"Not\tFound", b"  spaced  ", b"caf\xe9"])
def test_reason_accepts_text_tab_and_obs_text(reason: bytes) -> None:
    assert Response(status_code=200, headers=[], reason=reason).reason == reason


def test_response_version_validated() -> None:
    with pytest.raises(LocalProtocolError):
        Response(status_code=200, headers=[], http_version="one")


def test_response_headers_validated() -> None:
    with pytest.raises(LocalProtocolError):
        Response(status_code=200, headers=[("Bad Name", "x")])
    with pytest.raises(LocalProtocolError):
        InformationalResponse(status_code=100, headers=[("X", "a\r\nInjected: yes")])


def test_response_and_informational_are_different_events() -> None:
    assert Response(status_code=200, headers=[]) != Request(method="GET", target="/", headers=HOST)
    assert InformationalResponse(status_code=101, headers=[]) != Response(
        status_code=200, headers=[]
    )
    assert not issubclass(Response, InformationalResponse)
    assert not issubclass(InformationalResponse, Response)


# -- bodies and the rest -------------------------------------------------------------


def test_data_fields() -> None:
    data = Data(b"abc")
    assert data.data == b"abc"
    assert data.chunk_start is False
    assert data.chunk_end is False
    assert Data(data=b"x", chunk_start=True, chunk_end=True).chunk_end is True
    assert repr(data) == "Data(data=b'abc', chunk_start=False, chunk_end=False)"


def test_data_equality_includes_chunk_markers() -> None:
    assert Data(b"x") == Data(b"x")
    assert Data(b"x") != Data(b"y")
    assert Data(b"x") != Data(b"x", chunk_start=True)
    assert Data(b"x") != Data(b"x", chunk_end=True)


def test_data_keeps_payload_object_as_given() -> None:
    payload = bytearray(b"zero copy")
    assert Data(payload).data is payload
    view = memoryview(b"abc")
    assert Data(view).data is view


def test_end_of_message_defaults_to_no_trailers() -> None:
    eom = EndOfMessage()
    assert eom.headers == []
    assert isinstance(eom.headers, Headers)
    assert not eom.headers
    assert eom == EndOfMessage(headers=[])
    assert eom == EndOfMessage(headers=None)
    assert repr(eom) == "EndOfMessage(headers=<Headers([])>)"


def test_end_of_message_trailers_validated_and_compared() -> None:
    eom = EndOfMessage(headers=[("X-Checksum", "abc")])
    assert eom.headers == [(b"x-checksum", b"abc")]
    assert eom != EndOfMessage()
    with pytest.raises(LocalProtocolError):
        EndOfMessage(headers=[("X", "a\r\nb")])


def test_end_of_message_trailer_with_bare_lf_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        EndOfMessage(headers=[("X", "a\nb")])


def test_connection_closed() -> None:
    assert ConnectionClosed() == ConnectionClosed()
    assert hash(ConnectionClosed()) == hash(ConnectionClosed())
    assert repr(ConnectionClosed()) == "ConnectionClosed()"
    assert ConnectionClosed() != EndOfMessage()


def test_request_repr() -> None:
    req = Request(method="GET", target="/", headers=[("Host", "a")])
    assert repr(req) == (
        "Request(method=b'GET', headers=<Headers([(b'host', b'a')])>, "
        "target=b'/', http_version=b'1.1')"
    )


ALL_EVENTS: list[Any] = [
    Request(method="POST", target="/p", headers=[("Host", "a"), ("Content-Length", "3")]),
    InformationalResponse(status_code=100, headers=[], reason="Continue"),
    Response(status_code=200, headers=[("Transfer-Encoding", "chunked")], reason="OK"),
    Data(b"abc", chunk_start=True),
    EndOfMessage(headers=[("Trailer-Field", "v")]),
    ConnectionClosed(),
]


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: type(e).__name__)
def test_events_are_immutable_hashable_and_copyable(event: Any) -> None:
    name = event._fields[0] if event._fields else "anything"
    with pytest.raises(AttributeError):
        setattr(event, name, None)
    assert hash(event) == hash(copy.copy(event))
    assert copy.deepcopy(event) is event
    clone = pickle.loads(pickle.dumps(event))
    assert clone == event
    assert type(clone) is type(event)
    assert isinstance(event, HTTPEvent.__args__)  # type: ignore[attr-defined]


def test_pickled_request_keeps_raw_header_case() -> None:
    req = Request(method="GET", target="/", headers=[("HoSt", "a"), ("X-Mixed-Case", "1")])
    clone = pickle.loads(pickle.dumps(req))
    assert clone.headers.raw_items() == [(b"HoSt", b"a"), (b"X-Mixed-Case", b"1")]
