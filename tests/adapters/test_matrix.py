"""Every adapter's client against every adapter's server, over loopback.

The servers run in a background thread; the clients in the test thread.
A pair is collected only when both adapters import.
"""

from __future__ import annotations

import pytest

from ._harness import ADAPTERS, BIG, STREAM_CHUNKS, Call, fetch, run_server

PAIRS = [(server, client) for server in ADAPTERS for client in ADAPTERS]
pytestmark = pytest.mark.parametrize(
    ("server_adapter", "client_adapter"),
    PAIRS,
    ids=[f"{s}_server-{c}_client" for s, c in PAIRS],
)


def test_keep_alive_reuses_one_connection(server_adapter: str, client_adapter: str) -> None:
    with run_server(server_adapter) as server:
        url = server.url + "peer"
        results = fetch(client_adapter, [Call("GET", url) for _ in range(4)])
        assert [r.status for r in results] == [200] * 4
        assert len({r.body for r in results}) == 1  # the server saw one client port
        assert len(set(server.recorder.peers)) == 1
        assert len(server.recorder.peers) == 4
        assert all(r.http_version == b"1.1" for r in results)
        assert all(b"date" in r.headers for r in results)
    assert len(server.recorder.log) == 4
    assert '"GET /peer HTTP/1.1" 200' in server.recorder.log[0]


def test_post_bytes(server_adapter: str, client_adapter: str) -> None:
    body = bytes(range(256)) * 1000
    with run_server(server_adapter) as server:
        (result,) = fetch(client_adapter, [Call("POST", server.url + "echo", content=body)])
    assert result.status == 200
    assert result.body == body
    assert result.headers[b"x-method"] == b"POST"
    assert result.headers[b"x-request-te"] == b"-"
    assert server.recorder.bodies == [body]


def test_chunked_upload_from_iterator(server_adapter: str, client_adapter: str) -> None:
    pieces = [b"a" * 1000, b"b" * 70000, b"c"]
    with run_server(server_adapter) as server:
        (result,) = fetch(client_adapter, [Call("PUT", server.url + "echo", content=pieces)])
    assert result.status == 200
    assert result.headers[b"x-request-te"] == b"chunked"
    assert result.body == b"".join(pieces)
    assert server.recorder.bodies == [b"".join(pieces)]


def test_streamed_response(server_adapter: str, client_adapter: str) -> None:
    with run_server(server_adapter) as server:
        calls = [Call("GET", server.url + "stream", stream=True), Call("GET", server.url + "peer")]
        streamed, after = fetch(client_adapter, calls)
    assert streamed.status == 200
    assert streamed.headers.get(b"transfer-encoding") == b"chunked"
    assert streamed.body == b"".join(STREAM_CHUNKS)
    assert after.status == 200
    assert len(set(server.recorder.peers)) == 1  # chunked framing kept the connection


def test_head(server_adapter: str, client_adapter: str) -> None:
    with run_server(server_adapter) as server:
        head, get = fetch(
            client_adapter, [Call("HEAD", server.url + "hello"), Call("GET", server.url + "hello")]
        )
    assert head.status == 200
    assert head.body == b""
    assert head.headers[b"content-length"] == b"5"
    assert get.body == b"hello"
    assert len(set(server.recorder.peers)) == 1  # no body after HEAD, connection reused


def test_handler_404_and_500(server_adapter: str, client_adapter: str) -> None:
    with run_server(server_adapter) as server:
        calls = [
            Call("GET", server.url + "missing"),
            Call("GET", server.url + "error"),
            Call("GET", server.url + "hello"),
        ]
        missing, error, after = fetch(client_adapter, calls)
    assert missing.status == 404
    assert missing.body == b"not found"
    assert error.status == 500
    assert error.headers.get(b"connection") == b"close"
    assert after.status == 200  # the client opened a new connection after the 500
    assert len(set(server.recorder.peers)) == 2


def test_large_download_streamed(server_adapter: str, client_adapter: str) -> None:
    with run_server(server_adapter) as server:
        big, small = fetch(
            client_adapter,
            [Call("GET", server.url + "big", stream=True), Call("GET", server.url + "hello")],
        )
    assert big.status == 200
    assert big.headers[b"content-length"] == str(len(BIG)).encode()
    assert big.body == BIG
    assert big.pieces > 1  # it arrived piece by piece
    assert small.body == b"hello"
    assert len(set(server.recorder.peers)) == 1


def test_redirects(server_adapter: str, client_adapter: str) -> None:
    with run_server(server_adapter) as server:
        (plain,) = fetch(client_adapter, [Call("GET", server.url + "redirect")])
        followed, kept = fetch(
            client_adapter,
            [
                Call("GET", server.url + "redirect"),
                Call("POST", server.url + "redirect307", content=b"same body"),
            ],
            follow_redirects=True,
        )
    assert plain.status == 302
    assert plain.headers[b"location"] == b"/hello"
    assert followed.status == 200
    assert followed.body == b"hello"
    assert kept.status == 200
    assert kept.headers[b"x-method"] == b"POST"  # 307 keeps the method and the body
    assert kept.body == b"same body"


def _ipv6_loopback() -> bool:
    import socket

    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_listener_and_client(server_adapter: str, client_adapter: str) -> None:
    """Each server listens on [::1]; each client reaches it by a bracketed IPv6 URL."""
    with run_server(server_adapter, host="::1") as server:
        assert server.url.startswith("http://[::1]:")
        url = f"http://[::1]:{server.port}/peer"
        results = fetch(client_adapter, [Call("GET", url), Call("POST", url, content=b"x")])
        assert [r.status for r in results] == [200, 200]
        host, _, port = results[0].body.decode().rpartition(":")
        assert host == "::1" and int(port) > 0
        assert server.recorder.peers[0][0] == "::1"
    assert '"GET /peer HTTP/1.1" 200' in server.recorder.log[0]
    assert server.recorder.log[0].startswith("::1 ")


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_all_addresses_listener_takes_ipv4_and_ipv6(
    server_adapter: str, client_adapter: str
) -> None:
    """host=None listens on every IPv4 and IPv6 address; peers keep their own address form."""
    with run_server(server_adapter, host=None) as server:
        assert server.url.startswith("http://0.0.0.0:")
        urls = [f"http://127.0.0.1:{server.port}/peer", f"http://[::1]:{server.port}/peer"]
        results = fetch(client_adapter, [Call("GET", url) for url in urls])
        assert [r.status for r in results] == [200, 200]
        hosts = [r.body.decode().rpartition(":")[0] for r in results]
        assert hosts == ["127.0.0.1", "::1"]
        assert [peer[0] for peer in server.recorder.peers] == ["127.0.0.1", "::1"]
