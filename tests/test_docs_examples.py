"""The documentation's examples, run for real.

* docs/examples/http_server.py is started as a subprocess on an ephemeral
  loopback port and queried by docs/examples/http_client.py (as a program
  and as a module), by the standard library's http.client, and by raw
  sockets for the cases no well-behaved client produces.
* Every ``>>>`` snippet in docs/*.rst runs with the doctest module (no
  Sphinx needed); each file's snippets share one namespace, top to bottom.
* The README's Python example runs, and its test command is the one
  .ci/run runs.
"""

from __future__ import annotations

import doctest
import http.client
import importlib.util
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

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
