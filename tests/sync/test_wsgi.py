"""WSGI: the pure environ/start_response/input pieces and the blocking handler."""

from __future__ import annotations

import http.client
import io
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from protomata.http import Request
from protomata.http._wsgi import InputStream, StartResponse, WSGIError, build_environ
from protomata.sync import HTTPServer
from protomata.sync._wsgi import wsgi_handler

# -- pure pieces ----------------------------------------------------------------------------


def make_environ(target: bytes = b"/a%20b/c?x=1&y=%20", **kw: Any) -> dict[str, Any]:
    request = Request(
        method=b"POST",
        target=target,
        headers=[
            (b"Host", b"example.com"),
            (b"Content-Type", b"text/plain"),
            (b"Content-Length", b"3"),
            (b"X-Multi", b"a"),
            (b"X-Multi", b"b"),
            (b"X_Sneaky", b"spoof"),
            (b"Cookie", b"a=1"),
            (b"Cookie", b"b=2"),
        ],
    )
    return build_environ(
        request,
        server=("127.0.0.1", 8000),
        client=("10.0.0.1", 5555),
        scheme="http",
        wsgi_input=io.BytesIO(b"abc"),
        errors=sys.stderr,
        **kw,
    )


def test_environ() -> None:
    env = make_environ()
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/a b/c"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"] == "8000"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "10.0.0.1" and env["REMOTE_PORT"] == "5555"
    assert env["CONTENT_TYPE"] == "text/plain" and env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_HOST"] == "example.com"
    assert env["HTTP_X_MULTI"] == "a,b"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_SNEAKY" not in env
    assert env["wsgi.version"] == (1, 0) and env["wsgi.url_scheme"] == "http"
    assert env["wsgi.input"].read() == b"abc"
    assert env["wsgi.run_once"] is False
    assert all(isinstance(v, str) for k, v in env.items() if k.isupper())


def test_environ_non_ascii_path_is_latin1_of_the_bytes() -> None:
    env = make_environ(b"/caf%C3%A9")
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/caf\u00e9"


def test_environ_absolute_form() -> None:
    env = make_environ(b"http://example.com/p?q=1")
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/p", "q=1")


def test_start_response_parses() -> None:
    start = StartResponse(lambda data: None)
    with pytest.raises(WSGIError):
        start.head()
    start("201 Created", [("Content-Type", "text/plain"), ("X-A", "1")])
    assert start.head() == (201, b"Created", [(b"Content-Type", b"text/plain"), (b"X-A", b"1")])


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200", []),
        ("OK 200", []),
        ("200 OK\r\nX: y", []),
        ("200 OK", [("Bad Name", "x")]),
        ("200 OK", [("X", "a\r\nInjected: 1")]),
        ("200 OK", [("Connection", "close")]),
        ("200 OK", [("Transfer-Encoding", "chunked")]),
        ("200 OK", [("X", "\u20ac")]),
        ("200 OK", [(b"X", "1")]),
        ("200 OK", (("X", "1"),)),
    ],
)
def test_start_response_rejects(status: str, headers: Any) -> None:
    with pytest.raises(WSGIError):
        StartResponse(lambda data: None)(status, headers)


def test_start_response_exc_info_rules() -> None:
    start = StartResponse(lambda data: None)
    start("200 OK", [])
    with pytest.raises(WSGIError):
        start("500 Oops", [])  # twice without exc_info
    try:
        raise KeyError("boom")
    except KeyError:
        exc_info = sys.exc_info()
    start("500 Internal Server Error", [], exc_info)  # type: ignore[arg-type]
    assert start.status == 500  # not sent yet: replaced
    start.mark_sent()
    with pytest.raises(KeyError, match="boom"):
        start("502 Bad Gateway", [], exc_info)  # type: ignore[arg-type]


def pieces(*chunks: bytes) -> Any:
    it = iter(chunks)
    return lambda: next(it, None)


def test_input_stream() -> None:
    stream = InputStream(pieces(b"line1\nli", b"ne2\n", b"", b"tail"))
    assert stream.readline() == b"line1\n"
    assert stream.read(3) == b"lin"
    assert stream.readline() == b"e2\n"
    assert stream.read() == b"tail"
    assert stream.read() == b"" and stream.readline() == b""


