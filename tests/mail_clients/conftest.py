"""Fixtures for the mail client tests: TLS contexts from a throwaway CA."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from pathlib import Path

import pytest


class TLS:
    """A server context, a client context trusting it and the CA file."""

    def __init__(self, server: ssl.SSLContext, client: ssl.SSLContext, ca_file: Path) -> None:
        self.server = server
        self.client = client
        self.ca_file = ca_file


@pytest.fixture
def tls(tmp_path: Path) -> TLS:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TLS(server_ctx, client_ctx, ca_file)


class TLSProxy:
    """Terminates TLS on ``port`` and relays each connection to a plaintext *backend* port.

    Stands in for an implicit-TLS (SMTPS, POP3S) server in front of our
    plaintext servers.
    """

    def __init__(self, context: ssl.SSLContext, backend: int) -> None:
        self.context = context
        self.backend = backend
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(5.0)
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        backend = socket.create_connection(("127.0.0.1", self.backend), timeout=5.0)
        _relay(client, backend)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.listener.close()


def _relay(client: ssl.SSLSocket, backend: socket.socket) -> None:
    """Copy bytes both ways until either side closes, in one thread: an
    SSLSocket must not be read and written from two threads at once."""
    try:
        while True:
            # Decrypted bytes may wait inside the SSL object, unseen by select().
            readable = (
                [client] if client.pending() else select.select([client, backend], [], [], 5.0)[0]
            )
            if not readable:
                return  # idle for too long
            for source, sink in ((client, backend), (backend, client)):
                if source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (client, backend):
            with contextlib.suppress(OSError):
                sock.close()
