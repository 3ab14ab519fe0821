"""TLS on the trio client and server, with certificates from trustme."""

from __future__ import annotations

import ssl

import pytest
import trio

trustme = pytest.importorskip("trustme")

from protomata.trio import (  # noqa: E402
    HTTPClient,
    HTTPError,
    HTTPServer,
    connect_tcp,
)

from ._util import echo, quiet, trio_test  # noqa: E402


def contexts(*names: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for *names*, client context trusting its CA)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


@trio_test
async def test_https_round_trip_with_verification() -> None:
    server_ctx, client_ctx = contexts("127.0.0.1", "localhost")
    server = HTTPServer(echo, port=0, access_log=quiet, tls_context=server_ctx)
    assert server.url.startswith("https://127.0.0.1:")
    async with server.running(), HTTPClient(verify=client_ctx) as client:
        for body in (b"a", b"b"):  # the second request reuses the TLS connection
            response = await client.request("POST", server.url + "t", content=body)
            assert await response.read() == b"POST /t\n" + body
        assert sum(len(v) for v in client._idle.values()) == 1


@trio_test
async def test_wrong_hostname_is_refused() -> None:
    server_ctx, client_ctx = contexts("other.example")
    async with (
        HTTPServer(echo, port=0, access_log=quiet, tls_context=server_ctx).running() as s,
        HTTPClient(verify=client_ctx) as client,
    ):
        with pytest.raises(HTTPError, match="certificate verification failed"):
            await client.get(s.url)


@trio_test
async def test_untrusted_certificate_is_refused_by_default() -> None:
    server_ctx, _ = contexts("127.0.0.1")
    async with HTTPServer(echo, port=0, access_log=quiet, tls_context=server_ctx).running() as s:
        async with HTTPClient() as client:  # verify=True: the system store
            with pytest.raises(HTTPError, match="certificate verification failed"):
                await client.get(s.url)
        async with HTTPClient(verify=False) as client:  # the explicit opt-out
            response = await client.get(s.url)
            assert response.status == 200


@trio_test
async def test_plain_client_on_tls_port_does_not_hurt_the_server() -> None:
    server_ctx, client_ctx = contexts("127.0.0.1")
    async with HTTPServer(echo, port=0, access_log=quiet, tls_context=server_ctx).running() as s:
        stream = await trio.open_tcp_stream("127.0.0.1", s.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await stream.aclose()
        async with HTTPClient(verify=client_ctx) as client:
            assert (await client.get(s.url)).status == 200


@trio_test
async def test_start_tls_on_a_stream() -> None:
    server_ctx, client_ctx = contexts("localhost")
    async with HTTPServer(echo, port=0, access_log=quiet, tls_context=server_ctx).running() as s:
        stream = await connect_tcp(
            "127.0.0.1", s.port, tls_context=client_ctx, server_hostname="localhost"
        )
        await stream.start_tls()
        assert isinstance(stream.stream, trio.SSLStream)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await stream.receive_some()
        assert data.startswith(b"HTTP/1.1 200 ")
        await stream.aclose()