def test_input_stream_limits() -> None:
    stream = InputStream(pieces(b"abcdef\n", b"gh\nij"))
    assert stream.readline(3) == b"abc"
    assert stream.readlines() == [b"def\n", b"gh\n", b"ij"]
    stream = InputStream(pieces(b"a\nb\nc\n"))
    assert stream.readlines(2) == [b"a\n"]
    assert list(stream) == [b"b\n", b"c\n"]
    assert InputStream(pieces(b"xyz")).read(None) == b"xyz"


# -- served over the blocking server ------------------------------------------------------------


class ClosingBody:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


closed_bodies: list[ClosingBody] = []


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    if path == "/lines":
        lines = list(environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % len(lines)]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        body = ClosingBody([b"one ", b"", b"two ", b"three"])
        closed_bodies.append(body)
        return body
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return iter([b"then yielded"])
    if path == "/lazy":

        def generate() -> Iterator[bytes]:
            start_response("202 Accepted", [("X-Lazy", "yes")])
            yield b"late"

        return generate()
    if path == "/error":
        raise RuntimeError("app failed")
    if path == "/error-late":
        try:
            raise ValueError("late")
        except ValueError:
            start_response("200 OK", [])
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"recovered"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [environ["REQUEST_METHOD"].encode() + b" " + path.encode("latin-1")]


@pytest.fixture
def wsgi_server() -> Iterator[HTTPServer]:
    srv = HTTPServer(wsgi_handler(app, errors=io.StringIO()), port=0, access_log=lambda line: None)
    with srv.running():
        yield srv


def fetch(
    server: HTTPServer, method: str, path: str, body: bytes | Iterable[bytes] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_wsgi_echo_body(wsgi_server: HTTPServer) -> None:
    payload = bytes(range(256)) * 1000
    status, fields, body = fetch(wsgi_server, "POST", "/echo", payload)
    assert (status, body) == (200, payload)
    assert fields["Content-Length"] == str(len(payload))


def test_wsgi_chunked_request_lines(wsgi_server: HTTPServer) -> None:
    status, _, body = fetch(wsgi_server, "POST", "/lines", iter([b"a\nb", b"\nc\n"]))
    assert (status, body) == (200, b"3")


def test_wsgi_streamed_and_closed(wsgi_server: HTTPServer) -> None:
    closed_bodies.clear()
    status, fields, body = fetch(wsgi_server, "GET", "/stream")
    assert (status, body) == (200, b"one two three")
    assert fields.get("Transfer-Encoding") == "chunked"
    deadline = time.monotonic() + 5  # close() runs just after the last byte went out
    while not (closed_bodies and closed_bodies[0].closed) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed_bodies and closed_bodies[0].closed


def test_wsgi_write_and_lazy_start(wsgi_server: HTTPServer) -> None:
    assert fetch(wsgi_server, "GET", "/write")[2] == b"written then yielded"
    status, fields, body = fetch(wsgi_server, "GET", "/lazy")
    assert (status, fields["X-Lazy"], body) == (202, "yes", b"late")


def test_wsgi_errors(wsgi_server: HTTPServer) -> None:
    assert fetch(wsgi_server, "GET", "/error")[0] == 500
    assert fetch(wsgi_server, "GET", "/error-late")[:3:2] == (500, b"recovered")
    assert fetch(wsgi_server, "GET", "/other?x")[:3:2] == (404, b"GET /other")


def test_wsgi_head(wsgi_server: HTTPServer) -> None:
    status, fields, body = fetch(wsgi_server, "HEAD", "/other")
    assert (status, body) == (404, b"")
    assert fields["Content-Length"] == str(len(b"HEAD /other"))


def test_flask_app() -> None:
    flask = pytest.importorskip("flask")
    flask_app = flask.Flask("protomata_test")

    @flask_app.route("/hello/<name>", methods=["GET", "POST"])
    def hello(name: str) -> Any:
        return {
            "name": name,
            "q": flask.request.args.get("q"),
            "body": flask.request.get_data(as_text=True),
        }

    @flask_app.route("/gen")
    def gen() -> Any:
        return flask.Response(iter([b"a", b"b", b"c"]), mimetype="text/plain")

    srv = HTTPServer(wsgi_handler(flask_app), port=0, access_log=lambda line: None)
    with srv.running():
        status, fields, body = fetch(srv, "POST", "/hello/b%C3%A9?q=1", b"payload")
        assert status == 200 and fields["Content-Type"] == "application/json"
        assert flask.json.loads(body) == {"name": "b\u00e9", "q": "1", "body": "payload"}
        assert fetch(srv, "GET", "/gen")[2] == b"abc"
        assert fetch(srv, "GET", "/missing")[0] == 404
