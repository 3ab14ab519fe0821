"""protomata's servers and clients against real peers on loopback.

curl and the standard library's clients against every adapter's server;
every adapter's client against ``http.server.ThreadingHTTPServer``; TLS
with a throw-away trustme CA in both directions.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._harness import ADAPTERS, HOST, STREAM_CHUNKS, TIMEOUT, Call, fetch, http_error, run_server

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "-sS", "--max-time", str(TIMEOUT), *args],
        capture_output=True,
        timeout=TIMEOUT + 5,
        check=False,
    )


@pytest.fixture(params=ADAPTERS)
def server_adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ADAPTERS)
def client_adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- curl against every server ------------------------------------------------


@needs_curl
def test_curl_keep_alive_two_urls(server_adapter: str) -> None:
    with run_server(server_adapter) as server:
        done = curl("-v", server.url + "hello", server.url + "peer")
    assert done.returncode == 0, done.stderr
    assert b"Re-using existing connection" in done.stderr
    assert done.stdout.startswith(b"hello127.0.0.1:")
    assert len(set(server.recorder.peers)) == 1


@needs_curl
def test_curl_post_data_binary(server_adapter: str, tmp_path: Path) -> None:
    body = bytes(range(256)) * 400
    (tmp_path / "body").write_bytes(body)
    with run_server(server_adapter) as server:
        done = curl("--data-binary", f"@{tmp_path / 'body'}", "-D", "-", server.url + "echo")
    assert done.returncode == 0, done.stderr
    head, _, received = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert received == body
    assert server.recorder.bodies == [body]


@needs_curl
def test_curl_chunked_upload(server_adapter: str, tmp_path: Path) -> None:
    body = b"0123456789" * 30000
    (tmp_path / "body").write_bytes(body)
    with run_server(server_adapter) as server:
        done = curl(
            "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{tmp_path / 'body'}",
            "-D", "-", server.url + "echo",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    head, _, received = done.stdout.partition(b"\r\n\r\n")
    assert b"x-request-te: chunked" in head.lower()
    assert received == body


@needs_curl
def test_curl_http10(server_adapter: str) -> None:
    with run_server(server_adapter) as server:
        plain = curl("--http1.0", "-v", server.url + "hello", server.url + "hello")
        streamed = curl("--http1.0", server.url + "stream")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == b"hellohello"
    assert b"< HTTP/1.1 200" in plain.stderr  # we answer with our highest version
    assert b"< connection: close" in plain.stderr.lower()  # no keep-alive for HTTP/1.0
    assert len(set(server.recorder.peers[:2])) == 2  # so curl had to reconnect
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == b"".join(STREAM_CHUNKS)  # close-delimited, not chunked


@needs_curl
def test_curl_head(server_adapter: str) -> None:
    with run_server(server_adapter) as server:
        done = curl("-I", server.url + "hello")
    assert done.returncode == 0, done.stderr
    head = done.stdout.lower()
    assert head.startswith(b"http/1.1 200 ")
    assert b"content-length: 5\r\n" in head
    assert head.endswith(b"\r\n\r\n")  # headers only


@needs_curl
def test_curl_expect_100_continue(server_adapter: str, tmp_path: Path) -> None:
    body = b"x" * (3 * 1024 * 1024)
    (tmp_path / "body").write_bytes(body)
    with run_server(server_adapter) as server:
        started = time.monotonic()
        done = curl(
            "-v", "-H", "Expect: 100-continue", "--expect100-timeout", "5",
            "--data-binary", f"@{tmp_path / 'body'}", server.url + "echo",
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert b"< HTTP/1.1 100" in done.stderr  # the interim response came before the body
    assert done.stdout == body
    assert elapsed < 4  # curl did not have to give up waiting for the 100


@needs_curl
def test_curl_compressed_gets_identity(server_adapter: str) -> None:
    with run_server(server_adapter) as server:
        done = curl("--compressed", "-D", "-", server.url + "hello")
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert b"content-encoding" not in head.lower()
    assert body == b"hello"


# --- the standard library's clients against every server ------------------------


def test_stdlib_http_client_keep_alive(server_adapter: str) -> None:
    with run_server(server_adapter) as server:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
        try:
            bodies = []
            for method, path, body in [
                ("GET", "/hello", None),
                ("POST", "/echo", b"payload"),
                ("HEAD", "/hello", None),
                ("GET", "/stream", None),
                ("GET", "/missing", None),
            ]:
                conn.request(method, path, body=body)
                response = conn.getresponse()
                bodies.append((response.status, response.read()))
        finally:
            conn.close()
    assert bodies == [
        (200, b"hello"),
        (200, b"payload"),
        (200, b""),
        (200, b"".join(STREAM_CHUNKS)),
        (404, b"not found"),
    ]
    assert len(set(server.recorder.peers)) == 1


def test_stdlib_urllib(server_adapter: str) -> None:
    with run_server(server_adapter) as server:
        with urllib.request.urlopen(server.url + "hello", timeout=TIMEOUT) as response:
            assert response.status == 200
            assert response.read() == b"hello"
        post = urllib.request.Request(server.url + "echo", data=b"a=1&b=2", method="POST")
        with urllib.request.urlopen(post, timeout=TIMEOUT) as response:
            assert response.read() == b"a=1&b=2"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.url + "error", timeout=TIMEOUT)
        assert info.value.code == 500
        info.value.close()


# --- every client against the standard library's server -------------------------


class _StdlibHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/old":  # HTTP/1.0 style: no length, close-delimited
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"close-delimited body")
            self.close_connection = True
            return
        self._reply(f"{self.client_address[1]}".encode())

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while (size := int(self.rfile.readline().split(b";")[0], 16)) != 0:
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
        else:
            data = self.rfile.read(int(self.headers["Content-Length"]))
        self._reply(data, {"X-TE": self.headers.get("Transfer-Encoding", "-")})


@pytest.fixture
def stdlib_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer((HOST, 0), _StdlibHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def test_client_against_stdlib_server(client_adapter: str, stdlib_server: str) -> None:
    calls = [
        Call("GET", stdlib_server + "a"),
        Call("GET", stdlib_server + "b"),
        Call("POST", stdlib_server + "post", content=b"bytes body"),
        Call("POST", stdlib_server + "post", content=[b"chunk one ", b"chunk two"]),
        Call("GET", stdlib_server + "old"),
    ]
    a, b, post, chunked, old = fetch(client_adapter, calls)
    assert a.status == b.status == 200
    assert a.body == b.body  # same client port: the connection was reused
    assert post.body == b"bytes body"
    assert post.headers[b"x-te"] == b"-"
    assert chunked.body == b"chunk one chunk two"
    assert chunked.headers[b"x-te"] == b"chunked"
    assert old.http_version == b"1.0"
    assert old.body == b"close-delimited body"


# --- TLS ------------------------------------------------------------------------


@needs_curl
def test_curl_against_tls_server(
    server_adapter: str, tls_server_context: ssl.SSLContext, tls_ca_file: str
) -> None:
    with run_server(server_adapter, tls_context=tls_server_context) as server:
        assert server.url.startswith("https://")
        done = curl("--cacert", tls_ca_file, server.url + "hello", server.url + "peer")
        refused = curl(server.url + "hello")  # curl's default trust store lacks our CA
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"hello127.0.0.1:")
    assert refused.returncode in (60, 77)  # certificate problem (77: no CA bundle at all)
    assert len(set(server.recorder.peers)) == 1


@contextlib.contextmanager
def _tls_stdlib_server(context: ssl.SSLContext) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer((HOST, 0), _StdlibHandler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def test_client_verifies_tls(
    client_adapter: str, tls_ca: Any, tls_server_context: ssl.SSLContext,
    tls_client_context: ssl.SSLContext,
) -> None:  # fmt: skip
    wrong_name = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("other.example").configure_cert(wrong_name)
    error = http_error(client_adapter)
    with _tls_stdlib_server(tls_server_context) as port:
        url = f"https://{HOST}:{port}/x"
        ok, again = fetch(
            client_adapter, [Call("GET", url), Call("GET", url)], verify=tls_client_context
        )
        assert ok.status == 200
        assert ok.body == again.body  # keep-alive over TLS
        with pytest.raises(error):  # the default trust store does not know our CA
            fetch(client_adapter, [Call("GET", url)])
        unverified = fetch(client_adapter, [Call("GET", url)], verify=False)
        assert unverified[0].status == 200  # the explicit opt-out
    # A trusted CA, but the certificate names another host.
    with _tls_stdlib_server(wrong_name) as port, pytest.raises(error):
        fetch(client_adapter, [Call("GET", f"https://{HOST}:{port}/x")], verify=tls_client_context)


# --- TLS client certificates ----------------------------------------------------


def _alt_names(certificate: Any) -> list[str]:
    return [value for kind, value in certificate.get("subjectAltName", ()) if kind == "DNS"]


@pytest.fixture(scope="module")
def mutual_tls(tls_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A server context that requires client certificates from our CA, and clients."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    tls_ca.configure_trust(server)
    server.verify_mode = ssl.CERT_REQUIRED
    with_cert = ssl.create_default_context()
    tls_ca.configure_trust(with_cert)
    leaf = tls_ca.issue_cert("client.example")
    leaf.configure_cert(with_cert)
    without_cert = ssl.create_default_context()
    tls_ca.configure_trust(without_cert)
    folder = tmp_path_factory.mktemp("mtls")
    pem = folder / "client.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca = folder / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca))
    return {
        "server": server, "with_cert": with_cert, "without_cert": without_cert,
        "client_pem": str(pem), "ca_pem": str(ca),
        "client_cert_pem": leaf.cert_chain_pems[0].bytes().decode(),
    }  # fmt: skip


def test_client_certificates(
    server_adapter: str, client_adapter: str, mutual_tls: dict[str, Any]
) -> None:
    """Each client presents a certificate to each server that requires one; the
    handler sees it; a client without one is refused and the server goes on."""
    with run_server(server_adapter, tls_context=mutual_tls["server"]) as server:
        url = server.url + "hello"
        ok = fetch(client_adapter, [Call("GET", url)], verify=mutual_tls["with_cert"])
        assert ok[0].status == 200 and ok[0].body == b"hello"
        with pytest.raises(http_error(client_adapter)):
            fetch(client_adapter, [Call("GET", url)], verify=mutual_tls["without_cert"])
        again = fetch(client_adapter, [Call("GET", url)], verify=mutual_tls["with_cert"])
        assert again[0].status == 200
    certificates = server.recorder.certificates
    assert len(certificates) == 2  # the refused client never got to send a request
    assert all(_alt_names(c) == ["client.example"] for c in certificates)


def test_no_client_certificate_without_tls_or_without_asking(
    server_adapter: str, tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    with run_server(server_adapter) as server:
        assert fetch(server_adapter, [Call("GET", server.url + "hello")])[0].status == 200
    with run_server(server_adapter, tls_context=tls_server_context) as tls_server:
        done = fetch(
            server_adapter, [Call("GET", tls_server.url + "hello")], verify=tls_client_context
        )
        assert done[0].status == 200
    assert server.recorder.certificates == [None]
    assert tls_server.recorder.certificates == [None]


@needs_curl
def test_curl_with_a_client_certificate(server_adapter: str, mutual_tls: dict[str, Any]) -> None:
    with run_server(server_adapter, tls_context=mutual_tls["server"]) as server:
        url = server.url + "hello"
        done = curl("--cacert", mutual_tls["ca_pem"], "--cert", mutual_tls["client_pem"], url)
        refused = curl("--cacert", mutual_tls["ca_pem"], url)
        done_again = curl("--cacert", mutual_tls["ca_pem"], "--cert", mutual_tls["client_pem"], url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"hello" and done_again.stdout == b"hello"
    assert refused.returncode != 0 and refused.stdout == b""
    assert [_alt_names(c) for c in server.recorder.certificates] == [["client.example"]] * 2


async def _tls_scope_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that answers with its scope's extensions, as JSON."""
    if scope["type"] != "http":
        return
    body = json.dumps(scope.get("extensions", {})).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("server_adapter", ["asyncio", "trio"])
