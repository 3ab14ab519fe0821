"""Blocking TCP streams with TLS and per-purpose timeouts."""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any

from .._core._ops import FileRange, TimeoutKind

__all__ = ["SocketStream", "Timeouts", "connect_tcp"]


class Timeouts:
    """How long each kind of wait may take, in seconds (None: forever).

    ``connect``: establishing the connection; ``read``: any read that is
    not one of the following; ``head``: reading a message head once it has
    begun, for the whole head however it trickles in (cuts off slow-loris
    peers); ``idle``: waiting for the next
    request on a keep-alive connection; ``write``: each send.

    ``linger`` (servers only): when a server closes a connection whose
    client may still be sending (a request refused before its body was
    read, such as a 413), it first shuts down its sending side, then reads
    and discards what still comes for up to this long.  Closing at once
    would answer the client's next bytes with a reset, and a client still
    writing its body would see the reset instead of the reply.  0 closes
    at once.
    """

    __slots__ = ("by_kind", "connect", "linger", "write")

    def __init__(
        self,
        read: float | None = 60.0,
        *,
        connect: float | None = 30.0,
        write: float | None = 60.0,
        head: float | None = None,
        idle: float | None = None,
        linger: float = 2.0,
    ) -> None:
        self.connect = connect
        self.write = write
        self.linger = linger
        self.by_kind: Mapping[str, float | None] = {
            TimeoutKind.READ: read,
            TimeoutKind.HEAD: read if head is None else head,
            TimeoutKind.IDLE: read if idle is None else idle,
        }


def peer_certificate_of(tls: Any) -> dict[str, Any] | None:
    """The certificate the peer of the TLS connection *tls* presented, or None.

    As :meth:`ssl.SSLSocket.getpeercert` gives it: only a certificate that
    was verified (a server whose TLS context asks for client certificates
    with ``verify_mode``); None without TLS (*tls* None) or without one.
    *tls* is whatever the adapter's stream has: an ``ssl.SSLSocket``, an
    ``ssl.SSLObject`` or a ``trio.SSLStream``.
    """
    if tls is None:
        return None
    try:
        certificate: dict[str, Any] | None = tls.getpeercert() or None
    except (OSError, ValueError):
        return None
    return certificate


#: RFC 4514 short names of the attributes a certificate subject usually has
_RDN_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def _rfc4514_value(value: str) -> str:
    escaped = "".join("\\" + c if c in ',+"\\<>;' else c for c in value)
    if escaped[:1] in ("#", " "):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def rfc4514_name(subject: Any) -> str:
    """A certificate subject (``getpeercert()["subject"]``) as an RFC 4514 string.

    RFC 4514 lists the relative distinguished names last one first;
    attributes without a short name keep the name Python's ssl module gives.
    """
    return ",".join(
        "+".join(f"{_RDN_NAMES.get(key, key)}={_rfc4514_value(value)}" for key, value in rdn)
        for rdn in reversed(subject)
    )


def client_certificate(tls: Any) -> tuple[str | None, str | None]:
    """(PEM, RFC 4514 subject) of the verified certificate the peer of *tls*
    presented; (None, None) without one.  For the ASGI ``tls`` extension
    and the WSGI ``SSL_CLIENT_*`` variables."""
    certificate = peer_certificate_of(tls)
    if certificate is None:
        return None, None
    der = tls.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der) if der else None
    return pem, rfc4514_name(certificate.get("subject", ()))


def readable_now(sock: socket.socket | Any) -> bool:
    """Whether reading *sock* would return at once (bytes, or EOF) without waiting.

    A draining server still serves a request whose bytes have arrived
    before it came to read them.  *sock* is a socket (``ssl.SSLSocket``
    included) or anything with ``fileno()``.
    """
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(ready)


def unmapped(host: str) -> str:
    """*host* with an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) as plain IPv4.

    A dual-stack listener sees IPv4 clients that way; logs and handlers
    should see the address the client used.
    """
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    return host


