"""Interop with the standard library's HTTP code over real loopback sockets.

(a) A small threaded server built on ``Connection(SERVER)`` answers
    ``http.client.HTTPConnection`` and ``urllib.request``.
(b) ``Connection(CLIENT)`` talks to ``http.server.ThreadingHTTPServer`` with
    custom handlers (HTTP/1.1 keep-alive, HTTP/1.0 close-delimited) and with
    ``SimpleHTTPRequestHandler`` serving a temporary directory.

Both directions check what the peer parsed, byte for byte.  Every socket has
a timeout, so a framing mistake fails a test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import http.server
import io
import os
import re
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from protomata import RemoteProtocolError
from protomata.http import (
    CLIENT,
    CLOSED,
    DONE,
    IDLE,
    MUST_CLOSE,
    NEED_DATA,
    PAUSED,
    SEND_RESPONSE,
    SERVER,
    SWITCHED_PROTOCOL,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)

TIMEOUT = 5.0
HOST = "127.0.0.1"
HTTP_DATE_RE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
PY_SERVER_RE = re.compile(r"(BaseHTTP|SimpleHTTP)/\d+\.\d+ Python/\d+\.\d+\.\d+\S*")


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _read_to_eof(sock: socket.socket) -> bytes:
    parts = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


# =============================================================================
# (a) protomata server, stdlib clients
# =============================================================================


class Exchange:
    """What the protomata server parsed for one request."""

    def __init__(self, connection_id: int, request: Request) -> None:
        self.connection_id = connection_id
        self.request = request
        self.body = b""
        self.trailers: list[tuple[bytes, bytes]] = []
        self.sent_continue = False


#: app(request, body) -> (status, reason, headers, body pieces, trailers)
App = Callable[[Request, bytes], tuple[int, bytes, list[tuple[str, str]], list[bytes], Any]]


def demo_app(request: Request, body: bytes) -> tuple:
    path = request.target
    if path == b"/hello":
        return (
            200,
            b"OK",
            [("Content-Type", "text/plain"), ("Content-Length", "11")],
            [b"hello world"],
            None,
        )
    if path == b"/chunked":
        return (
            200,
            b"OK",
            [("Transfer-Encoding", "chunked")],
            [b"first,", b"second,", b"third"],
            None,
        )
    if path == b"/trailers":
        return (
            200,
            b"OK",
            [("Transfer-Encoding", "chunked"), ("Trailer", "X-Digest")],
            [b"part one ", b"part two"],
            [("X-Digest", "abc123")],
        )
    if path == b"/nolength":
        # Neither length field: the machine must pick chunked for HTTP/1.1.
        return 200, b"", [("Content-Type", "text/plain")], [b"abc", b"def"], None
    if path == b"/echo":
        return 201, b"Created", [("Content-Length", str(len(body)))], [body], None
    if path == b"/close":
        return 200, b"OK", [("Content-Length", "3"), ("Connection", "close")], [b"bye"], None
    return 404, b"Not Found", [("Content-Length", "9")], [b"not found"], None


class ProtomataServer:
    """A threaded test server: one protomata Connection(SERVER) per socket."""

    def __init__(self, app: App = demo_app, send_continue: bool = True) -> None:
        self.app = app
        self.send_continue = send_continue
        self.exchanges: list[Exchange] = []
        self.errors: list[BaseException] = []
        self.remote_errors: list[RemoteProtocolError] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> ProtomataServer:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._accept_thread.join(TIMEOUT)
        for thread in self._threads:
            thread.join(TIMEOUT)
        self._listener.close()

    def check(self) -> None:
        """Fail the test if the server thread hit an unexpected exception."""
        if self.errors:
            raise AssertionError(f"server thread failed: {self.errors!r}") from self.errors[0]

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                connection_id = self.connections
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(sock, connection_id), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, connection_id: int) -> None:
        sock.settimeout(TIMEOUT)
        try:
            with sock:
                self._serve_connection(sock, connection_id)
        except BaseException as exc:  # recorded; the test fails in check()
            self.errors.append(exc)

    def _serve_connection(self, sock: socket.socket, connection_id: int) -> None:
        conn = Connection(SERVER)

        def send(event: Any) -> None:
            data = conn.send(event)
            if data:
                sock.sendall(data)

        exchange: Exchange | None = None
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                self.remote_errors.append(exc)
                if conn.our_state in (IDLE, SEND_RESPONSE):
                    status = exc.error_status_hint
                    send(Response(status_code=status, headers=[("Content-Length", "0")]))
                    send(EndOfMessage())
                return
            if event is NEED_DATA:
                conn.receive_data(sock.recv(65536))
                continue
            if type(event) is Request:
                exchange = Exchange(connection_id, event)
                self.exchanges.append(exchange)
                if conn.they_are_waiting_for_100_continue and self.send_continue:
                    send(InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
                    exchange.sent_continue = True
            elif type(event) is Data:
                assert exchange is not None
                exchange.body += event.data
            elif type(event) is EndOfMessage:
                assert exchange is not None
                exchange.trailers = list(event.headers)
                status, reason, headers, pieces, trailers = self.app(
                    exchange.request, exchange.body
                )
                send(Response(status_code=status, reason=reason, headers=headers))
                if exchange.request.method != b"HEAD":
                    for piece in pieces:
                        send(Data(data=piece))
                send(EndOfMessage(headers=trailers))
                if conn.our_state is DONE and conn.their_state is DONE:
                    conn.start_next_cycle()
                elif conn.our_state is MUST_CLOSE:
                    return
            elif type(event) is ConnectionClosed:
                return
            else:  # PAUSED or an unexpected event
                raise AssertionError(f"server got {event!r} in states {conn.states}")


@pytest.fixture
def server() -> Iterator[ProtomataServer]:
    with ProtomataServer() as srv:
        yield srv
        srv.check()


@pytest.fixture
def client(server: ProtomataServer) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    yield conn
    conn.close()


def _host(server: ProtomataServer) -> bytes:
    return f"{HOST}:{server.port}".encode()


def test_http_client_several_requests_on_one_connection(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    client.request("GET", "/hello")
    resp = client.getresponse()
    assert (resp.status, resp.reason, resp.version) == (200, "OK", 11)
    assert resp.getheaders() == [("Content-Type", "text/plain"), ("Content-Length", "11")]
    assert resp.read() == b"hello world"

    client.request("GET", "/chunked")
    resp = client.getresponse()
    assert resp.status == 200
    assert resp.getheaders() == [("Transfer-Encoding", "chunked")]
    assert resp.read() == b"first,second,third"

    client.request("GET", "/nolength")
    resp = client.getresponse()
    assert (resp.status, resp.reason) == (200, "")
    assert resp.getheaders() == [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")]
    assert resp.read() == b"abcdef"

    client.request("GET", "/missing")
    resp = client.getresponse()
    assert (resp.status, resp.reason, resp.read()) == (404, "Not Found", b"not found")

    assert server.connections == 1
    assert [e.connection_id for e in server.exchanges] == [0, 0, 0, 0]
    assert [e.request.target for e in server.exchanges] == [
        b"/hello",
        b"/chunked",
        b"/nolength",
        b"/missing",
    ]
    first = server.exchanges[0].request
    assert first.method == b"GET"
    assert first.http_version == b"1.1"
    assert list(first.headers) == [
        (b"host", _host(server)),
        (b"accept-encoding", b"identity"),
    ]
    assert first.headers.raw_items() == [
        (b"Host", _host(server)),
        (b"Accept-Encoding", b"identity"),
    ]


def test_http_client_post_with_body(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    body = bytes(range(256)) * 40
    client.request("POST", "/echo", body=body, headers={"Content-Type": "application/octet-stream"})
    resp = client.getresponse()
    assert (resp.status, resp.reason) == (201, "Created")
    assert resp.getheader("Content-Length") == str(len(body))
    assert resp.read() == body
    exchange = server.exchanges[0]
    assert exchange.body == body
    assert list(exchange.request.headers) == [
        (b"host", _host(server)),
        (b"accept-encoding", b"identity"),
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/octet-stream"),
    ]
    # The connection is still usable.
    client.request("GET", "/hello")
    assert client.getresponse().read() == b"hello world"
    assert server.connections == 1


def test_http_client_chunked_upload(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    pieces = [b"abc", b"", b"defgh", b"x" * 5000]
    client.request("POST", "/echo", body=iter(pieces), encode_chunked=True)
    resp = client.getresponse()
    assert resp.status == 201
    assert resp.read() == b"".join(pieces)
    exchange = server.exchanges[0]
    assert exchange.request.headers.get(b"transfer-encoding") == b"chunked"
    assert exchange.request.headers.get(b"content-length") is None
    assert exchange.body == b"".join(pieces)
    assert exchange.trailers == []


def test_http_client_head_then_get(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    client.request("HEAD", "/hello")
    resp = client.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Length") == "11"
    assert resp.read() == b""
    # If we had sent a body after the HEAD response, this would read it.
    client.request("GET", "/hello")
    resp = client.getresponse()
    assert resp.read() == b"hello world"
    assert server.connections == 1
    assert [e.request.method for e in server.exchanges] == [b"HEAD", b"GET"]


def test_http_client_reads_trailers_framing(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    client.request("GET", "/trailers")
    resp = client.getresponse()
    assert resp.read() == b"part one part two"
    # http.client discards trailers; the connection must still be in sync.
    client.request("GET", "/hello")
    assert client.getresponse().read() == b"hello world"


def test_trailers_on_the_wire(server: ProtomataServer) -> None:
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /trailers HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        raw = _read_to_eof(sock)
    # Transfer-Encoding moves behind the other fields, as with h11: the
    # machine rewrites the framing fields of every response it sends.
    assert raw == (
        b"HTTP/1.1 200 OK\r\nTrailer: X-Digest\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
        b"9\r\npart one \r\n8\r\npart two\r\n0\r\nX-Digest: abc123\r\n\r\n"
    )


def test_http_client_expect_100_continue(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    # http.client sends the body without waiting, and skips the 100 response.
    client.request("PUT", "/echo", body=b"payload", headers={"Expect": "100-continue"})
    resp = client.getresponse()
    assert (resp.status, resp.read()) == (201, b"payload")
    assert server.exchanges[0].sent_continue


def test_expect_100_continue_waiting_client(server: ProtomataServer) -> None:
    # A client that really waits: head first, body only after 100 Continue;
    # then the stdlib parses the final response.
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"PUT /echo HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
            b"Content-Length: 11\r\n\r\n"
        )
        interim = _read_until(sock, b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello there")
        resp = http.client.HTTPResponse(sock, method="PUT")
        resp.begin()
        assert (resp.status, resp.reason) == (201, "Created")
        assert resp.read() == b"hello there"
    assert server.exchanges[0].body == b"hello there"


def test_http_client_response_with_connection_close(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    client.request("GET", "/close")
    resp = client.getresponse()
    assert resp.getheader("Connection") == "close"
    assert resp.will_close
    assert resp.read() == b"bye"
    # http.client reconnects for the next request.
    client.request("GET", "/hello")
    assert client.getresponse().read() == b"hello world"
    assert server.connections == 2
    assert [e.connection_id for e in server.exchanges] == [0, 1]


def test_request_with_connection_close_gets_close_and_eof(server: ProtomataServer) -> None:
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        raw = _read_to_eof(sock)  # the server must close: a timeout fails here
    assert raw == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
        b"Connection: close\r\n\r\nhello world"
    )


def test_http_client_sends_connection_close(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    client.request("GET", "/chunked", headers={"Connection": "close"})
    resp = client.getresponse()
    assert resp.getheader("Connection") == "close"
    assert resp.read() == b"first,second,third"


class _SharedReader(io.BufferedReader):
    """One buffered reader for several HTTPResponse objects (never closed by them)."""

    def close(self) -> None:
        pass


class _FakeSocket:
    def __init__(self, reader: io.BufferedReader) -> None:
        self._reader = reader

    def makefile(self, mode: str) -> io.BufferedReader:
        return self._reader


def test_pipelined_requests(server: ProtomataServer) -> None:
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nping"
            b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        reader = _SharedReader(socket.SocketIO(sock, "rb"))
        replies = []
        for method in ("GET", "POST", "GET"):
            resp = http.client.HTTPResponse(_FakeSocket(reader), method=method)  # type: ignore[arg-type]
            resp.begin()
            replies.append((resp.status, resp.read()))
        assert reader.read() == b""  # closed after the Connection: close one
    assert replies == [(200, b"hello world"), (201, b"ping"), (200, b"hello world")]
    assert [e.connection_id for e in server.exchanges] == [0, 0, 0]


def test_urllib_get_and_post(server: ProtomataServer) -> None:
    with urllib.request.urlopen(server.url + "/hello", timeout=TIMEOUT) as resp:
        assert resp.status == 200
        assert resp.read() == b"hello world"
        # urllib asks for Connection: close; the server says it will close.
        assert resp.headers["Connection"] == "close"
    with urllib.request.urlopen(server.url + "/chunked", timeout=TIMEOUT) as resp:
        assert resp.read() == b"first,second,third"
    req = urllib.request.Request(server.url + "/echo", data=b"a=1&b=2", method="POST")
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        assert (resp.status, resp.read()) == (201, b"a=1&b=2")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + "/nope", timeout=TIMEOUT)
    assert info.value.code == 404
    assert info.value.read() == b"not found"
    info.value.close()
    post = server.exchanges[2].request
    assert post.headers.get(b"content-type") == b"application/x-www-form-urlencoded"
    assert post.headers.get(b"connection") == b"close"
    assert post.headers.get(b"user-agent", b"").startswith(b"Python-urllib/")
    assert server.connections == 4


def test_urllib_chunked_upload(server: ProtomataServer) -> None:
    # urllib sends an iterable body without a known length chunked.
    req = urllib.request.Request(
        server.url + "/echo", data=iter([b"one,", b"two,", b"three"]), method="PUT"
    )
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        assert (resp.status, resp.read()) == (201, b"one,two,three")
    request = server.exchanges[0].request
    assert request.headers.get(b"transfer-encoding") == b"chunked"
    assert server.exchanges[0].body == b"one,two,three"


def test_garbage_gets_an_error_response_the_stdlib_can_parse(server: ProtomataServer) -> None:
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        resp = http.client.HTTPResponse(sock, method="GET")
        resp.begin()
        assert resp.status == 400
        assert resp.read() == b""
        assert sock.recv(10) == b""  # and closed
    assert len(server.remote_errors) == 1


def _http10_exchange(sock: socket.socket, request: bytes, method: str = "GET") -> Any:
    sock.sendall(request)
    resp = http.client.HTTPResponse(
        _FakeSocket(_SharedReader(socket.SocketIO(sock, "rb"))), method=method
    )  # type: ignore[arg-type]
    resp.begin()
    return resp


def test_http10_client_gets_close_delimited_body(server: ProtomataServer) -> None:
    # An HTTP/1.0 client cannot read chunked: the server drops the
    # Transfer-Encoding it was given and delimits the body by closing.
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        resp = _http10_exchange(sock, b"GET /chunked HTTP/1.0\r\n\r\n")
        assert (resp.status, resp.version) == (200, 11)
        assert resp.getheader("Transfer-Encoding") is None
        assert resp.getheader("Content-Length") is None
        assert resp.getheader("Connection") == "close"
        assert resp.read() == b"first,second,third"
        assert sock.recv(10) == b""
    assert server.exchanges[0].request.http_version == b"1.0"


def test_http10_client_keep_alive(server: ProtomataServer) -> None:
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        reader = _SharedReader(socket.SocketIO(sock, "rb"))
        sock.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        resp = http.client.HTTPResponse(_FakeSocket(reader), method="GET")  # type: ignore[arg-type]
        resp.begin()
        assert resp.getheader("Connection") == "keep-alive"
        assert resp.read() == b"hello world"
        sock.sendall(
            b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi"
        )
        resp = http.client.HTTPResponse(_FakeSocket(reader), method="POST")  # type: ignore[arg-type]
        resp.begin()
        assert (resp.status, resp.read()) == (201, b"hi")
        sock.sendall(b"GET /hello HTTP/1.0\r\n\r\n")  # no keep-alive: last one
        resp = http.client.HTTPResponse(_FakeSocket(reader), method="GET")  # type: ignore[arg-type]
        resp.begin()
        assert resp.getheader("Connection") == "close"
        assert resp.read() == b"hello world"
        assert reader.read() == b""
    assert server.connections == 1


def test_http_client_head_of_unframed_response(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    client.request("HEAD", "/nolength")
    resp = client.getresponse()
    assert resp.status == 200
    assert resp.read() == b""
    client.request("GET", "/nolength")
    assert client.getresponse().read() == b"abcdef"
    assert server.connections == 1


def test_http_client_large_chunked_upload_and_download(
    server: ProtomataServer, client: http.client.HTTPConnection
) -> None:
    pieces = [os.urandom(70_000) for _ in range(8)]
    client.request("POST", "/echo", body=iter(pieces), encode_chunked=True)
    resp = client.getresponse()
    assert resp.read() == b"".join(pieces)


# =============================================================================
# (b) protomata client, stdlib servers
# =============================================================================


class Reply:
    def __init__(self) -> None:
        self.informational: list[InformationalResponse] = []
        self.response: Response | None = None
        self.body = b""
        self.trailers: list[tuple[bytes, bytes]] = []

    @property
    def status(self) -> int:
        assert self.response is not None
        return self.response.status_code

    def header(self, name: bytes) -> bytes | None:
        assert self.response is not None
        return self.response.headers.get(name)


class ProtomataClient:
    """A blocking HTTP client built on Connection(CLIENT) and one socket."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.conn = Connection(CLIENT)
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    def send(self, event: Any) -> None:
        data = self.conn.send(event)
        if data:
            self.sock.sendall(data)

    def next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not NEED_DATA:
                return event
            data = self.sock.recv(65536)
            self.eof = not data
            self.conn.receive_data(data)

    def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        wait_for_continue: bool = False,
    ) -> Reply:
        conn = self.conn
        if conn.our_state is DONE and conn.their_state is DONE:
            conn.start_next_cycle()
        fields = [("Host", f"{HOST}:{self.port}"), ("User-Agent", "protomata-test")]
        if body is not None:
            fields.append(("Content-Length", str(len(body))))
        self.send(Request(method=method, target=target, headers=fields + (headers or [])))
        reply = Reply()
        body_sent = body is None
        if body is None:
            self.send(EndOfMessage())
        elif not wait_for_continue:
            self.send(Data(data=body))
            self.send(EndOfMessage())
            body_sent = True
        while True:
            event = self.next_event()
            if type(event) is InformationalResponse:
                reply.informational.append(event)
                if not body_sent:
                    self.send(Data(data=body))
                    self.send(EndOfMessage())
                    body_sent = True
            elif type(event) is Response:
                reply.response = event
            elif type(event) is Data:
                reply.body += event.data
            elif type(event) is EndOfMessage:
                reply.trailers = list(event.headers)
                return reply
            else:
                raise AssertionError(f"unexpected {event!r}")


class RecordingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type) -> None:
        super().__init__((HOST, 0), handler)
        self.seen: list[dict[str, Any]] = []
        self.handler_errors: list[BaseException] = []


@contextlib.contextmanager
def stdlib_server(handler: Any) -> Iterator[RecordingServer]:
    srv = RecordingServer(handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(TIMEOUT)
    assert not srv.handler_errors, srv.handler_errors


class QuietHandler(http.server.BaseHTTPRequestHandler):
    timeout = TIMEOUT  # the handler's socket timeout

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def record(self, body: bytes = b"") -> None:
        self.server.seen.append(
            {
                "command": self.command,
                "path": self.path,
                "version": self.request_version,
                "headers": self.headers.items(),
                "body": body,
                "client_port": self.client_address[1],
            }
        )


class KeepAliveHandler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, status: int, body: bytes, extra: list[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.record()
        if self.path == "/text":
            self._reply(200, "grüße, world\n".encode(), [("X-Multi", "a"), ("X-Multi", "b")])
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            self.wfile.write(b"6\r\nchunk1\r\n10;ext=1\r\n" + b"0123456789abcdef" + b"\r\n")
            self.wfile.write(b"0\r\nX-Checksum: 42\r\n\r\n")
        elif self.path == "/empty":
            self.send_response(204)
            self.end_headers()
        else:
            self._reply(404, b"no such thing")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        self.record(body)
        self._reply(200, body[::-1])

    do_PUT = do_POST


class InterimAndSwitchHandler(QuietHandler):
    """1xx responses, a 101 protocol switch and CONNECT, written by hand."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.record()
        if self.path == "/hints":
            self.send_response_only(103, "Early Hints")
            self.send_header("Link", "</style.css>; rel=preload; as=style")
            self.end_headers()
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"done")
        elif self.path == "/upgrade":
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "echo")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.write(b"greeting from the new protocol\n")
            self.wfile.flush()
            line = self.rfile.readline()
            self.wfile.write(b"echo: " + line)
            self.close_connection = True
        elif self.path == "/close":
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"final")
        else:
            self.send_error(404)

    def do_CONNECT(self) -> None:
        self.record()
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.wfile.flush()
        line = self.rfile.readline()
        self.wfile.write(b"tunnel: " + line)
        self.close_connection = True


class CloseDelimitedHandler(QuietHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.record()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.path == "/big":
            for _ in range(64):
                self.wfile.write(bytes(range(256)) * 64)
        else:
            self.wfile.write(b"no length given; ends at close")


def _check_std_headers(reply: Reply, server_name: str = "BaseHTTP") -> None:
    assert reply.response is not None
    server = reply.header(b"server")
    assert server is not None and PY_SERVER_RE.fullmatch(server.decode()), server
    assert server.startswith(server_name.encode())
    date = reply.header(b"date")
    assert date is not None and HTTP_DATE_RE.fullmatch(date.decode()), date


def test_keep_alive_server_several_requests() -> None:
    with stdlib_server(KeepAliveHandler) as srv:
        client = ProtomataClient(srv.server_port)
        try:
            text = client.request("GET", "/text")
            assert (text.status, text.response.reason, text.response.http_version) == (
                200,
                b"OK",
                b"1.1",
            )
            _check_std_headers(text)
            body = "grüße, world\n".encode()
            assert [(n, v) for n, v in text.response.headers if n not in (b"server", b"date")] == [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-multi", b"a"),
                (b"x-multi", b"b"),
                (b"content-length", str(len(body)).encode()),
            ]
            assert text.body == body

            post = client.request("POST", "/echo", body=b"0123456789" * 1000)
            assert (post.status, post.body) == (200, b"9876543210" * 1000)

            head = client.request("HEAD", "/text")
            assert head.status == 200
            assert head.header(b"content-length") == str(len(body)).encode()
            assert head.body == b""

            chunked = client.request("GET", "/chunked")
            assert chunked.header(b"transfer-encoding") == b"chunked"
            assert chunked.body == b"chunk10123456789abcdef"
            assert chunked.trailers == [(b"x-checksum", b"42")]

            empty = client.request("GET", "/empty")
            assert (empty.status, empty.body) == (204, b"")

            missing = client.request("GET", "/missing")
            assert (missing.status, missing.response.reason, missing.body) == (
                404,
                b"Not Found",
                b"no such thing",
            )
            assert client.conn.states == {CLIENT: DONE, SERVER: DONE}
        finally:
            client.close()
    # Everything went over one connection, and the stdlib parsed our requests.
    assert len({seen["client_port"] for seen in srv.seen}) == 1
    assert [(s["command"], s["path"], s["version"]) for s in srv.seen] == [
        ("GET", "/text", "HTTP/1.1"),
        ("POST", "/echo", "HTTP/1.1"),
        ("HEAD", "/text", "HTTP/1.1"),
        ("GET", "/chunked", "HTTP/1.1"),
        ("GET", "/empty", "HTTP/1.1"),
        ("GET", "/missing", "HTTP/1.1"),
    ]
    assert srv.seen[1]["headers"] == [
        ("Host", f"{HOST}:{srv.server_port}"),
        ("User-Agent", "protomata-test"),
        ("Content-Length", "10000"),
    ]
    assert srv.seen[1]["body"] == b"0123456789" * 1000


def test_keep_alive_server_expect_100_continue() -> None:
    with stdlib_server(KeepAliveHandler) as srv:
        client = ProtomataClient(srv.server_port)
        try:
            reply = client.request(
                "PUT",
                "/upload",
                headers=[("Expect", "100-continue")],
                body=b"sent after 100",
                wait_for_continue=True,
            )
        finally:
            client.close()
    assert [(i.status_code, i.reason) for i in reply.informational] == [(100, b"Continue")]
    assert (reply.status, reply.body) == (200, b"001 retfa tnes")
    assert srv.seen[0]["body"] == b"sent after 100"


def test_http10_close_delimited_response() -> None:
    with stdlib_server(CloseDelimitedHandler) as srv:
        client = ProtomataClient(srv.server_port)
        try:
            reply = client.request("GET", "/")
            assert reply.response.http_version == b"1.0"
            assert reply.header(b"content-length") is None
            assert reply.body == b"no length given; ends at close"
            # The body ended with the connection; the close itself comes next.
            assert client.conn.states == {CLIENT: MUST_CLOSE, SERVER: MUST_CLOSE}
            assert type(client.next_event()) is ConnectionClosed
            assert client.conn.their_state is CLOSED
        finally:
            client.close()
    assert srv.seen[0]["version"] == "HTTP/1.1"


def test_http10_close_delimited_large_body() -> None:
    with stdlib_server(CloseDelimitedHandler) as srv:
        client = ProtomataClient(srv.server_port)
        try:
            reply = client.request("GET", "/big")
        finally:
            client.close()
    assert reply.body == bytes(range(256)) * 64 * 64


@pytest.fixture
def docroot(tmp_path: Any) -> Any:
    (tmp_path / "hello.txt").write_bytes(b"Hello from a file\n")
    (tmp_path / "all-bytes.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "large.dat").write_bytes(os.urandom(300_000))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_bytes(b"<html><body>sub index</body></html>\n")
    return tmp_path


def test_simple_http_request_handler_http10(docroot: Any) -> None:
    def fetch(method: str, path: str) -> tuple[Reply, ProtomataClient]:
        client = ProtomataClient(srv.server_port)
        try:
            return client.request(method, path), client
        finally:
            client.close()

    with stdlib_server(_quiet(http.server.SimpleHTTPRequestHandler, str(docroot))) as srv:
        reply, client = fetch("GET", "/hello.txt")
        assert reply.status == 200
        assert reply.response.http_version == b"1.0"
        _check_std_headers(reply, "SimpleHTTP")
        assert reply.header(b"content-type") == b"text/plain"
        assert reply.header(b"content-length") == b"18"
        assert reply.header(b"last-modified") is not None
        assert reply.body == b"Hello from a file\n"
        # HTTP/1.0 without keep-alive: this connection is finished.
        assert client.conn.our_state is MUST_CLOSE

        reply, _ = fetch("HEAD", "/all-bytes.bin")
        assert reply.header(b"content-length") == b"1024"
        assert reply.body == b""

        reply, _ = fetch("GET", "/all-bytes.bin")
        assert reply.body == bytes(range(256)) * 4

        reply, _ = fetch("GET", "/")
        assert reply.status == 200
        assert reply.header(b"content-type").startswith(b"text/html")
        for name in (b"hello.txt", b"all-bytes.bin", b"large.dat", b"sub/"):
            assert b'href="' + name + b'"' in reply.body
        assert reply.header(b"content-length") == str(len(reply.body)).encode()

        reply, _ = fetch("GET", "/sub")
        assert reply.status == 301
        assert reply.header(b"location") == b"/sub/"

        reply, _ = fetch("GET", "/sub/")
        assert reply.body == b"<html><body>sub index</body></html>\n"

        reply, _ = fetch("GET", "/missing.txt")
        assert reply.status == 404
        assert reply.header(b"connection") == b"close"
        assert b"File not found" in reply.body
        assert reply.header(b"content-length") == str(len(reply.body)).encode()


def _quiet(handler_class: type, directory: str) -> Any:
    class Quiet(handler_class):  # type: ignore[misc, valid-type]
        timeout = TIMEOUT

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return functools.partial(Quiet, directory=directory)


def test_simple_http_request_handler_keep_alive(docroot: Any) -> None:
    class KeepAliveFiles(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

    with stdlib_server(_quiet(KeepAliveFiles, str(docroot))) as srv:
        client = ProtomataClient(srv.server_port)
        try:
            large = client.request("GET", "/large.dat")
            assert large.body == (docroot / "large.dat").read_bytes()
            head = client.request("HEAD", "/hello.txt")
            assert (head.header(b"content-length"), head.body) == (b"18", b"")
            small = client.request("GET", "/hello.txt")
            assert small.body == b"Hello from a file\n"
            binary = client.request("GET", "/all-bytes.bin")
            assert binary.body == bytes(range(256)) * 4
            assert client.conn.states == {CLIENT: DONE, SERVER: DONE}
            # Not found: the stdlib closes after an error.
            missing = client.request("GET", "/nope")
            assert missing.status == 404
            assert missing.header(b"connection") == b"close"
            assert client.conn.our_state is MUST_CLOSE
            assert type(client.next_event()) is ConnectionClosed
        finally:
            client.close()


def test_informational_103_before_response() -> None:
    with stdlib_server(InterimAndSwitchHandler) as srv:
        client = ProtomataClient(srv.server_port)
        try:
            reply = client.request("GET", "/hints")
            again = client.request("GET", "/hints")
        finally:
            client.close()
    assert [(i.status_code, i.reason, list(i.headers)) for i in reply.informational] == [
        (103, b"Early Hints", [(b"link", b"</style.css>; rel=preload; as=style")])
    ]
    assert (reply.status, reply.body) == (200, b"done")
    assert (again.status, again.body) == (200, b"done")


def test_response_with_connection_close() -> None:
    with stdlib_server(InterimAndSwitchHandler) as srv:
        client = ProtomataClient(srv.server_port)
        try:
            reply = client.request("GET", "/close")
            assert (reply.status, reply.body) == (200, b"final")
            assert client.conn.states == {CLIENT: MUST_CLOSE, SERVER: MUST_CLOSE}
            assert type(client.next_event()) is ConnectionClosed
            client.send(ConnectionClosed())
            assert client.conn.states == {CLIENT: CLOSED, SERVER: CLOSED}
        finally:
            client.close()


def _switch(client: ProtomataClient, request: Request) -> tuple[Any, bytes]:
    """Send *request*, read up to the protocol switch; (event, trailing bytes)."""
    client.send(request)
    client.send(EndOfMessage())
    while True:
        event = client.next_event()
        if type(event) in (InformationalResponse, Response):
            break
    assert client.next_event() is PAUSED
    assert client.conn.states == {CLIENT: SWITCHED_PROTOCOL, SERVER: SWITCHED_PROTOCOL}
    trailing, closed = client.conn.trailing_data
    assert not closed
    return event, trailing


def _read_line(sock: socket.socket, already: bytes) -> bytes:
    data = already
    while b"\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "peer closed before a full line"
        data += chunk
    return data


def test_upgrade_101_switch() -> None:
    with stdlib_server(InterimAndSwitchHandler) as srv:
        client = ProtomataClient(srv.server_port)
        try:
            request = Request(
                method="GET",
                target="/upgrade",
                headers=[("Host", "localhost"), ("Upgrade", "echo"), ("Connection", "Upgrade")],
            )
            event, trailing = _switch(client, request)
            assert type(event) is InformationalResponse
            assert (event.status_code, event.reason) == (101, b"Switching Protocols")
            assert event.headers.get(b"upgrade") == b"echo"
            # Bytes after the 101 belong to the new protocol, not to HTTP.
            greeting = _read_line(client.sock, trailing)
            assert greeting == b"greeting from the new protocol\n"
            client.sock.sendall(b"ping\n")
            assert _read_line(client.sock, b"") == b"echo: ping\n"
        finally:
            client.close()


def test_connect_tunnel() -> None:
    with stdlib_server(InterimAndSwitchHandler) as srv:
        client = ProtomataClient(srv.server_port)
        try:
            request = Request(
                method="CONNECT",
                target="example.com:443",
                headers=[("Host", "example.com:443")],
            )
            event, trailing = _switch(client, request)
            assert type(event) is Response
            assert (event.status_code, event.reason) == (200, b"Connection Established")
            assert trailing == b""
            client.sock.sendall(b"hello tunnel\n")
            assert _read_line(client.sock, b"") == b"tunnel: hello tunnel\n"
        finally:
            client.close()
    assert srv.seen[0]["command"] == "CONNECT"
    assert srv.seen[0]["path"] == "example.com:443"
