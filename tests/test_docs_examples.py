"""The documentation's examples, run for real.

* docs/examples/http_server.py is started as a subprocess on an ephemeral
  loopback port and queried by docs/examples/http_client.py (as a program
  and as a module), by the standard library's http.client, and by raw
  sockets for the cases no well-behaved client produces.
* Every ``>>>`` snippet in docs/*.rst runs with the doctest module (no
  Sphinx needed); each file's snippets share one namespace, top to bottom.
* The adapter examples (docs/examples/sync_*.py, trio_*.py, asyncio_*.py,
  asgi_app.py, wsgi_app.py, static_files.py, udp_echo.py), which
  docs/adapters.rst and docs/cli.rst show, run against real servers on
  127.0.0.1 with ephemeral ports: servers as subprocesses (stopped with
  SIGTERM, which must end them cleanly), clients both as programs and as
  modules, TLS with a throw-away CA.
* The README's Python example runs, its "Try it" server starts, and its
  test command is the one .ci/run runs.
"""

from __future__ import annotations

import doctest
import http.client
import importlib.util
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
TIMEOUT = 30


# -- the example server, running -------------------------------------------------


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "http_server.py"), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"Serving on (http://127\.0\.0\.1:\d+/)\n", line)
        if match is None:
            proc.kill()
            _, err = proc.communicate(timeout=TIMEOUT)
            pytest.fail(f"server did not start: {line!r} {err!r}")
        yield match.group(1)
    finally:
        proc.kill()
        proc.communicate(timeout=TIMEOUT)


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    return host, int(port)


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raw_exchange(url: str, payload: bytes) -> bytes:
    """Send *payload*, half-close, and read until the server closes."""
    with socket.create_connection(_address(url), timeout=TIMEOUT) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_client_program_against_server(server_url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "http_client.py"), server_url + "docs/page?x=1&y=2"],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert result.stdout == b"Hello from protomata: GET /docs/page?x=1&y=2\n"
    assert result.stderr.decode().strip() == "HTTP status 200, 45 bytes"


def test_client_fetch_function(server_url: str) -> None:
    fetch = _load_example("http_client").fetch
    assert fetch(server_url) == (200, b"Hello from protomata: GET /\n")
    # A URL without a path asks for "/".
    assert fetch(server_url.rstrip("/")) == (200, b"Hello from protomata: GET /\n")


def test_stdlib_client_keep_alive(server_url: str) -> None:
    conn = http.client.HTTPConnection(*_address(server_url), timeout=TIMEOUT)
    try:
        for path in ("/one", "/two", "/three"):
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200
            assert response.reason == "OK"
            assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
            assert response.getheader("Content-Length") == str(len(body))
            assert body == f"Hello from protomata: GET {path}\n".encode()
            assert not response.will_close
        conn.request("POST", "/form", body=b"a=1&b=2", headers={"Connection": "close"})
        response = conn.getresponse()
        assert response.read() == b"Hello from protomata: POST /form\n"
        assert response.getheader("Connection") == "close"
        assert response.will_close
    finally:
        conn.close()


def test_stdlib_client_head_and_chunked_upload(server_url: str) -> None:
    conn = http.client.HTTPConnection(*_address(server_url), timeout=TIMEOUT)
    try:
        conn.request("HEAD", "/")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b""
        # A body of unknown length goes out chunked; the server reads it all.
        conn.request("PUT", "/upload", body=iter([b"abc", b"defg"]), encode_chunked=True)
        response = conn.getresponse()
        assert response.read() == b"Hello from protomata: PUT /upload\n"
    finally:
        conn.close()


