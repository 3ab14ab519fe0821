"""The two-sided state machine, observed through Connection."""

from __future__ import annotations

from typing import Any

import pytest

from protomata.http import (
    CLIENT,
    CLOSED,
    DONE,
    ERROR,
    IDLE,
    MIGHT_SWITCH_PROTOCOL,
    MUST_CLOSE,
    NEED_DATA,
    PAUSED,
    SEND_BODY,
    SEND_RESPONSE,
    SERVER,
    SWITCHED_PROTOCOL,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    Response,
    State,
)

HOST = ("Host", "h")


def get(
    *extra: tuple[str, str], method: str = "GET", target: str = "/", version: str = "1.1"
) -> Request:
    headers = [HOST, *extra] if version == "1.1" else list(extra)
    return Request(method=method, target=target, headers=headers, http_version=version)


def ok(*extra: tuple[str, str], status: int = 200) -> Response:
    return Response(status_code=status, headers=[("Content-Length", "0"), *extra])


def events_until_need_data(conn: Connection) -> list[Any]:
    events = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if event is PAUSED or type(event) is ConnectionClosed:
            return events


class Pair:
    """A client and a server wired together in memory."""

    def __init__(self) -> None:
        self.client = Connection(CLIENT)
        self.server = Connection(SERVER)

    def send(self, role: Any, *events: Any) -> list[Any]:
        sender, receiver = (
            (self.client, self.server) if role is CLIENT else (self.server, self.client)
        )
        for event in events:
            data = sender.send(event)
            if data is None:
                receiver.receive_data(b"")  # ConnectionClosed: EOF
            elif data:
                receiver.receive_data(data)
        return events_until_need_data(receiver)

    def states(self) -> tuple[dict[Any, State], dict[Any, State]]:
        return self.client.states, self.server.states

    def assert_states(self, client_state: State, server_state: State) -> None:
        """Both ends agree on both states (true whenever no bytes are in flight
        and the receiver has not parsed ahead of its peer's own bookkeeping)."""
        expected = {CLIENT: client_state, SERVER: server_state}
        assert self.client.states == expected
        assert self.server.states == expected


# -- basics ----------------------------------------------------------------------------


def test_state_enum() -> None:
    assert {s.name for s in State} == {
        "IDLE",
        "SEND_RESPONSE",
        "SEND_BODY",
        "DONE",
        "MUST_CLOSE",
        "CLOSED",
        "ERROR",
        "MIGHT_SWITCH_PROTOCOL",
        "SWITCHED_PROTOCOL",
    }
    assert repr(IDLE) == "IDLE"
    assert State.DONE is DONE
    assert {IDLE: 1}[State.IDLE] == 1


@pytest.mark.parametrize("role", [CLIENT, SERVER])
def test_initial_state(role: Any) -> None:
    conn = Connection(role)
    assert conn.our_role is role
    assert conn.their_role is role.peer
    assert conn.states == {CLIENT: IDLE, SERVER: IDLE}
    assert conn.our_state is IDLE
    assert conn.their_state is IDLE
    assert conn.their_http_version is None
    assert conn.trailing_data == (b"", False)


def test_states_returns_a_copy() -> None:
    conn = Connection(CLIENT)
    states = conn.states
    states[CLIENT] = ERROR
    assert conn.our_state is IDLE


def test_full_cycle_states_from_both_sides() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Content-Length", "1")))
    pair.assert_states(SEND_BODY, SEND_RESPONSE)
    pair.send(CLIENT, Data(b"x"), EndOfMessage())
    pair.assert_states(DONE, SEND_RESPONSE)
    pair.send(SERVER, InformationalResponse(status_code=103, headers=[]))
    pair.assert_states(DONE, SEND_RESPONSE)
    pair.send(SERVER, Response(status_code=200, headers=[("Content-Length", "3")]))
    pair.assert_states(DONE, SEND_BODY)
    pair.send(SERVER, Data(b"ok"))
    pair.assert_states(DONE, SEND_BODY)
    # The last body byte ends the message for the receiver at once.
    assert pair.send(SERVER, Data(b"!")) == [Data(b"!"), EndOfMessage()]
    assert pair.client.states == {CLIENT: DONE, SERVER: DONE}
    pair.send(SERVER, EndOfMessage())
    pair.assert_states(DONE, DONE)
    pair.client.start_next_cycle()
    pair.server.start_next_cycle()
    pair.assert_states(IDLE, IDLE)