class SocketStream:
    """A connected socket, optionally TLS-wrapped, with timeouts applied."""

    def __init__(
        self,
        sock: socket.socket,
        timeouts: Timeouts | None = None,
        tls_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.socket = sock
        self.timeouts = timeouts or Timeouts()
        self.tls_context = tls_context
        self.server_hostname = server_hostname
        self._timeout: float | bool | None = False  # what the socket has now
        # When the current message head began (monotonic seconds), or None:
        # the head timeout bounds the whole head, not each read of it.
        self._head_started: float | None = None

    def _set_timeout(self, value: float | None) -> None:
        if value != self._timeout:
            self.socket.settimeout(value)
            self._timeout = value

    def send_all(self, data: bytes | list[bytes]) -> None:
        self._set_timeout(self.timeouts.write)
        if isinstance(data, list) and any(isinstance(piece, FileRange) for piece in data):
            for piece in data:
                if isinstance(piece, FileRange):
                    # os.sendfile on a plain socket; reads and sends on TLS
                    sent = self.socket.sendfile(piece.file, piece.offset, piece.count)
                    if sent != piece.count:  # the file shrank under us
                        raise OSError(f"file ended after {sent} of {piece.count} bytes")
                elif piece:
                    self.socket.sendall(piece)
            return
        if isinstance(data, list):
            if isinstance(self.socket, ssl.SSLSocket) or len(data) == 1:
                for piece in data:
                    self.socket.sendall(piece)
                return
            data = b"".join(data)
        self.socket.sendall(data)

    def receive_some(self, max_bytes: int = 65536, timeout: str = TimeoutKind.READ) -> bytes:
        limit = self.timeouts.by_kind.get(timeout)
        if timeout == TimeoutKind.HEAD and limit is not None:
            now = time.monotonic()
            if self._head_started is None:
                self._head_started = now
            limit -= now - self._head_started
            if limit <= 0:
                raise TimeoutError("message head not received in time")
        else:
            self._head_started = None
        self._set_timeout(limit)
        try:
            return self.socket.recv(max_bytes)
        except ConnectionResetError:
            return b""  # the peer is gone: to a protocol that is end of input

    def start_tls(self, server_hostname: str | None = None, server_side: bool = False) -> None:
        if self.tls_context is None:
            raise RuntimeError("this stream has no TLS context to start TLS with")
        self._set_timeout(self.timeouts.connect)
        self.socket = self.tls_context.wrap_socket(
            self.socket,
            server_side=server_side,
            server_hostname=None if server_side else (server_hostname or self.server_hostname),
        )

    @property
    def tls_object(self) -> ssl.SSLSocket | None:
        """The TLS connection (for ``getpeercert``, ``version``...), or None on plain TCP."""
        sock = self.socket
        return sock if isinstance(sock, ssl.SSLSocket) else None

    def close(self) -> None:
        sock = self.socket
        try:
            if isinstance(sock, ssl.SSLSocket):
                # Say goodbye with a TLS close_notify, without waiting for
                # the peer's: non-blocking, the second half of the shutdown
                # gives up at once.
                sock.settimeout(0)
                sock.unwrap()
            else:
                sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):
            pass
        sock.close()

    @property
    def peer(self) -> tuple[str, int]:
        try:
            host, port = self.socket.getpeername()[:2]
            return unmapped(str(host)), int(port)
        except OSError:
            return ("", 0)


def connect_tcp(
    host: str,
    port: int,
    *,
    timeouts: Timeouts | None = None,
    tls_context: ssl.SSLContext | None = None,
    tls: bool = False,
    server_hostname: str | None = None,
) -> SocketStream:
    """Connect to *host*:*port* (IPv4 or IPv6), optionally starting TLS at once."""
    timeouts = timeouts or Timeouts()
    sock = socket.create_connection((host, port), timeout=timeouts.connect)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = SocketStream(sock, timeouts, tls_context, server_hostname or host)
    if tls:
        stream.start_tls()
    return stream
