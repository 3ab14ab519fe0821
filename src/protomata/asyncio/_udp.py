"""UDP over asyncio: one datagram in, one datagram out."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

__all__ = ["DatagramEndpoint", "open_udp"]

Address = Any  # (host, port) for IPv4, (host, port, flow, scope) for IPv6

# Datagrams queued beyond this are dropped, as a full socket buffer would.
_MAX_QUEUED = 1024


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: collections.deque[tuple[bytes, Address]] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        self.closed = False

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if len(self.queue) < _MAX_QUEUED:
            self.queue.append((data, addr))
        self._wake()

    def error_received(self, exc: Exception) -> None:
        self.error = exc
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()


class DatagramEndpoint:
    """A UDP socket: :meth:`send` datagrams and :meth:`receive` them."""

    def __init__(self, transport: asyncio.DatagramTransport, protocol: _DatagramProtocol) -> None:
        self.transport = transport
        self._protocol = protocol

    @property
    def local_address(self) -> Address:
        """The (host, port) this endpoint is bound to."""
        return self.transport.get_extra_info("sockname")

    async def send(self, data: bytes, addr: Address | None = None) -> None:
        """Send one datagram (to *addr*, or to the connected remote address)."""
        if self._protocol.closed:
            raise OSError("datagram endpoint is closed")
        self.transport.sendto(data, addr)

    async def receive(self, timeout: float | None = None) -> tuple[bytes, Address]:
        """The next datagram and its sender; TimeoutError after *timeout* s."""
        protocol = self._protocol
        loop = protocol.loop
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if protocol.queue:
                return protocol.queue.popleft()
            if protocol.error is not None:
                error, protocol.error = protocol.error, None
                raise error
            if protocol.closed:
                raise OSError("datagram endpoint is closed")
            waiter = protocol.waiter = loop.create_future()
            if deadline is None:
                await waiter
                continue
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("no datagram received in time")
            timer = loop.call_later(left, waiter.cancel)
            try:
                await waiter
            except asyncio.CancelledError:
                if not waiter.cancelled() or loop.time() < deadline:
                    raise
                raise TimeoutError("no datagram received in time") from None
            finally:
                timer.cancel()

    def close(self) -> None:
        """Close the socket."""
        self.transport.close()

    async def __aenter__(self) -> DatagramEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


async def open_udp(
    local_addr: tuple[str, int] | None = None, remote_addr: tuple[str, int] | None = None
) -> DatagramEndpoint:
    """A UDP endpoint bound to *local_addr* and/or connected to *remote_addr*."""
    if local_addr is None and remote_addr is None:
        local_addr = ("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _DatagramProtocol(loop), local_addr=local_addr, remote_addr=remote_addr
    )
    return DatagramEndpoint(transport, protocol)