def test_server_may_respond_before_request_is_complete() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Content-Length", "100")))
    pair.send(SERVER, Response(status_code=413, headers=[("Content-Length", "0")]), EndOfMessage())
    pair.assert_states(SEND_BODY, DONE)
    pair.send(CLIENT, Data(b"x" * 100), EndOfMessage())
    pair.assert_states(DONE, DONE)


def test_server_may_respond_before_any_request() -> None:
    server = Connection(SERVER)
    server.send(Response(status_code=408, headers=[("Content-Length", "0")]))
    assert server.states == {CLIENT: IDLE, SERVER: SEND_BODY}
    server.send(EndOfMessage())
    # We are done, but no request ever started a cycle: not reusable.
    assert server.states == {CLIENT: IDLE, SERVER: DONE}
    with pytest.raises(LocalProtocolError):
        server.start_next_cycle()


def test_request_after_early_response_is_refused() -> None:
    # Once the server has answered unprompted, a request can no longer start
    # a normal cycle on this connection.
    server = Connection(SERVER)
    server.send(Response(status_code=408, headers=[("Content-Length", "0")]))
    server.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    assert server.their_state is ERROR

    client = Connection(CLIENT)
    client.receive_data(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(client.next_event(), Response)
    with pytest.raises(LocalProtocolError):
        client.send(get())
    assert client.our_state is ERROR


# -- keep-alive -------------------------------------------------------------------------


def test_connection_close_in_request() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Connection", "close")), EndOfMessage())
    pair.assert_states(MUST_CLOSE, SEND_RESPONSE)
    pair.send(SERVER, ok(), EndOfMessage())
    pair.assert_states(MUST_CLOSE, MUST_CLOSE)
    with pytest.raises(LocalProtocolError):
        pair.client.start_next_cycle()
    with pytest.raises(LocalProtocolError):
        pair.server.start_next_cycle()


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close", "upgrade,CLOSE"])
def test_connection_close_in_response(value: str) -> None:
    pair = Pair()
    pair.send(CLIENT, get(), EndOfMessage())
    pair.send(SERVER, ok(("Connection", value)), EndOfMessage())
    pair.assert_states(MUST_CLOSE, MUST_CLOSE)


def test_connection_close_state_while_other_side_still_busy() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Connection", "close"), ("Content-Length", "1")))
    pair.assert_states(SEND_BODY, SEND_RESPONSE)
    pair.send(SERVER, ok(), EndOfMessage())
    pair.assert_states(SEND_BODY, MUST_CLOSE)
    pair.send(CLIENT, Data(b"x"), EndOfMessage())
    pair.assert_states(MUST_CLOSE, MUST_CLOSE)


def test_http10_request_disables_keep_alive() -> None:
    server = Connection(SERVER)
    server.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    assert [type(e) for e in events_until_need_data(server)] == [Request, EndOfMessage]
    assert server.their_state is MUST_CLOSE
    server.send(ok())
    server.send(EndOfMessage())
    assert server.our_state is MUST_CLOSE


@pytest.mark.parametrize("value", [b"keep-alive", b"Keep-Alive", b"foo, keep-alive"])
def test_http10_keep_alive_opt_in(value: bytes) -> None:
    server = Connection(SERVER)
    server.receive_data(b"GET / HTTP/1.0\r\nConnection: " + value + b"\r\n\r\n")
    events_until_need_data(server)
    assert server.their_state is DONE
    server.send(ok())
    server.send(EndOfMessage())
    assert server.states == {CLIENT: DONE, SERVER: DONE}
    server.start_next_cycle()
    server.receive_data(b"GET /2 HTTP/1.0\r\n\r\n")
    req = server.next_event()
    assert isinstance(req, Request)
    assert req.target == b"/2"


def test_http10_response_from_server_disables_keep_alive() -> None:
    client = Connection(CLIENT)
    client.send(get())
    client.send(EndOfMessage())
    client.receive_data(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    events_until_need_data(client)
    assert client.states == {CLIENT: MUST_CLOSE, SERVER: MUST_CLOSE}


def test_http10_response_with_keep_alive_keeps_connection() -> None:
    client = Connection(CLIENT)
    client.send(get())
    client.send(EndOfMessage())
    client.receive_data(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
    events_until_need_data(client)
    assert client.states == {CLIENT: DONE, SERVER: DONE}


def test_informational_response_connection_close_is_ignored() -> None:
    pair = Pair()
    pair.send(CLIENT, get(), EndOfMessage())
    pair.send(SERVER, InformationalResponse(status_code=100, headers=[("Connection", "close")]))
    pair.send(SERVER, ok(), EndOfMessage())
    pair.assert_states(DONE, DONE)


# -- closing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [CLIENT, SERVER])
def test_closing_while_idle(role: Any) -> None:
    conn = Connection(role)
    assert conn.send(ConnectionClosed()) is None
    assert conn.our_state is CLOSED
    assert conn.their_state is MUST_CLOSE
    # Closing again is harmless.
    assert conn.send(ConnectionClosed()) is None
    assert conn.our_state is CLOSED


def test_client_closes_after_response() -> None:
    pair = Pair()
    pair.send(CLIENT, get(), EndOfMessage())
    pair.send(SERVER, ok(), EndOfMessage())
    events = pair.send(CLIENT, ConnectionClosed())
    assert events == [ConnectionClosed()]
    pair.assert_states(CLOSED, MUST_CLOSE)
    pair.send(SERVER, ConnectionClosed())
    pair.assert_states(CLOSED, CLOSED)


def test_cannot_close_in_the_middle_of_a_message() -> None:
    client = Connection(CLIENT)
    client.send(get(("Content-Length", "3")))
    with pytest.raises(LocalProtocolError):
        client.send(ConnectionClosed())
    assert client.our_state is ERROR


def test_peer_close_while_we_are_busy() -> None:
    server = Connection(SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    events_until_need_data(server)
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()
    assert server.states == {CLIENT: CLOSED, SERVER: SEND_RESPONSE}
    server.send(ok())
    server.send(EndOfMessage())
    assert server.states == {CLIENT: CLOSED, SERVER: MUST_CLOSE}


def test_peer_close_when_idle() -> None:
    for role in (CLIENT, SERVER):
        conn = Connection(role)
        conn.receive_data(b"")
        assert conn.next_event() == ConnectionClosed()
        assert conn.their_state is CLOSED
        assert conn.our_state is MUST_CLOSE
        # EOF is sticky: asking again gives ConnectionClosed again.
        assert conn.next_event() == ConnectionClosed()


# -- errors -------------------------------------------------------------------------------


def test_send_failed_puts_us_in_error() -> None:
    client = Connection(CLIENT)
    client.send(get())
    client.send_failed()
    assert client.our_state is ERROR
    with pytest.raises(LocalProtocolError):
        client.send(EndOfMessage())
    assert client.our_state is ERROR


def test_our_error_makes_done_peer_close() -> None:
    pair = Pair()
    pair.send(CLIENT, get(), EndOfMessage())
    pair.send(SERVER, ok(), EndOfMessage())
    pair.client.send_failed()
    assert pair.client.states == {CLIENT: ERROR, SERVER: MUST_CLOSE}
    pair.server.send_failed()
    assert pair.server.states == {CLIENT: MUST_CLOSE, SERVER: ERROR}


def test_remote_error_puts_them_in_error_and_server_can_still_answer() -> None:
    server = Connection(SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\n\r\n")  # no Host
    with pytest.raises(RemoteProtocolError) as excinfo:
        server.next_event()
    assert excinfo.value.error_status_hint == 400
    assert server.their_state is ERROR
    assert server.our_state is IDLE
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    out = server.send(Response(status_code=400, headers=[("Content-Length", "0")]))
    assert out is not None and out.startswith(b"HTTP/1.1 400 ")
    server.send(EndOfMessage())
    assert server.states == {CLIENT: ERROR, SERVER: MUST_CLOSE}


def test_remote_error_in_body_after_request() -> None:
    server = Connection(SERVER)
    server.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert isinstance(server.next_event(), Request)
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    assert server.states == {CLIENT: ERROR, SERVER: SEND_RESPONSE}


# -- wrong-state sends ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        Response(status_code=200, headers=[]),
        InformationalResponse(status_code=100, headers=[]),
        Data(b"x"),
        EndOfMessage(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_client_cannot_send_out_of_turn(event: Any) -> None:
    client = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(event)
    assert client.our_state is ERROR


@pytest.mark.parametrize(
    "event",
    [
        get(),
        InformationalResponse(status_code=100, headers=[]),
        Data(b"x"),
        EndOfMessage(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_server_cannot_send_out_of_turn_when_idle(event: Any) -> None:
    server = Connection(SERVER)
    with pytest.raises(LocalProtocolError):
        server.send(event)
    assert server.our_state is ERROR


def test_second_request_before_cycle_reset() -> None:
    client = Connection(CLIENT)
    client.send(get())
    client.send(EndOfMessage())
    with pytest.raises(LocalProtocolError):
        client.send(get())


def test_informational_after_final_response() -> None:
    pair = Pair()
    pair.send(CLIENT, get(), EndOfMessage())
    pair.send(SERVER, ok())
    with pytest.raises(LocalProtocolError):
        pair.server.send(InformationalResponse(status_code=100, headers=[]))


def test_invalid_send_emits_nothing_and_keeps_peer_state() -> None:
    server = Connection(SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    events_until_need_data(server)
    with pytest.raises(LocalProtocolError):
        server.send(Data(b"too early"))
    # Our failure means the (finished) client must close: (DONE, ERROR) -> MUST_CLOSE.
    assert server.states == {CLIENT: MUST_CLOSE, SERVER: ERROR}


def test_receiving_out_of_turn_is_a_remote_error() -> None:
    client = Connection(CLIENT)
    client.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n")  # 1xx before any request
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    assert client.their_state is ERROR


def test_data_after_must_close_is_a_remote_error() -> None:
    client = Connection(CLIENT)
    client.send(get())
    client.send(EndOfMessage())
    client.receive_data(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nextra")
    assert isinstance(client.next_event(), Response)
    assert client.next_event() == EndOfMessage()
    assert client.their_state is MUST_CLOSE
    with pytest.raises(RemoteProtocolError, match="expecting EOF"):
        client.next_event()


# -- start_next_cycle ----------------------------------------------------------------------


def test_start_next_cycle_requires_done_done() -> None:
    pair = Pair()
    for step in (
        lambda: None,
        lambda: pair.send(CLIENT, get()),
        lambda: pair.send(CLIENT, EndOfMessage()),
        lambda: pair.send(SERVER, Response(status_code=200, headers=[("Content-Length", "1")])),
    ):
        step()
        for conn in (pair.client, pair.server):
            before = conn.states
            with pytest.raises(LocalProtocolError, match="not in a reusable state"):
                conn.start_next_cycle()
            assert conn.states == before  # a refused reset changes nothing
    pair.send(SERVER, Data(b"x"), EndOfMessage())
    pair.client.start_next_cycle()
    pair.server.start_next_cycle()
    pair.assert_states(IDLE, IDLE)


def test_cycle_can_repeat_many_times() -> None:
    pair = Pair()
    for i in range(5):
        events = pair.send(CLIENT, get(target=f"/{i}"), EndOfMessage())
        assert events[0].target == f"/{i}".encode()
        events = pair.send(
            SERVER, Response(status_code=200, headers=[]), Data(b"%d" % i), EndOfMessage()
        )
        assert events[0].headers.get("transfer-encoding") == b"chunked"
        assert events[1:] == [Data(b"%d" % i, chunk_start=True, chunk_end=True), EndOfMessage()]
        pair.client.start_next_cycle()
        pair.server.start_next_cycle()


# -- protocol switches -------------------------------------------------------------------------


def test_connect_accepted() -> None:
    pair = Pair()
    pair.send(CLIENT, get(method="CONNECT", target="example.com:443"))
    assert pair.client.states == {CLIENT: SEND_BODY, SERVER: SEND_RESPONSE}
    # The server already saw the (empty) end of the request.
    assert pair.server.states == {CLIENT: MIGHT_SWITCH_PROTOCOL, SERVER: SEND_RESPONSE}
    pair.send(CLIENT, EndOfMessage())
    pair.assert_states(MIGHT_SWITCH_PROTOCOL, SEND_RESPONSE)
    events = pair.send(SERVER, Response(status_code=200, headers=[]))
    assert [type(e) for e in events] == [Response, type(PAUSED)]
    pair.assert_states(SWITCHED_PROTOCOL, SWITCHED_PROTOCOL)
    for conn in (pair.client, pair.server):
        with pytest.raises(LocalProtocolError):
            conn.send(Data(b"tunnel bytes are not HTTP"))


def test_connect_refused_returns_to_http() -> None:
    pair = Pair()
    pair.send(CLIENT, get(method="CONNECT", target="example.com:443"), EndOfMessage())
    events = pair.send(SERVER, Response(status_code=407, headers=[("Content-Length", "1")]))
    assert isinstance(events[0], Response)
    pair.assert_states(DONE, SEND_BODY)
    events = pair.send(SERVER, Data(b"x"), EndOfMessage())
    assert events == [Data(b"x"), EndOfMessage()]
    pair.assert_states(DONE, DONE)


def test_upgrade_accepted() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Upgrade", "websocket"), ("Connection", "Upgrade")), EndOfMessage())
    pair.assert_states(MIGHT_SWITCH_PROTOCOL, SEND_RESPONSE)
    # An ordinary 1xx does not decide anything.
    pair.send(SERVER, InformationalResponse(status_code=100, headers=[]))
    pair.assert_states(MIGHT_SWITCH_PROTOCOL, SEND_RESPONSE)
    events = pair.send(
        SERVER, InformationalResponse(status_code=101, headers=[("Upgrade", "websocket")])
    )
    assert isinstance(events[0], InformationalResponse)
    assert events[0].status_code == 101
    assert events[1] is PAUSED
    pair.assert_states(SWITCHED_PROTOCOL, SWITCHED_PROTOCOL)


def test_upgrade_declined() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Upgrade", "h2c")), EndOfMessage())
    pair.assert_states(MIGHT_SWITCH_PROTOCOL, SEND_RESPONSE)
    pair.send(SERVER, ok(), EndOfMessage())
    pair.assert_states(DONE, DONE)


def test_upgrade_proposal_waits_for_request_body() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Upgrade", "h2c"), ("Content-Length", "2")))
    pair.assert_states(SEND_BODY, SEND_RESPONSE)
    pair.send(CLIENT, Data(b"hi"), EndOfMessage())
    pair.assert_states(MIGHT_SWITCH_PROTOCOL, SEND_RESPONSE)


def test_empty_upgrade_field_is_no_proposal() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Upgrade", "")), EndOfMessage())
    pair.assert_states(DONE, SEND_RESPONSE)


def test_101_without_proposal_is_refused_on_send() -> None:
    pair = Pair()
    pair.send(CLIENT, get(), EndOfMessage())
    with pytest.raises(LocalProtocolError):
        pair.server.send(InformationalResponse(status_code=101, headers=[("Upgrade", "x")]))
    assert pair.server.our_state is ERROR


def test_2xx_without_connect_is_a_normal_response() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Upgrade", "websocket")), EndOfMessage())
    pair.send(SERVER, Response(status_code=200, headers=[("Content-Length", "1")]))
    pair.assert_states(DONE, SEND_BODY)


def test_both_proposals_either_accepted() -> None:
    pair = Pair()
    pair.send(CLIENT, get(("Upgrade", "x"), method="CONNECT", target="a:1"), EndOfMessage())
    pair.send(SERVER, InformationalResponse(status_code=101, headers=[]))
    pair.assert_states(SWITCHED_PROTOCOL, SWITCHED_PROTOCOL)

    pair = Pair()
    pair.send(CLIENT, get(("Upgrade", "x"), method="CONNECT", target="a:1"), EndOfMessage())
    pair.send(SERVER, Response(status_code=200, headers=[]))
    pair.assert_states(SWITCHED_PROTOCOL, SWITCHED_PROTOCOL)


def test_connect_with_connection_close_still_may_switch() -> None:
    # Switch takes priority over MUST_CLOSE while the server decides.
    pair = Pair()
    pair.send(CLIENT, get(("Connection", "close"), method="CONNECT", target="a:1"), EndOfMessage())
    pair.assert_states(MIGHT_SWITCH_PROTOCOL, SEND_RESPONSE)
    pair.send(SERVER, Response(status_code=403, headers=[("Content-Length", "0")]), EndOfMessage())
    pair.assert_states(MUST_CLOSE, MUST_CLOSE)


def test_start_next_cycle_refused_after_switch() -> None:
    pair = Pair()
    pair.send(CLIENT, get(method="CONNECT", target="a:1"), EndOfMessage())
    pair.send(SERVER, Response(status_code=200, headers=[]))
    for conn in (pair.client, pair.server):
        with pytest.raises(LocalProtocolError):
            conn.start_next_cycle()
