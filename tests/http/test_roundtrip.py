"""Round trip: what our sender produces, our receiver parses back to equal events.

Requests (client role sends, server role receives) and responses (server
sends, client receives) are generated as events with every kind of valid
header and body.  Each event goes through ``send`` and the bytes straight
into the peer's ``receive_data``; the events that come out must equal the
ones that went in:

* requests and trailers compare equal as events, and keep the case of
  their field names (``raw_items``), with Host moved first as the writer
  promises;
* every non-empty Data arrives as one Data with the same bytes, marked as
  a whole chunk when the body is chunked;
* responses keep status, reason, version and every field but the framing
  and Connection fields, which the sender manages;
* a received head sent again gives the same bytes (requests) or the same
  fields (responses: the clean-up may move the framing fields again, as
  h11's does).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protomata.http as ph
from protomata.http import (
    CLIENT,
    DONE,
    NEED_DATA,
    SERVER,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)


def _load_sibling(name: str) -> ModuleType:
    """Import a module next to this file by path (works in every pytest import mode)."""
    module_name = f"_protomata_http_tests_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            module_name, Path(__file__).with_name(f"{name}.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


streams = _load_sibling("test_chunking")

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORBIDDEN_TRAILERS = {b"content-length", b"transfer-encoding", b"host"}
FRAMING = {b"content-length", b"transfer-encoding", b"connection"}


def events_from(conn: Connection) -> list[Any]:
    out = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is ph.PAUSED:
            return out
        out.append(event)
        if type(event) is ConnectionClosed:
            return out


def host_first(items: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [i for i in items if i[0].lower() == b"host"] + [
        i for i in items if i[0].lower() != b"host"
    ]


fields = st.lists(st.tuples(streams.field_names, streams.field_values()), max_size=4)
trailer_fields = fields.map(lambda fs: [f for f in fs if f[0].lower() not in FORBIDDEN_TRAILERS])
payloads = st.binary(max_size=50).flatmap(
    lambda b: st.sampled_from([b, bytearray(b), memoryview(b)])
)


@st.composite
def requests(draw: Any, last: bool) -> tuple[Request, list[Any], EndOfMessage]:
    method = draw(streams.methods)
    target = draw(streams.targets(method))
    headers = draw(fields)
    host = (streams.mixed_case(draw, b"host"), b"h.example")
    headers.insert(draw(st.integers(0, len(headers))), host)
    if last and draw(st.booleans()):
        headers.append((b"Connection", b"close"))
    if draw(st.booleans()):
        headers.append((b"Expect", b"100-continue"))
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    pieces = draw(st.lists(payloads, max_size=4)) if framing != "none" else []
    trailers: list[Any] = []
    if framing == "length":
        headers.append((streams.mixed_case(draw, b"content-length"), b"%d" % sum(map(len, pieces))))
    elif framing == "chunked":
        headers.append((streams.mixed_case(draw, b"transfer-encoding"), b"chunked"))
        trailers = draw(trailer_fields)
    request = Request(method=method, target=target, headers=headers)
    return request, pieces, EndOfMessage(headers=trailers)


@SETTINGS
@given(
    st.integers(1, 3).flatmap(lambda n: st.tuples(*[requests(last=i == n - 1) for i in range(n)]))
)
def test_requests_round_trip(messages: tuple[Any, ...]) -> None:
    client, server = Connection(CLIENT), Connection(SERVER)
    for request, pieces, eom in messages:
        wire = client.send(request)
        assert wire is not None
        server.receive_data(wire)
        received = events_from(server)
        head = received[0]
        # The writer sends Host first; otherwise the request is unchanged.
        assert head == Request(
            method=request.method,
            target=request.target,
            headers=host_first(request.headers.raw_items()),
            http_version=request.http_version,
        )
        assert head.headers.raw_items() == host_first(request.headers.raw_items())
        assert Connection(CLIENT).send(head) == wire  # the same head again
        body_pending = len(received) == 1  # without framing, EndOfMessage came with the head
        assert server.they_are_waiting_for_100_continue == (
            request.headers.info.expect_continue and body_pending
        )

        chunked = request.headers.info.chunked
        for piece in pieces:
            parts = client.send_with_data_passthrough(Data(data=piece))
            assert parts is not None
            if len(piece):
                assert any(part is piece for part in parts)  # passed through, not copied
                server.receive_data(b"".join(parts))
            got = events_from(server)
            # Each non-empty piece arrives as one Data (a Content-Length body
            # ends, with its EndOfMessage, as soon as its last byte arrives).
            if len(piece):
                assert got[0] == Data(data=bytes(piece), chunk_start=chunked, chunk_end=chunked)
            received += got
        wire = client.send(eom)
        assert wire is not None
        if wire:
            server.receive_data(wire)
        received += events_from(server)
        datas = [
            Data(data=bytes(p), chunk_start=chunked, chunk_end=chunked) for p in pieces if len(p)
        ]
        assert received[1:] == [*datas, eom]
        assert received[-1].headers.raw_items() == eom.headers.raw_items()
        assert not server.they_are_waiting_for_100_continue

        response = server.send(Response(status_code=200, headers=[(b"Content-Length", b"0")]))
        client.receive_data(response + server.send(EndOfMessage()))
        assert [type(e) for e in events_from(client)] == [Response, EndOfMessage]
        if client.our_state is DONE:
            client.start_next_cycle()
            server.start_next_cycle()
        else:
            assert request.headers.info.close
            assert client.send(ConnectionClosed()) is None
            server.receive_data(b"")
            assert events_from(server) == [ConnectionClosed()]


@st.composite
def exchanges(draw: Any, last: bool) -> dict[str, Any]:
    method = draw(st.sampled_from([b"GET", b"GET", b"POST", b"HEAD"]))
    closes = last and draw(st.booleans())
    informational = [
        InformationalResponse(status_code=s, headers=draw(fields), reason=draw(streams.reasons))
        for s in draw(st.lists(st.sampled_from([100, 102, 103, 199]), max_size=2))
    ]
    status = draw(st.sampled_from([200, 204, 206, 304, 404, 500, 999]))
    headers = draw(fields)
    framing = draw(st.sampled_from(["length", "chunked", "unknown"]))
    no_content = status in (204, 304) or method == b"HEAD"
    pieces = [] if no_content else draw(st.lists(payloads, max_size=4))
    if framing == "length":
        headers.append((b"content-length", b"%d" % sum(map(len, pieces))))
    elif framing == "chunked":
        headers.append((b"Transfer-Encoding", b"Chunked"))
    trailers = [] if no_content or framing == "length" else draw(trailer_fields)
    response = Response(status_code=status, headers=headers, reason=draw(streams.reasons))
    return {
        "method": method,
        "closes": closes,
        "informational": informational,
        "response": response,
        "pieces": pieces,
        "eom": EndOfMessage(headers=trailers),
    }


def _request_for(exchange: dict[str, Any]) -> Request:
    headers = [(b"Host", b"h.example")]
    if exchange["closes"]:
        headers.append((b"Connection", b"close"))
    return Request(method=exchange["method"], target=b"/", headers=headers)


def _parse_response_head(wire: bytes, request: Request) -> Any:
    conn = Connection(CLIENT)
    conn.send(request)
    conn.send(EndOfMessage())
    conn.receive_data(wire)
    return conn.next_event()


def _without_framing(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in headers.raw_items() if n.lower() not in FRAMING]


@SETTINGS
@given(
    st.integers(1, 3).flatmap(lambda n: st.tuples(*[exchanges(last=i == n - 1) for i in range(n)]))
)
def test_responses_round_trip(script: tuple[dict[str, Any], ...]) -> None:
    client, server = Connection(CLIENT), Connection(SERVER)
    for exchange in script:
        request_wire = client.send(_request_for(exchange)) + client.send(EndOfMessage())
        server.receive_data(request_wire)
        assert [type(e) for e in events_from(server)] == [Request, EndOfMessage]
        twin = Connection(SERVER)  # a second server in the same state, for the fixpoint check
        twin.receive_data(request_wire)
        events_from(twin)

        for info in exchange["informational"]:
            client.receive_data(server.send(info))
            assert events_from(client) == [info]
            twin.send(info)

        response = exchange["response"]
        wire = server.send(response)
        client.receive_data(wire)
        received = events_from(client)
        head = received[0]
        assert type(head) is Response
        assert (head.status_code, head.reason, head.http_version) == (
            response.status_code,
            response.reason,
            response.http_version,
        )
        assert _without_framing(head.headers) == _without_framing(response.headers)
        assert (b"close" in head.headers.get_all(b"connection")) == exchange["closes"]
        # Sent again, the received head means the same (the clean-up may move
        # Transfer-Encoding last again, as h11's does).
        again = _parse_response_head(twin.send(head), _request_for(exchange))
        assert again.status_code == head.status_code
        assert sorted(again.headers) == sorted(head.headers)

        chunked = head.headers.info.chunked and not received[1:]
        for piece in exchange["pieces"]:
            data = server.send(Data(data=piece))
            if data:
                client.receive_data(data)
            got = events_from(client)
            if len(piece):
                assert got[0] == Data(data=bytes(piece), chunk_start=chunked, chunk_end=chunked)
            received += got
        data = server.send(exchange["eom"])
        if data:
            client.receive_data(data)
        received += events_from(client)
        datas = [
            Data(data=bytes(p), chunk_start=chunked, chunk_end=chunked)
            for p in exchange["pieces"]
            if len(p)
        ]
        assert received[1:] == [*datas, exchange["eom"]]

        if exchange["closes"]:
            assert server.send(ConnectionClosed()) is None
            client.receive_data(b"")
            assert events_from(client) == [ConnectionClosed()]
            return
        client.start_next_cycle()
        server.start_next_cycle()


@pytest.mark.parametrize("accept", [True, False])
@pytest.mark.parametrize("kind", ["CONNECT", "Upgrade"])
def test_protocol_switch_round_trip(kind: str, accept: bool) -> None:
    client, server = Connection(CLIENT), Connection(SERVER)
    if kind == "CONNECT":
        request = Request(
            method=b"CONNECT", target=b"h.example:443", headers=[(b"Host", b"h.example")]
        )
    else:
        request = Request(
            method=b"GET",
            target=b"/chat",
            headers=[(b"Host", b"h"), (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")],
        )
    server.receive_data(client.send(request) + client.send(EndOfMessage()) + b"\x00tunnel")
    assert events_from(server) == [request, EndOfMessage()]
    assert server.next_event() is ph.PAUSED
    if kind == "CONNECT":
        # (a 2xx answer to CONNECT has no framing fields: the tunnel follows)
        answer: Any = (
            Response(status_code=200, headers=[(b"X", b"y")])
            if accept
            else Response(status_code=407, headers=[(b"Content-Length", b"0")])
        )
    elif accept:
        answer = InformationalResponse(status_code=101, headers=[(b"Upgrade", b"websocket")])
    else:
        answer = Response(status_code=200, headers=[(b"Content-Length", b"0")])
    wire = server.send(answer)
    if not accept:
        wire += server.send(EndOfMessage())
    client.receive_data(wire + b"\x00tunnel")
    received = events_from(client)
    assert received[0] == answer
    if accept:
        switched = {CLIENT: ph.SWITCHED_PROTOCOL, SERVER: ph.SWITCHED_PROTOCOL}
        assert client.states == server.states == switched
        assert client.trailing_data == server.trailing_data == (b"\x00tunnel", False)
    else:
        assert received[1:] == [EndOfMessage()]
        assert client.states == server.states == {CLIENT: DONE, SERVER: DONE}
