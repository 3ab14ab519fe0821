"""UDP endpoints on trio."""

from __future__ import annotations

import pytest
import trio

from protomata.trio import open_udp

from ._util import trio_test


@trio_test
async def test_udp_echo() -> None:
    async with await open_udp(("127.0.0.1", 0)) as server:
        host, port = server.local_address
        assert host == "127.0.0.1"
        assert port > 0

        async def echo_once() -> None:
            data, sender = await server.receive(timeout=2)
            await server.send(data.upper(), sender)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo_once)
            async with await open_udp(remote_addr=("127.0.0.1", port)) as client:
                assert client.remote == ("127.0.0.1", port)
                await client.send(b"ping")
                data, sender = await client.receive(timeout=2)
        assert data == b"PING"
        assert sender == ("127.0.0.1", port)


@trio_test
async def test_udp_receive_timeout_and_errors() -> None:
    async with await open_udp() as endpoint:  # 127.0.0.1, a free port
        assert endpoint.local_address[0] == "127.0.0.1"
        with pytest.raises(TimeoutError):
            await endpoint.receive(timeout=0.05)
        with pytest.raises(ValueError, match="not connected"):
            await endpoint.send(b"nowhere")


@trio_test
async def test_udp_datagrams_keep_their_boundaries() -> None:
    async with await open_udp(("127.0.0.1", 0)) as a, await open_udp(("127.0.0.1", 0)) as b:
        for payload in (b"1", b"22", b"x" * 5000):
            await a.send(payload, b.local_address)
        received = [(await b.receive(timeout=2))[0] for _ in range(3)]
        assert received == [b"1", b"22", b"x" * 5000]