def test_server_answers_100_continue(server_url: str) -> None:
    request = (
        b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(_address(server_url), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest.endswith(b"\r\n\r\nHello from protomata: POST /big\n")


def test_server_pipelined_and_http10(server_url: str) -> None:
    reply = _raw_exchange(
        server_url,
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
    )
    first, second = reply.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first.endswith(b"\r\n\r\nHello from protomata: GET /a\n")
    # HTTP/1.0 without keep-alive: the server says it will close, and does.
    assert b"Connection: close\r\n" in second
    assert second.endswith(b"\r\n\r\nHello from protomata: GET /b\n")


@pytest.mark.parametrize(
    ("payload", "status_line"),
    [
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", b"HTTP/1.1 505 HTTP Version Not Supported\r\n"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\n",
        ),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", b"HTTP/1.1 431 "),
    ],
    ids=["http2", "obs-fold", "cl-and-te", "too-many-fields"],
)
def test_server_answers_malformed_requests(
    server_url: str, payload: bytes, status_line: bytes
) -> None:
    reply = _raw_exchange(server_url, payload)
    assert reply.startswith(status_line)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"\r\nConnection: close" in head
    assert body.endswith(b"\n") and len(body) > 1


def test_server_survives_a_silent_client(server_url: str) -> None:
    with socket.create_connection(_address(server_url), timeout=TIMEOUT):
        pass
    fetch = _load_example("http_client").fetch
    assert fetch(server_url + "after")[0] == 200


# -- the adapter examples ----------------------------------------------------------

SERVING = re.compile(r"Serving .*?(https?://127\.0\.0\.1:\d+/)")


class RunningExample:
    """An example server running as a subprocess; ``url`` is where it listens."""

    def __init__(self, args: list[str], cwd: Path = EXAMPLES) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = SERVING.search(line)
        if match is None:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=TIMEOUT)
            pytest.fail(f"{args} did not start: {line!r} {err!r}")
        self.url = match.group(1)

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, as a service manager would; (exit status, rest of stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> tuple[int, str, str]:
        """Wait for the program to exit by itself; as :meth:`stop` returns."""
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=TIMEOUT)
            pytest.fail(f"did not stop on SIGTERM: {err!r}")
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=TIMEOUT)


@pytest.fixture
def start_example() -> Iterator[type[RunningExample]]:
    started: list[RunningExample] = []

    class Tracked(RunningExample):
        def __init__(self, args: list[str], cwd: Path = EXAMPLES) -> None:
            super().__init__(args, cwd)
            started.append(self)

    yield Tracked
    for example in started:
        example.kill()


#: what the client examples print for a server with the example routes
SESSION = [
    "GET / -> 200 Hello, 127.0.0.1:PORT",
    "GET / -> 200 Hello, 127.0.0.1:PORT",
    "POST /echo -> b'HELLO'",
    "POST /count -> 5050 bytes",
    "GET /numbers -> [b'1', b'2', b'3']",
]


def _check_session(lines: list[str]) -> None:
    """The client session's output; both GETs came from one (kept-alive) client port."""
    ports = {re.sub(r".*:", "", line) for line in lines[:2]}
    assert len(ports) == 1, f"the second GET did not reuse the connection: {lines[:2]}"
    generic = [re.sub(r"127\.0\.0\.1:\d+$", "127.0.0.1:PORT", line) for line in lines]
    assert generic == SESSION


