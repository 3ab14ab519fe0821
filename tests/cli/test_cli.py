"""The ``protomata`` command, run as a subprocess (``python -m protomata``)."""

from __future__ import annotations

import io
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from protomata.cli import build_parser, main
from protomata.cli._get import Progress

PAYLOAD = bytes(range(256)) * 64 + b"\r\n\x00end"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def protomata(
    *args: str, cwd: Path | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "protomata", *args],
        capture_output=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


class Server:
    """A ``protomata serve http`` subprocess, started and ready."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "protomata", "serve", "http", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            self.banner = lines.get(timeout=15).decode().rstrip("\n")
        except queue.Empty:
            self.stop()
            raise AssertionError("the server printed no URL within 15 s") from None
        if not self.banner:
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"the server did not start: {err.decode()}")
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self, signum: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        return self.proc.returncode


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "data.bin").write_bytes(PAYLOAD)
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"<h1>index</h1>")
    return root


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[Server]:
    srv = Server("--root", str(site), "--no-access-log")
    yield srv
    assert srv.stop() == 0


# -- help and usage errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["--help"], ["serve", "--help"], ["serve", "http", "--help"], ["get", "--help"]]
)
def test_help(args: list[str]) -> None:
    result = protomata(*args)
    assert result.returncode == 0
    assert result.stdout.startswith(b"usage: protomata")


def test_version() -> None:
    result = protomata("--version")
    assert result.returncode == 0 and result.stdout.startswith(b"protomata ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "required"),
        (["bogus"], "invalid choice"),
        (["serve"], "required"),
        (["serve", "http", "--port", "abc"], "not a port number"),
        (["serve", "http", "--port", "70000"], "port out of range"),
        (["serve", "http", "--workers", "0"], "must be at least 1"),
        (["serve", "http", "--root", ".", "--app", "m:a"], "not allowed with"),
        (["serve", "http", "--interface", "wsgi"], "--interface applies to --app only"),
        (["serve", "http", "--root", "/nonexistent/dir"], "is not a directory"),
        (["serve", "http", "--app", "nocolon"], "MODULE:ATTR"),
        (["serve", "http", "--app", "no_such_module_xyz:app"], "cannot import"),
        (["serve", "http", "--app", "os:no_such_attr"], "has no attribute"),
        (["serve", "http", "--app", "os:sep"], "not callable"),
        (["serve", "http", "--app", "os:getcwd", "--interface", "asgi", "--io", "sync"], "asgi"),
        (["serve", "http", "--app", "os:getcwd", "--interface", "wsgi", "--io", "asyncio"], "wsgi"),
        (["serve", "http", "--workers", "2", "--port", "0"], "fixed --port"),
        (["serve", "http", "--tls-cert", "x.pem"], "--tls-cert and --tls-key"),
        (["get"], "required"),
        (["get", "ftp://example.com/"], "not an http"),
        (["get", "http://127.0.0.1/", "--io", "nope"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = protomata(*args)
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_main_in_process_usage() -> None:
    assert main(["get", "ftp://x/"]) == 2
    assert build_parser().parse_args(["get", "http://x/"]).io == "sync"


# -- serve and get --------------------------------------------------------------------------------


def test_banner(server: Server, site: Path) -> None:
    assert server.banner == f"Serving HTTP on {server.url} (root: {site})"


def test_get_to_stdout_is_binary_safe(server: Server) -> None:
    result = protomata("get", server.url + "data.bin")
    assert result.returncode == 0
    assert result.stdout == PAYLOAD
    assert result.stderr == b""  # not a TTY: no progress bar, nothing else


def test_get_follows_redirects(server: Server) -> None:
    result = protomata("get", server.url + "sub")
    assert (result.returncode, result.stdout) == (0, b"<h1>index</h1>")


def test_get_to_file(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "copy.bin"
    result = protomata("get", "-o", str(out), server.url + "data.bin")
    assert result.returncode == 0
    assert (result.stdout, result.stderr) == (b"", b"")
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "copy.bin.part").exists()


def test_get_verbose(server: Server) -> None:
    result = protomata("get", "-v", server.url + "data.bin")
    assert result.returncode == 0 and result.stdout == PAYLOAD
    err = result.stderr.decode()
    assert err.startswith("HTTP/1.1 200 OK\n")
    assert f"Content-Length: {len(PAYLOAD)}\n" in err


def test_get_http_error_exits_1_without_writing(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "never.txt"
    result = protomata("get", "-o", str(out), server.url + "missing.txt")
    assert result.returncode == 1
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert lines == [f"protomata: error: {server.url}missing.txt: HTTP 404 Not Found"]
    assert not out.exists() and not (tmp_path / "never.txt.part").exists()


def test_get_progress_always(server: Server) -> None:
    result = protomata("get", "--progress", "always", server.url + "data.bin")
    assert result.returncode == 0 and result.stdout == PAYLOAD
    assert b"100%" in result.stderr


def test_get_with_asyncio_client(server: Server) -> None:
    pytest.importorskip("protomata.asyncio")
    result = protomata("get", "--io", "asyncio", server.url + "data.bin")
    assert (result.returncode, result.stdout) == (0, PAYLOAD)


def test_get_connection_refused_exits_1() -> None:
    port = free_port()
    result = protomata("get", f"http://127.0.0.1:{port}/")
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("protomata: error: ")
    assert "refused" in lines[0].lower()


def test_serve_port_in_use_exits_1(server: Server) -> None:
    result = protomata("serve", "http", "--port", str(server.port))
    assert result.returncode == 1
    assert result.stderr.decode().startswith("protomata: error: cannot listen on")


def test_serve_sigterm_exits_0(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    srv = Server("--root", str(tmp_path))
    assert protomata("get", srv.url + "f.txt").stdout == b"x"
    assert srv.stop(signal.SIGTERM) == 0


WSGI_APP = """
def app(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi:" + environ["PATH_INFO"].encode("latin-1") + b":" + body]

async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rpartition(".")[2]
            await send({"type": message["type"] + ".complete"})
            if kind == "shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"asgi:" + scope["path"].encode()})
"""


def test_serve_wsgi_app(tmp_path: Path) -> None:
    (tmp_path / "cli_test_app.py").write_text(WSGI_APP)
    srv = Server("--app", "cli_test_app:app", cwd=tmp_path)
    try:
        assert srv.banner.endswith("(app: cli_test_app:app, wsgi)")
        assert protomata("get", srv.url + "x/y").stdout == b"wsgi:/x/y:"
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("io_name", ["asyncio", "trio"])
def test_serve_asgi_app_guessed(io_name: str, tmp_path: Path) -> None:
    adapter = pytest.importorskip(f"protomata.{io_name}")
    if not hasattr(adapter, "ASGIServer"):
        pytest.skip(f"no {io_name} ASGI server yet")
    (tmp_path / "cli_test_app.py").write_text(WSGI_APP)
    # an ASGI app is a coroutine function: guessed as ASGI, so --io sync is refused
    refused = protomata("serve", "http", "--app", "cli_test_app:asgi", "--io", "sync", cwd=tmp_path)
    assert refused.returncode == 2
    srv = Server("--app", "cli_test_app:asgi", "--io", io_name, "--lifespan", "off", cwd=tmp_path)
    try:
        assert srv.banner.endswith("(app: cli_test_app:asgi, asgi)")
        assert protomata("get", "--timeout", "5", srv.url + "p").stdout == b"asgi:/p"
    finally:
        assert srv.stop() == 0


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_serve_workers(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"shared")
    srv = Server("--root", str(tmp_path), "--workers", "2", "--no-access-log")
    try:
        assert srv.banner.endswith("[2 workers]")
        for _ in range(4):
            assert protomata("get", srv.url + "f.txt").stdout == b"shared"
    finally:
        assert srv.stop(signal.SIGTERM) == 0


def test_serve_tls(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "both.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    (tmp_path / "f.txt").write_bytes(b"secure")
    srv = Server(
        "--root",
        str(tmp_path),
        "--tls-cert",
        str(tmp_path / "both.pem"),
        "--tls-key",
        str(tmp_path / "key.pem"),
        "--no-access-log",
    )
    try:
        url = f"https://127.0.0.1:{srv.port}/f.txt"
        assert srv.banner.startswith(f"Serving HTTP on https://127.0.0.1:{srv.port}/")
        refused = protomata("get", url)  # our CA is not trusted
        assert refused.returncode == 1 and b"protomata: error:" in refused.stderr
        insecure = protomata("get", "--insecure", url)
        assert (insecure.returncode, insecure.stdout) == (0, b"secure")
    finally:
        assert srv.stop() == 0


# -- the progress bar ---------------------------------------------------------------------


def test_progress_bar_waits_then_draws() -> None:
    out = io.StringIO()
    bar = Progress(out, 1000, delay=3600)
    bar.advance(500)
    bar.finish()
    assert out.getvalue() == ""  # a quick download draws nothing
    bar = Progress(out, 1000, delay=0)
    bar.advance(500)
    bar.finish()
    assert "50%" in out.getvalue() and out.getvalue().endswith("\n")
    unknown = Progress(io.StringIO(), None, delay=0)
    unknown.advance(2048)
    assert "2.0 KiB" in unknown.line(1.0)


def test_module_entry_point_runs_main() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys; sys.argv=['protomata', '--version']; "
            "runpy.run_module('protomata', run_name='__main__')",
        ],
        capture_output=True,
        timeout=20,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 0 and b"protomata" in result.stdout


@pytest.mark.parametrize("io_name", ["asyncio", "trio"])
def test_serve_static_with_async_adapters(io_name: str, site: Path) -> None:
    adapter = pytest.importorskip(f"protomata.{io_name}")
    if not hasattr(adapter, "static_handler"):
        result = protomata("serve", "http", "--io", io_name, "--root", str(site))
        assert result.returncode == 2
        assert b"cannot serve static files" in result.stderr
        return
    srv = Server("--io", io_name, "--root", str(site), "--no-access-log")
    try:
        assert srv.banner == f"Serving HTTP on {srv.url} (root: {site})"
        result = protomata("get", "--io", io_name, srv.url + "data.bin")
        assert (result.returncode, result.stdout) == (0, PAYLOAD)
        missing = protomata("get", "--io", io_name, srv.url + "nope")
        assert missing.returncode == 1 and missing.stdout == b""
    finally:
        assert srv.stop() == 0


def test_serve_tls_with_client_certificates(tmp_path: Path) -> None:
    """serve http --tls-client-ca requires client certificates; get --cacert/--cert present one."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    server_cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    client_cert = ca.issue_cert("client.example")
    client_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client_cert.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "f.txt").write_bytes(b"mutual")
    srv = Server(
        "--root", str(tmp_path), "--no-access-log",
        "--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key"),
        "--tls-client-ca", str(tmp_path / "ca.pem"),
    )  # fmt: skip
    try:
        url = f"https://127.0.0.1:{srv.port}/f.txt"
        ca_file = str(tmp_path / "ca.pem")
        client = ["--cert", str(tmp_path / "client.pem"), "--key", str(tmp_path / "client.key")]
        for io_name in ("sync", "asyncio", "trio"):
            done = protomata("get", "--io", io_name, "--cacert", ca_file, *client, url)
            assert (done.returncode, done.stdout) == (0, b"mutual"), done.stderr
        without = protomata("get", "--cacert", ca_file, url)
        assert without.returncode == 1 and b"protomata: error:" in without.stderr
        assert without.stdout == b""
        assert protomata("get", "--key", "k.pem", url).returncode == 2
        assert protomata("get", "--insecure", "--cacert", ca_file, url).returncode == 2
    finally:
        assert srv.stop() == 0
    bad = protomata("serve", "http", "--tls-client-ca", str(tmp_path / "ca.pem"))
    assert bad.returncode == 2 and b"--tls-client-ca needs --tls-cert" in bad.stderr
