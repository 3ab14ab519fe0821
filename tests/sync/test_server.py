"""Helpers of the blocking server shared by every adapter."""

from __future__ import annotations

import socket
import threading

import pytest

from protomata.sync import Timeouts, listen_tcp
from protomata.sync._stream import unmapped


def test_unmapped_reports_ipv4_clients_of_a_dual_stack_listener_as_ipv4() -> None:
    assert unmapped("::ffff:192.0.2.7") == "192.0.2.7"
    assert unmapped("::ffff:c000:207") == "::ffff:c000:207"  # not the dotted mapped form
    assert unmapped("2001:db8::1") == "2001:db8::1"
    assert unmapped("127.0.0.1") == "127.0.0.1"


@pytest.mark.parametrize("host", [None, ""])
def test_listen_tcp_on_every_address(host: str | None) -> None:
    sock = listen_tcp(host, 0)
    with sock:
        port = sock.getsockname()[1]
        if sock.family == socket.AF_INET6:
            assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        else:
            assert sock.getsockname()[0] == "0.0.0.0"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            conn, peer = sock.accept()
            conn.close()
        assert unmapped(peer[0]) == "127.0.0.1"


class _Server:
    """The parts of a server a server stream looks at."""

    def __init__(self) -> None:
        self.draining = False
        self._lock = threading.Lock()


REQUEST = b"GET / HTTP/1.1\r\n\r\n"

# (accepted before the shutdown began, request bytes already there, served?)
DRAIN_CASES = [(True, True, True), (True, False, False), (False, True, False)]


@pytest.mark.parametrize(("early", "arrived", "served"), DRAIN_CASES)
def test_draining_blocking_server_serves_only_a_request_already_waiting(
    early: bool, arrived: bool, served: bool
) -> None:
    from protomata._core._ops import ServerShutdown, TimeoutKind
    from protomata.sync._server import _ServerStream

    server = _Server()
    server.draining = not early
    ours, theirs = socket.socketpair()
    with ours, theirs:
        stream = _ServerStream(server, ours, Timeouts(5.0))  # type: ignore[arg-type]
        server.draining = True
        if arrived:
            theirs.sendall(REQUEST)
        if served:
            assert stream.receive_some(65536, TimeoutKind.IDLE) == REQUEST
        else:
            with pytest.raises(ServerShutdown):  # the wait ends at once
                stream.receive_some(65536, TimeoutKind.IDLE)


@pytest.mark.parametrize(("early", "arrived", "served"), DRAIN_CASES)
def test_draining_trio_server_serves_only_a_request_already_waiting(
    early: bool, arrived: bool, served: bool
) -> None:
    trio = pytest.importorskip("trio")
    from protomata._core._ops import ServerShutdown, TimeoutKind
    from protomata.trio._server import _ServerStream

    async def main() -> None:
        server = _Server()
        server.draining = not early
        ours, theirs = trio.socket.socketpair()
        with ours, theirs:
            stream = _ServerStream(
                server,  # type: ignore[arg-type]
                trio.SocketStream(ours),
                Timeouts(5.0),
                None,
            )
            server.draining = True
            if arrived:
                await theirs.send(REQUEST)
            if served:
                assert await stream.receive_some(65536, TimeoutKind.IDLE) == REQUEST
            else:
                with trio.fail_after(5), pytest.raises(ServerShutdown):
                    await stream.receive_some(65536, TimeoutKind.IDLE)

    trio.run(main)
