"""Hostile and heavy clients against every adapter's server.

Raw sockets stand in for slow, greedy and broken peers; each test checks
that the server cuts the bad peer off *and* keeps serving everyone else.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ._harness import ADAPTERS, HOST, SLOW_SECONDS, Call, RunningServer, fetch, run_server

HELLO = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(params=ADAPTERS)
def server_adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def connect(server: RunningServer, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((HOST, server.port), timeout=timeout)


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body (all our test routes but /stream)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def assert_still_serving(server: RunningServer) -> None:
    with connect(server) as sock:
        sock.sendall(HELLO)
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"\r\n\r\nhello")


# --- slow loris -----------------------------------------------------------------

SHORT_HEAD = {"read": 5.0, "head": 0.5, "idle": 5.0}


def test_stalled_head_times_out(server_adapter: str) -> None:
    """A head that stops arriving is answered 408 after the head timeout."""
    with run_server(server_adapter, timeouts=SHORT_HEAD) as server:
        with connect(server) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
            reply = read_to_eof(sock)
            elapsed = time.monotonic() - started
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert 0.3 < elapsed < 3
        assert_still_serving(server)


def _trickle(server: RunningServer, budget: float) -> float | None:
    """Send a head one byte per 0.1 s; return when the server hung up (None: never)."""
    started = time.monotonic()
    with connect(server, timeout=0.1) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\n")
        while time.monotonic() - started < budget:
            try:
                sock.sendall(b"X")
            except OSError:
                return time.monotonic() - started
            try:
                sock.recv(65536)  # a 408 or EOF: either way the server cut us off
            except TimeoutError:
                continue
            except OSError:
                pass
            return time.monotonic() - started
    return None


def test_slowloris_trickling_head_is_cut_off(
    server_adapter: str, request: pytest.FixtureRequest
) -> None:
    """A head that keeps arriving one byte at a time must not outlive the head timeout.

    The head timeout bounds reading the *whole* head; a per-read timeout
    would let a peer hold the connection forever with one byte per 0.1 s.
    """
    with run_server(server_adapter, timeouts=SHORT_HEAD) as server:
        cut_off_after = _trickle(server, budget=2.0)
        assert cut_off_after is not None, "the server kept a trickling head for 2 s"
        assert cut_off_after < 1.5
        assert_still_serving(server)


# --- oversized and malformed requests ---------------------------------------------


def test_oversized_headers_get_431(server_adapter: str) -> None:
    with run_server(server_adapter) as server:
        with connect(server) as sock:
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            reply = read_to_eof(sock)
        assert reply.startswith(b"HTTP/1.1 431 ")
        assert_still_serving(server)
        assert server.recorder.peers != []  # the good client reached the handler


def test_bad_chunked_framing_gets_400(server_adapter: str) -> None:
    with run_server(server_adapter) as server:
        with connect(server) as bystander:
            bystander.sendall(HELLO)
            assert read_response(bystander).endswith(b"hello")
            with connect(server) as sock:
                sock.sendall(
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"zz\r\nnot hex\r\n0\r\n\r\n"
                )
                reply = read_to_eof(sock)
            assert reply.startswith(b"HTTP/1.1 400 ")
            bystander.sendall(HELLO)  # the other keep-alive connection is unaffected
            assert read_response(bystander).endswith(b"hello")
        assert_still_serving(server)


def read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """*count* pipelined responses with Content-Length bodies, from one buffer."""
    data = b""
    responses: list[bytes] = []
    while len(responses) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(data) >= end + 4 + length:
                responses.append(data[: end + 4 + length])
                data = data[end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return responses


def test_pipelined_requests_answered_in_order(server_adapter: str) -> None:
    with run_server(server_adapter) as server, connect(server) as sock:
        sock.sendall(
            HELLO
            + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            + b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
            + HELLO
        )
        responses = read_responses(sock, 4)
    assert [r.split(b" ", 2)[1] for r in responses] == [b"200", b"200", b"404", b"200"]
    assert [r.rpartition(b"\r\n\r\n")[2] for r in responses] == [
        b"hello",
        b"abc",
        b"not found",
        b"hello",
    ]


def test_head_of_streamed_response_sends_no_body(server_adapter: str) -> None:
    with run_server(server_adapter) as server, connect(server) as sock:
        sock.sendall(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n" + HELLO)
        data = b""
        while not data.endswith(b"hello"):
            chunk = sock.recv(65536)
            assert chunk, f"connection closed early after {data!r}"
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b"HTTP/1.1 200 ")  # not a single body byte (nor "0\r\n\r\n")
    assert rest.endswith(b"\r\n\r\nhello")


def test_content_length_with_chunked_is_not_smuggled(server_adapter: str) -> None:
    """CL + TE together (RFC 9112 6.1): rejected, or at least the connection closes."""
    with run_server(server_adapter) as server:
        with connect(server) as sock:
            sock.sendall(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + HELLO
            )
            reply = read_to_eof(sock)
        assert reply.startswith(b"HTTP/1.1 400 ")
        assert b"hello" not in reply  # the smuggled request was never served
        assert_still_serving(server)


def test_body_over_limit_gets_413(server_adapter: str) -> None:
    from protomata.sync import ServerSettings

    with run_server(server_adapter, settings=ServerSettings(max_body_size=1000)) as server:
        with connect(server) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
            sock.sendall(b"x" * 5000)
            reply = read_to_eof(sock)
        assert reply.startswith(b"HTTP/1.1 413 ")
        with connect(server) as sock:  # a chunked body is counted as it arrives
            sock.sendall(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"400\r\n"
                + b"y" * 1024
                + b"\r\n0\r\n\r\n"
            )
            reply = read_to_eof(sock)
        assert reply.startswith(b"HTTP/1.1 413 ")
        assert_still_serving(server)


def test_a_client_still_sending_a_refused_body_reads_the_413(server_adapter: str) -> None:
    # The server answers 413 after reading a little of an 8 MB body and
    # closes.  A plain close would answer the rest of the body with a reset,
    # and a client that writes its whole body before reading (as
    # http.client does) would get ECONNRESET instead of the 413.  The server
    # half-closes and discards what still comes (Timeouts.linger).
    from protomata.sync import ServerSettings

    size = 8 * 1024 * 1024
    with run_server(server_adapter, settings=ServerSettings(max_body_size=1000)) as server:
        with connect(server, timeout=10.0) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            sock.sendall(b"z" * size)  # no reset while the body goes out
            reply = read_to_eof(sock)
        assert reply.startswith(b"HTTP/1.1 413 ")
        assert_still_serving(server)


def test_lingering_after_a_refusal_is_bounded(server_adapter: str) -> None:
    # A client that keeps sending and never closes holds the connection only
    # for the linger time; then the server closes and the sends fail.
    from protomata.sync import ServerSettings

    linger = 0.5
    settings = ServerSettings(max_body_size=1000)
    with run_server(server_adapter, settings=settings, timeouts={"linger": linger}) as server:
        with connect(server, timeout=10.0) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
            sock.sendall(b"z" * 5000)
            assert read_response(sock).startswith(b"HTTP/1.1 413 ")
            start = time.monotonic()
            with pytest.raises(OSError):  # EPIPE or ECONNRESET once the server is gone
                while time.monotonic() - start < 10:
                    sock.sendall(b"z" * 1000)
                    time.sleep(0.02)
            assert linger * 0.8 <= time.monotonic() - start < linger + 3
        assert_still_serving(server)


# --- many connections -----------------------------------------------------------------

MANY = 1000


@pytest.fixture
def enough_file_descriptors() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * MANY + 200  # our client sockets plus the server's
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("adapter", ["asyncio", "trio"])
@pytest.mark.usefixtures("enough_file_descriptors")
def test_thousand_concurrent_keep_alive_connections(adapter: str) -> None:
    with run_server(adapter, max_connections=MANY + 50) as server:
        sockets: list[socket.socket] = []
        try:
            for _ in range(MANY):
                sockets.append(connect(server, timeout=20))
            for sock in sockets:  # every connection has a request in flight at once
                sock.sendall(HELLO)
            for sock in sockets:
                assert read_response(sock).endswith(b"\r\n\r\nhello")
            for sock in sockets:  # ... and every one is still alive for a second round
                sock.sendall(HELLO)
            for sock in sockets:
                assert read_response(sock).endswith(b"\r\n\r\nhello")
        finally:
            for sock in sockets:
                sock.close()
        assert len(server.recorder.peers) == 2 * MANY
        assert len(set(server.recorder.peers)) == MANY


# --- graceful shutdown ------------------------------------------------------------------


def _poll(condition: Callable[[], object], limit: float = 5.0) -> None:
    """Wait until *condition()* holds (a test that waits for an event, not a guess)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_graceful_shutdown_finishes_in_flight_request(server_adapter: str) -> None:
    with run_server(server_adapter) as server:
        idle = connect(server)
        idle.sendall(HELLO)
        assert read_response(idle).endswith(b"hello")  # now idle between requests
        slow = connect(server, timeout=SLOW_SECONDS + 5)
        slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        _poll(lambda: len(server.recorder.peers) == 2)  # the slow handler is sleeping now
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        try:
            _poll(lambda: server.server.draining)
            time.sleep(0.1)  # shutdown has begun; the slow request is still running
            # Refused, reset, or closed without an answer.
            with pytest.raises(OSError), connect(server, timeout=2) as late:
                late.sendall(HELLO)
                if not read_to_eof(late):
                    raise ConnectionResetError("closed without an answer")
            reply = read_to_eof(slow)  # the in-flight request completes, then EOF
            assert reply.startswith(b"HTTP/1.1 200 ")
            # ... telling the client not to send another request on it
            assert b"\r\nconnection: close\r\n" in reply.lower()
            assert reply.endswith(b"slow done")
            idle.settimeout(2)
            assert read_to_eof(idle) == b""  # the idle keep-alive connection was closed
        finally:
            stopper.join(15)
            idle.close()
            slow.close()
        assert not stopper.is_alive()


@pytest.mark.parametrize("server_adapter", ADAPTERS)
def test_handler_failure_is_logged_with_its_traceback(
    server_adapter: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="protomata.http"):
        with run_server(server_adapter) as server:
            results = fetch(server_adapter, [Call("GET", server.url + "error")])
        assert results[0].status == 500
    logged = [r.getMessage() for r in caplog.records if r.name == "protomata.http"]
    assert len(logged) == 1
    assert logged[0].startswith("error in HTTP handler:\nTraceback (most recent call last)")
    assert "RuntimeError: the handler failed on purpose" in logged[0]