def _run_program(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _stdlib_get(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(*_address("http://" + host), timeout=TIMEOUT)
    try:
        conn.request("GET", "/" + rest, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_sync_server_and_clients(start_example: type[RunningExample]) -> None:
    server = start_example(["sync_server.py", "--port", "0"])
    result = _run_program(["sync_client.py", server.url])
    assert result.returncode == 0, result.stderr
    _check_session(result.stdout.splitlines())
    # The same session from the module, on a client we own.
    sync_client = _load_example("sync_client")
    with sync_client.make_client() as client:
        _check_session(sync_client.session(server.url, client))
        # A response the handler wrote itself; and a 404.
        assert client.get(server.url + "countdown").text() == "3...\n2...\n1...\nliftoff\n"
        assert client.get(server.url + "nowhere").status == 404
    # max_body_size=1_000_000: 413 for a body announced larger.
    reply = _raw_exchange(
        server.url, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000001\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 413 ")
    # The asyncio client against the blocking server.
    import asyncio

    lines = asyncio.run(_load_example("asyncio_client").session(server.url))
    assert lines[2:] == ["POST /echo -> b'HELLO'", "GET /numbers -> [b'1', b'2', b'3']"]
    status, out, err = server.stop()
    assert (status, out) == (0, "Stopped\n"), err
    assert '"GET /countdown HTTP/1.1" 200 23' in err  # the access log


def test_sync_server_finishes_requests_in_flight_at_sigterm(
    start_example: type[RunningExample],
) -> None:
    server = start_example(["sync_server.py", "--port", "0"])
    with socket.create_connection(_address(server.url), timeout=TIMEOUT) as sock:
        # Half a request is in flight when the signal arrives ...
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
        sync_client = _load_example("sync_client")
        with sync_client.make_client() as client:  # (and the server is surely running)
            assert client.get(server.url).status == 200
        server.proc.send_signal(signal.SIGTERM)
        # ... and is still answered before the server exits.
        sock.sendall(b"cd")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"\r\n\r\nABCD")
    # The one SIGTERM is enough: a second one, sent while the program is
    # past serving and has its default handlers back, would kill it.
    assert server.wait()[0] == 0


def test_sync_tls_server_and_client(
    start_example: type[RunningExample], tls_ca: Any, tmp_path: Path
) -> None:
    cert = tls_ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    tls_ca.cert_pem.write_to_path(str(ca_file))
    server = start_example(
        ["sync_server.py", "--port", "0", "--cert", str(cert_file), "--key", str(key_file)]
    )
    assert server.url.startswith("https://")
    result = _run_program(["sync_client.py", server.url, "--cafile", str(ca_file)])
    assert result.returncode == 0, result.stderr
    _check_session(result.stdout.splitlines())
    # Verification is on by default: the system's CAs do not know ours.
    result = _run_program(["sync_client.py", server.url])
    assert result.returncode == 1
    assert result.stdout.startswith("failed: TLS certificate verification failed for 127.0.0.1:")
    assert "CERTIFICATE_VERIFY_FAILED" in result.stdout
    result = _run_program(["sync_client.py", server.url, "--insecure"])
    assert result.returncode == 0, result.stderr
    # The trio client, trusting the same CA.
    pytest.importorskip("trio")
    import trio

    lines = trio.run(_load_example("trio_client").run, server.url, str(ca_file))
    _check_session(lines)
    assert server.stop()[0] == 0


def test_trio_server_and_clients(start_example: type[RunningExample]) -> None:
    pytest.importorskip("trio")
    import trio

    server = start_example(["trio_server.py", "--port", "0"])
    result = _run_program(["trio_client.py", server.url])
    assert result.returncode == 0, result.stderr
    _check_session(result.stdout.splitlines())
    _check_session(trio.run(_load_example("trio_client").run, server.url))
    result = _run_program(["sync_client.py", server.url])
    _check_session(result.stdout.splitlines())
    status, _, body = _stdlib_get(server.url + "countdown")
    assert (status, body) == (200, b"3...\n2...\n1...\nliftoff\n")
    assert server.stop()[:2] == (0, "Stopped\n")


def test_trio_tls_server(tls_server_context: Any, tls_client_context: Any) -> None:
    pytest.importorskip("trio")
    import trio

    trio_server = _load_example("trio_server")
    trio_client = _load_example("trio_client")

    async def main() -> list[str]:
        server = trio_server.make_server("127.0.0.1", 0, tls_server_context)
        with trio.fail_after(TIMEOUT):
            async with server.running():
                assert server.url.startswith("https://")
                async with trio_client.HTTPClient(verify=tls_client_context) as client:
                    return list(await trio_client.session(server.url, client))

    _check_session(trio.run(main))


def test_asyncio_server_and_client(start_example: type[RunningExample]) -> None:
    server = start_example(["asyncio_server.py", "--port", "0"])
    result = _run_program(["asyncio_client.py", server.url])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"GET / -> 200 Hello, 127\.0\.0\.1", lines[0])
    assert lines[1:] == [lines[0], "POST /echo -> b'HELLO'", "GET /numbers -> [b'1', b'2', b'3']"]
    assert server.stop()[:2] == (0, "Stopped\n")


def _check_app(url: str, kind: str) -> None:
    status, _, body = _stdlib_get(url + "some/where")
    assert (status, body) == (200, f"Hello from {kind}: GET /some/where\n".encode())
    conn = http.client.HTTPConnection(*_address(url.rstrip("/")), timeout=TIMEOUT)
    try:
        conn.request("POST", "/echo", body=iter([b"ab", b"cd"]), encode_chunked=True)
        assert conn.getresponse().read() == b"abcd"
        conn.request("POST", "/echo", body=b"sized")
        assert conn.getresponse().read() == b"sized"
        conn.request("GET", "/stream")
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == b"one\ntwo\nthree\n"
    finally:
        conn.close()


@pytest.mark.parametrize("io", ["asyncio", "trio"])
def test_asgi_app(start_example: type[RunningExample], io: str) -> None:
    if io == "trio":
        pytest.importorskip("trio")
    server = start_example(["asgi_app.py", "--io", io, "--port", "0"])
    _check_app(server.url, "ASGI")  # "from ASGI": the lifespan startup ran
    assert server.stop()[0] == 0


@pytest.mark.parametrize("io", ["asyncio", "trio"])
def test_asgi_app_with_the_command(start_example: type[RunningExample], io: str) -> None:
    if io == "trio":
        pytest.importorskip("trio")
    args = ["-m", "protomata", "serve", "http", "--app", "asgi_app:app", "--port", "0"]
    server = start_example([*args, "--io", io, "--lifespan", "on", "--no-access-log"])
    _check_app(server.url, "ASGI")
    status, _, err = server.stop()
    assert (status, err) == (0, "")


def test_wsgi_app(start_example: type[RunningExample]) -> None:
    server = start_example(["wsgi_app.py", "--port", "0"])
    _check_app(server.url, "WSGI")
    assert server.stop()[0] == 0
    server = start_example(
        ["-m", "protomata", "serve", "http", "--app", "wsgi_app:app", "--port", "0"]
    )
    _check_app(server.url, "WSGI")
    assert server.stop()[0] == 0


@pytest.mark.parametrize("io", ["sync", "trio"])
def test_static_files(start_example: type[RunningExample], io: str, tmp_path: Path) -> None:
    if io == "trio":
        pytest.importorskip("trio")
    (tmp_path / "index.html").write_text("<h1>home</h1>\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "digits.txt").write_text("0123456789")
    server = start_example(["static_files.py", str(tmp_path), "--io", io, "--port", "0"])
    assert _stdlib_get(server.url)[::2] == (200, b"<h1>home</h1>\n")
    status, headers, body = _stdlib_get(server.url + "sub/digits.txt", {"Range": "bytes=2-4"})
    assert (status, body, headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    status, _, listing = _stdlib_get(server.url + "sub/")
    assert status == 200 and b'href="digits.txt"' in listing
    etag = _stdlib_get(server.url + "sub/digits.txt")[1]["ETag"]
    assert _stdlib_get(server.url + "sub/digits.txt", {"If-None-Match": etag})[0] == 304
    assert _stdlib_get(server.url + "../etc/passwd")[0] in (400, 404)
    assert server.stop()[0] == 0


@pytest.mark.parametrize("io", ["asyncio", "trio"])
def test_udp_echo(io: str) -> None:
    if io == "trio":
        pytest.importorskip("trio")
    result = _run_program(["udp_echo.py", "--io", io])
    assert (result.returncode, result.stdout) == (0, "[b'ONE', b'TWO', b'THREE']\n"), result.stderr


def _protomata(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the ``protomata`` command (as ``python -m protomata``)."""
    return subprocess.run(
        [sys.executable, "-m", "protomata", *args],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_cli_get_examples(start_example: type[RunningExample], tmp_path: Path) -> None:
    """The ``protomata get`` examples of docs/cli.rst, against the example server."""
    server = start_example(["sync_server.py", "--port", "0"])
    result = _protomata("get", server.url + "numbers?n=3")
    assert (result.returncode, result.stdout) == (0, b"1\n2\n3\n")
    out = tmp_path / "countdown.txt"
    result = _protomata("get", "-v", "-o", str(out), server.url + "countdown")
    assert result.returncode == 0
    assert out.read_bytes() == b"3...\n2...\n1...\nliftoff\n"
    assert result.stderr.startswith(b"HTTP/1.1 200 OK\n")
    result = _protomata("get", "--io", "trio", server.url + "numbers?n=2")
    assert (result.returncode, result.stdout) == (0, b"1\n2\n")
    result = _protomata("get", server.url + "nowhere")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode().startswith("protomata: error: ")
    assert _protomata("get", "ftp://example.org/").returncode == 2
    server.stop()
    assert _protomata("get", server.url).returncode == 1  # connection refused


# -- >>> snippets in the documentation ----------------------------------------------

RST_FILES = sorted(DOCS.glob("*.rst"))
# Pages that teach by example; each must keep at least one >>> snippet.
PAGES_WITH_EXAMPLES = {"index.rst", "conventions.rst", "http.rst", "coming-from-h11.rst"}


def test_pages_with_examples_exist() -> None:
    assert PAGES_WITH_EXAMPLES.issubset(path.name for path in RST_FILES)


@pytest.mark.parametrize("path", RST_FILES, ids=[path.name for path in RST_FILES])
def test_rst_snippets(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, path.name, str(path), 0)
    if path.name in PAGES_WITH_EXAMPLES:
        assert test.examples, f"{path.name} lost its >>> examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    failures: list[str] = []
    runner.run(test, out=failures.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(failures)


# -- the README -------------------------------------------------------------------------


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", _readme(), re.DOTALL)
    assert blocks, "README.md has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert "server got: Request(method=b'GET'" in out
    assert "client got: Response(status_code=200" in out


def test_ci_runs_the_readme_test_command() -> None:
    section = _readme().split("## Run the tests", 1)[1]
    command = re.search(r"```sh\n(.*?)\n```", section, re.DOTALL)
    assert command is not None
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    # The line may go on to record a failure ("|| failed+=..."), nothing else.
    runs = [line for line in ci_lines if line.startswith(command.group(1).strip() + " ||")]
    assert len(runs) == 1, f".ci/run does not run {command.group(1)!r}"


def test_readme_try_it_serves_the_checkout(start_example: type[RunningExample]) -> None:
    section = _readme().split("## Try it", 1)[1].split("\n## ", 1)[0]
    assert "pip install . && protomata serve http --root ." in section
    # The same server (the installed command is ``python -m protomata`` too).
    server = start_example(["-m", "protomata", "serve", "http", "--root", ".", "--port", "0"], ROOT)
    status, _, body = _stdlib_get(server.url + "README.md")
    assert (status, body) == (200, (ROOT / "README.md").read_bytes())
    assert "protomata get http://127.0.0.1:8000/README.md" in section
    result = _protomata("get", server.url + "README.md")
    assert (result.returncode, result.stdout) == (0, (ROOT / "README.md").read_bytes())
    assert server.stop()[0] == 0


def test_readme_mail_commands(tmp_path: Path) -> None:
    """The README's mail sink session: serve smtp, send-mail, serve pop3, fetch-mail."""
    section = _readme().split("## Try it", 1)[1].split("\n## ", 1)[0]
    block = next(b for b in re.findall(r"```sh\n(.*?)```", section, re.DOTALL) if "smtp" in b)
    lines = [line.split("  #")[0].strip() for line in block.strip().splitlines()]
    serve_smtp, send_1, send_2, serve_pop3, fetch = lines
    assert serve_smtp == "protomata serve smtp"
    command = f"{sys.executable} -m protomata"
    running: list[subprocess.Popen[str]] = []

    def serve(line: str, default_port: str) -> str:
        args = line.replace("protomata ", "", 1).split()
        if "--port" in args:
            args[args.index("--port") + 1] = "0"
        else:
            args += ["--port", "0"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "protomata", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running.append(proc)
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", banner)
        assert match is not None, (banner, proc.stderr.read() if proc.poll() is not None else "")
        assert default_port in line or "--port" not in line
        return match.group(1)

    try:
        smtp_port = serve(serve_smtp, "8025")
        pipeline = (send_1 + "\n" + send_2).replace("protomata ", command + " ")
        sent = subprocess.run(
            ["bash", "-c", pipeline.replace("127.0.0.1:8025", f"127.0.0.1:{smtp_port}")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout == "you@example.com: accepted\n"
        stored = list((tmp_path / "Maildir" / "new").iterdir())
        assert len(stored) == 1 and stored[0].read_bytes().endswith(b"Subject: hi\n\nhello\n")
        pop3_port = serve(serve_pop3, "8110")
        fetched = subprocess.run(
            [
                "bash",
                "-c",
                fetch.replace("protomata ", command + " ").replace(":8110/", f":{pop3_port}/"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert fetched.returncode == 0, fetched.stderr
        copies = list((tmp_path / "Fetched" / "new").iterdir())
        assert len(copies) == 1 and copies[0].read_bytes() == stored[0].read_bytes()
    finally:
        for proc in running:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=TIMEOUT)
    assert all(proc.returncode == 0 for proc in running)