def test_asgi_tls_extension(
    server_adapter: str, mutual_tls: dict[str, Any], tls_server_context: ssl.SSLContext,
    tls_client_context: ssl.SSLContext,
) -> None:  # fmt: skip
    """ASGI apps see the client's certificate through the ``tls`` scope extension."""
    options = {"handler": _tls_scope_app, "server_class": "ASGIServer", "lifespan": "off"}
    with run_server(server_adapter, tls_context=mutual_tls["server"], **options) as server:
        (mutual,) = fetch(server_adapter, [Call("GET", server.url)], verify=mutual_tls["with_cert"])
    with run_server(server_adapter, tls_context=tls_server_context, **options) as server:
        (one_way,) = fetch(server_adapter, [Call("GET", server.url)], verify=tls_client_context)
    with run_server(server_adapter, **options) as server:
        (plain,) = fetch(server_adapter, [Call("GET", server.url)])
    tls = json.loads(mutual.body)["tls"]
    (pem,) = tls["client_cert_chain"]
    assert pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert ssl.PEM_cert_to_DER_cert(pem) == ssl.PEM_cert_to_DER_cert(mutual_tls["client_cert_pem"])
    assert tls["client_cert_name"].startswith("OU=Testing cert ")
    assert tls["client_cert_name"].endswith(",O=trustme v" + trustme_version())
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert (tls["server_cert"], tls["client_cert_error"], tls["cipher_suite"]) == (None, None, None)
    assert json.loads(one_way.body)["tls"]["client_cert_chain"] == []
    assert json.loads(one_way.body)["tls"]["client_cert_name"] is None
    assert json.loads(plain.body) == {}


