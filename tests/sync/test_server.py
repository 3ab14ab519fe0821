"""Helpers of the blocking server shared by every adapter."""

from __future__ import annotations

import socket

import pytest

from protomata.sync import listen_tcp
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
