"""UDP endpoints for trio: one datagram in, one datagram out."""

from __future__ import annotations

import math
import socket
from typing import Any

import trio

__all__ = ["DatagramEndpoint", "open_udp"]


def _address(raw: Any) -> tuple[str, int]:
    return str(raw[0]), int(raw[1])


class DatagramEndpoint:
    """A UDP socket: :meth:`send` and :meth:`receive` whole datagrams.

    With a remote address (see :func:`open_udp`) the socket is connected:
    :meth:`send` needs no address and only the peer's datagrams arrive.
    """

    def __init__(
        self,
        sock: trio.socket.SocketType,
        remote: tuple[str, int] | None = None,
        *,
        max_size: int = 65535,
    ) -> None:
        self.socket = sock
        #: the connected peer, or None
        self.remote = remote
        #: the largest datagram :meth:`receive` returns whole
        self.max_size = max_size

    @property
    def local_address(self) -> tuple[str, int]:
        """The (host, port) this endpoint is bound to."""
        return _address(self.socket.getsockname())

    async def send(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        """Send *data* as one datagram to *addr* (default: the connected peer)."""
        if addr is None:
            if self.remote is None:
                raise ValueError("no address given and the endpoint is not connected")
            await self.socket.send(data)
        else:
            await self.socket.sendto(data, addr)

    async def receive(self, timeout: float | None = None) -> tuple[bytes, tuple[str, int]]:
        """The next datagram and its sender; :class:`TimeoutError` after *timeout* s.

        On a connected endpoint an ICMP "port unreachable" from the peer
        surfaces here as :class:`ConnectionRefusedError`.
        """
        try:
            with trio.fail_after(math.inf if timeout is None else timeout):
                data, sender = await self.socket.recvfrom(self.max_size)
        except trio.TooSlowError:
            raise TimeoutError("timed out waiting for a datagram") from None
        return bytes(data), _address(sender)

    def close(self) -> None:
        """Close the socket."""
        self.socket.close()

    async def __aenter__(self) -> DatagramEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


async def open_udp(
    local_addr: tuple[str, int] | None = None,
    remote_addr: tuple[str, int] | None = None,
    *,
    max_size: int = 65535,
    reuse_port: bool = False,
) -> DatagramEndpoint:
    """A UDP endpoint bound to *local_addr* and/or connected to *remote_addr*.

    The address family (IPv4 or IPv6) follows the addresses given.  Without
    either address the endpoint listens on 127.0.0.1 (a free port).
    """
    if local_addr is None and remote_addr is None:
        local_addr = ("127.0.0.1", 0)
    family = socket.AF_INET
    sockaddr: Any = None
    if remote_addr is not None:
        infos = await trio.socket.getaddrinfo(
            remote_addr[0], remote_addr[1], type=socket.SOCK_DGRAM
        )
        if not infos:
            raise OSError(f"cannot resolve {remote_addr[0]!r}")
        family, sockaddr = infos[0][0], infos[0][4]
    elif local_addr is not None and ":" in local_addr[0]:
        family = socket.AF_INET6
    sock = trio.socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if local_addr is not None:
            await sock.bind(local_addr)
        if sockaddr is not None:
            await sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    remote = _address(sockaddr) if sockaddr is not None else None
    return DatagramEndpoint(sock, remote, max_size=max_size)
