"""Fixtures shared by the whole test suite: TLS material and free ports."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    """A throw-away certificate authority (trustme), skipped when trustme is absent."""
    trustme = pytest.importorskip("trustme", reason="trustme (a test dependency) is not installed")
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server_context(tls_ca: Any) -> ssl.SSLContext:
    """A server-side TLS context with a certificate for 127.0.0.1 and localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def tls_client_context(tls_ca: Any) -> ssl.SSLContext:
    """A client-side TLS context that trusts :func:`tls_ca` (and nothing else)."""
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def tls_ca_file(tls_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The CA certificate as a PEM file, for external clients such as curl."""
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    yield str(path)


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