def trustme_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("trustme")


def test_rfc4514_names() -> None:
    from protomata.sync._stream import rfc4514_name

    subject = (
        (("countryName", "NL"),),
        (("organizationName", "Example, Inc."),),
        (("commonName", "a+b"), ("userId", "#7")),
    )
    assert rfc4514_name(subject) == "CN=a\\+b+UID=\\#7,O=Example\\, Inc.,C=NL"
    assert rfc4514_name(((("commonName", " padded "),),)) == "CN=\\ padded\\ "
    assert rfc4514_name(((("title", 'say "hi"; <ok>'),),)) == 'title=say \\"hi\\"\\; \\<ok\\>'


def test_wsgi_environ_has_the_client_certificate(
    mutual_tls: dict[str, Any], tls_server_context: ssl.SSLContext,
    tls_client_context: ssl.SSLContext,
) -> None:  # fmt: skip
    """WSGI apps get HTTPS and mod_ssl's SSL_CLIENT_CERT / SSL_CLIENT_S_DN."""
    from protomata.sync._wsgi import wsgi_handler

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        keys = ("HTTPS", "SSL_CLIENT_CERT", "SSL_CLIENT_S_DN", "wsgi.url_scheme")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({k: environ.get(k) for k in keys}).encode()]

    handler = wsgi_handler(app)
    with run_server("sync", handler=handler, tls_context=mutual_tls["server"]) as server:
        (mutual,) = fetch("sync", [Call("GET", server.url)], verify=mutual_tls["with_cert"])
    with run_server("sync", handler=handler, tls_context=tls_server_context) as server:
        (one_way,) = fetch("sync", [Call("GET", server.url)], verify=tls_client_context)
    with run_server("sync", handler=handler) as server:
        (plain,) = fetch("sync", [Call("GET", server.url)])
    seen = json.loads(mutual.body)
    assert seen["HTTPS"] == "on" and seen["wsgi.url_scheme"] == "https"
    assert ssl.PEM_cert_to_DER_cert(seen["SSL_CLIENT_CERT"]) == ssl.PEM_cert_to_DER_cert(
        mutual_tls["client_cert_pem"]
    )
    assert seen["SSL_CLIENT_S_DN"].startswith("OU=Testing cert ")
    assert json.loads(one_way.body) == {
        "HTTPS": "on", "SSL_CLIENT_CERT": None, "SSL_CLIENT_S_DN": None, "wsgi.url_scheme": "https"
    }  # fmt: skip
    assert json.loads(plain.body)["HTTPS"] is None
