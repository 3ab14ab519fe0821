"""Static files: the pure decisions (StaticFiles) and the blocking handler."""

from __future__ import annotations

import http.client
import os
import posixpath
import shutil
import subprocess
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protomata.http import Headers
from protomata.http._headers import normalize_and_validate
from protomata.http._static import FileInfo, StaticFiles, StaticPlan, content_type
from protomata.sync import HTTPServer
from protomata.sync._static import file_info, read_range, static_handler

SECRET = b"TOP-SECRET-OUTSIDE-ROOT"


def headers(*pairs: tuple[str, str]) -> Headers:
    return normalize_and_validate(list(pairs))


NO_HEADERS = headers()


# -- resolve: mapping targets to paths -----------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/", ""),
        (b"/a.txt", "a.txt"),
        (b"/a.txt?x=1", "a.txt"),
        (b"/a.txt#frag", "a.txt"),
        (b"/sub/", "sub/"),
        (b"/sub//b.txt", "sub/b.txt"),
        (b"/sub/./b.txt", "sub/b.txt"),
        (b"/sub/../a.txt", "a.txt"),
        (b"/sub/..", ""),
        (b"/sp%20ace%C3%A9", "sp ace\u00e9"),
        (b"http://example.com/a.txt", "a.txt"),
        (b"http://example.com", ""),
    ],
)
def test_resolve_maps_targets(target: bytes, expected: str) -> None:
    assert StaticFiles("/srv").resolve(target) == expected


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"/..", 404),
        (b"/../etc/passwd", 404),
        (b"/sub/../../etc/passwd", 404),
        (b"/%2e%2e/etc/passwd", 404),
        (b"/%2E%2e%2Fetc/passwd", 404),
        (b"/..%2fetc%2fpasswd", 404),
        (b"/sub%2f..%2f..%2fetc", 404),
        (b"/a%2fb", 404),
        (b"/..\\etc\\passwd", 400),
        (b"/%5c..%5cetc", 400),
        (b"/a.txt\x00.html", 400),
        (b"/a.txt%00.html", 400),
        (b"/bad%zzencoding", 400),
        (b"/bad%4", 400),
        (b"/%ff%fe", 400),
        (b"etc/passwd", 400),
        (b"*", 400),
    ],
)
def test_resolve_refuses_escapes(target: bytes, status: int) -> None:
    plan = StaticFiles("/srv").resolve(target)
    assert isinstance(plan, StaticPlan)
    assert plan.status == status
    assert plan.body is not None and plan.body.startswith(str(status).encode())


def test_resolve_never_yields_dot_segments_or_absolute_paths() -> None:
    files = StaticFiles("/srv")
    for target in [b"/a/b/../../c", b"/./.././x", b"//etc/passwd", b"/a/%2e/b"]:
        rel = files.resolve(target)
        if isinstance(rel, str):
            assert not rel.startswith("/")
            assert ".." not in rel.split("/") and "." not in rel.split("/")


def test_inside_root() -> None:
    files = StaticFiles("/srv")
    assert files.inside_root("/srv", "/srv")
    assert files.inside_root("/srv/a/b", "/srv")
    assert files.inside_root("/srv/a", "/srv/")
    assert not files.inside_root("/srvother/a", "/srv")
    assert not files.inside_root("/etc/passwd", "/srv")
    assert not files.inside_root("/", "/srv")


# -- plan: deciding the answer ----------------------------------------------------------


def test_plan_method_not_allowed() -> None:
    plan = StaticFiles("/srv").plan(b"POST", NO_HEADERS, "a.txt", FileInfo("file", 3, 0))
    assert plan.status == 405
    assert (b"Allow", b"GET, HEAD") in plan.headers


def test_plan_missing_and_forbidden() -> None:
    files = StaticFiles("/srv")
    assert files.plan(b"GET", NO_HEADERS, "x", FileInfo("missing")).status == 404
    assert files.plan(b"GET", NO_HEADERS, "x", FileInfo("forbidden")).status == 403
    # a file asked for as a directory
    assert files.plan(b"GET", NO_HEADERS, "a.txt/", FileInfo("file", 3, 0)).status == 404


def test_plan_file_fields() -> None:
    plan = StaticFiles("/srv").plan(b"GET", NO_HEADERS, "d/page.html", FileInfo("file", 10, 1e9))
    fields = dict(plan.headers)
    assert plan.status == 200 and plan.body is None
    assert (plan.offset, plan.length) == (0, 10)
    assert fields[b"Content-Type"] == b"text/html"
    assert fields[b"Content-Length"] == b"10"
    assert fields[b"Last-Modified"] == formatdate(1e9, usegmt=True).encode()
    assert fields[b"Accept-Ranges"] == b"bytes"


def test_content_types() -> None:
    assert content_type("a.CSS") == "text/css"
    assert content_type("a.png") == "image/png"
    assert content_type("noext") == "application/octet-stream"
    assert content_type("a.foo", {".foo": "x/y"}) == "x/y"


def test_plan_directory_redirect_index_and_listing() -> None:
    files = StaticFiles("/srv")
    redirect = files.plan(b"GET", NO_HEADERS, "sub dir", FileInfo("dir", names=[]))
    assert redirect.status == 301
    assert dict(redirect.headers)[b"Location"] == b"/sub%20dir/"
    index = files.plan(b"GET", NO_HEADERS, "sub/", FileInfo("dir", names=["index.html"]))
    assert (index.status, index.redirect) == (0, "sub/index.html")
    listing = files.plan(
        b"GET", NO_HEADERS, "sub/", FileInfo("dir", names=['<script>"x', "d/", "a b"])
    )
    assert listing.status == 200 and listing.body is not None
    assert b"<script>" not in listing.body
    assert b"&lt;script&gt;&quot;x" in listing.body
    assert b'href="%3Cscript%3E%22x"' in listing.body
    assert b'href="a%20b"' in listing.body
    assert b'href="d/"' in listing.body
    assert b'href="../"' in listing.body
    no_listing = StaticFiles("/srv", listing=False)
    assert no_listing.plan(b"GET", NO_HEADERS, "", FileInfo("dir", names=["x"])).status == 403


def _plan(*pairs: tuple[str, str], size: int = 100) -> StaticPlan:
    return StaticFiles("/srv").plan(b"GET", headers(*pairs), "f.bin", FileInfo("file", size, 1e9))


def test_plan_conditional() -> None:
    stamp = formatdate(1e9, usegmt=True)
    assert _plan(("If-Modified-Since", stamp)).status == 304
    assert _plan(("If-Modified-Since", formatdate(1e9 + 60, usegmt=True))).status == 304
    assert _plan(("If-Modified-Since", formatdate(1e9 - 60, usegmt=True))).status == 200
    assert _plan(("If-Modified-Since", "garbage")).status == 200
    etag = dict(_plan().headers)[b"ETag"].decode()
    not_modified = _plan(("If-None-Match", etag))
    assert not_modified.status == 304 and not_modified.length == 0 and not_modified.body is None
    assert b"Content-Length" not in dict(not_modified.headers)
    # If-None-Match wins over If-Modified-Since
    assert _plan(("If-None-Match", '"other"'), ("If-Modified-Since", stamp)).status == 200


@pytest.mark.parametrize(
    ("range_value", "status", "offset", "length", "content_range"),
    [
        ("bytes=0-9", 206, 0, 10, b"bytes 0-9/100"),
        ("bytes=90-", 206, 90, 10, b"bytes 90-99/100"),
        ("bytes=-5", 206, 95, 5, b"bytes 95-99/100"),
        ("bytes=-500", 206, 0, 100, b"bytes 0-99/100"),
        ("bytes=50-5000", 206, 50, 50, b"bytes 50-99/100"),
        ("bytes=100-", 416, 0, 0, b"bytes */100"),
        ("bytes=-0", 416, 0, 0, b"bytes */100"),
        ("bytes=0-1,5-6", 200, 0, 100, None),  # multi-range: ignored
        ("bytes=9-3", 200, 0, 100, None),  # invalid: ignored
        ("items=0-1", 200, 0, 100, None),
    ],
)
def test_plan_ranges(
    range_value: str, status: int, offset: int, length: int, content_range: bytes | None
) -> None:
    plan = _plan(("Range", range_value))
    assert plan.status == status
    fields = dict(plan.headers)
    assert fields.get(b"Content-Range") == content_range
    if status != 416:
        assert (plan.offset, plan.length) == (offset, length)
        assert fields[b"Content-Length"] == str(length).encode()


def test_plan_if_range() -> None:
    etag = dict(_plan().headers)[b"ETag"].decode()
    assert _plan(("Range", "bytes=0-1"), ("If-Range", etag)).status == 206
    assert _plan(("Range", "bytes=0-1"), ("If-Range", '"stale"')).status == 200


def test_plan_range_on_empty_file() -> None:
    assert _plan(("Range", "bytes=0-"), size=0).status == 416


# -- the blocking handler ----------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "page.html").write_bytes(b"<p>hi</p>")
    (root / "sub" / "b.css").write_bytes(b"b{}")
    (root / "site").mkdir()
    (root / "site" / "index.html").write_bytes(b"INDEX")
    (root / "<odd> & name.txt").write_bytes(b"odd")
    (root / "escape-link").symlink_to(tmp_path / "secret.txt")
    (root / "escape-dir").symlink_to(tmp_path)
    (root / "inside-link").symlink_to(root / "hello.txt")
    return root


@pytest.fixture
def server(tree: Path) -> Iterator[HTTPServer]:
    srv = HTTPServer(static_handler(str(tree)), port=0, access_log=lambda line: None)
    with srv.running():
        yield srv


def raw_get(
    server: HTTPServer, target: str, method: str = "GET", **fields: str
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in fields.items():
            conn.putheader(name.replace("_", "-"), value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


TRAVERSALS = [
    "/../secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2e%2Fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/hello.txt%00",
    "/escape-link",
    "/escape-dir/secret.txt",
    "/escape-dir/",
    "//../secret.txt",
    "/%2fetc%2fpasswd",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_corpus(server: HTTPServer, target: str) -> None:
    status, _, body = raw_get(server, target)
    assert status in (400, 403, 404)
    assert SECRET not in body


def test_traversal_raw_nul_byte(server: HTTPServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /hello.txt\x00x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400")
    assert b"hello world" not in data


def test_symlink_inside_root_is_served(server: HTTPServer) -> None:
    assert raw_get(server, "/inside-link")[2] == b"hello world\n"


def test_file_content_type_and_length(server: HTTPServer) -> None:
    status, fields, body = raw_get(server, "/page.html")
    assert status == 200 and body == b"<p>hi</p>"
    assert fields["Content-Type"] == "text/html"
    assert fields["Content-Length"] == "9"
    assert raw_get(server, "/sub/b.css")[1]["Content-Type"] == "text/css"


def test_listing_and_index(server: HTTPServer) -> None:
    status, fields, body = raw_get(server, "/")
    assert status == 200 and fields["Content-Type"].startswith("text/html")
    assert b"&lt;odd&gt; &amp; name.txt" in body
    assert b'href="%3Codd%3E%20%26%20name.txt"' in body
    assert b'href="sub/"' in body
    assert raw_get(server, "/%3Codd%3E%20%26%20name.txt")[2] == b"odd"
    status, fields, _ = raw_get(server, "/site")
    assert status == 301 and fields["Location"] == "/site/"
    assert raw_get(server, "/site/")[2] == b"INDEX"


def test_not_modified(server: HTTPServer, tree: Path) -> None:
    _, fields, _ = raw_get(server, "/hello.txt")
    status, fields2, body = raw_get(server, "/hello.txt", If_Modified_Since=fields["Last-Modified"])
    assert status == 304 and body == b""
    assert fields2["Last-Modified"] == fields["Last-Modified"]
    os.utime(tree / "hello.txt", (time.time() + 100, time.time() + 100))
    assert raw_get(server, "/hello.txt", If_Modified_Since=fields["Last-Modified"])[0] == 200


def test_ranges_served(server: HTTPServer) -> None:
    status, fields, body = raw_get(server, "/hello.txt", Range="bytes=6-10")
    assert (status, body) == (206, b"world")
    assert fields["Content-Range"] == "bytes 6-10/12"
    status, fields, _ = raw_get(server, "/hello.txt", Range="bytes=50-")
    assert status == 416 and fields["Content-Range"] == "bytes */12"


def test_head_and_method(server: HTTPServer) -> None:
    status, fields, body = raw_get(server, "/hello.txt", "HEAD")
    assert (status, body) == (200, b"")
    assert fields["Content-Length"] == "12"
    assert raw_get(server, "/hello.txt", "POST")[0] == 405
    assert raw_get(server, "/nope.txt")[0] == 404


def test_file_info_kinds(tree: Path) -> None:
    files = StaticFiles(str(tree))
    real_root = os.path.realpath(tree)
    assert file_info(files, real_root, "hello.txt")[0].kind == "file"
    info = file_info(files, real_root, "sub/")[0]
    assert info.kind == "dir" and info.names == ["b.css"]
    assert file_info(files, real_root, "none")[0].kind == "missing"
    assert file_info(files, real_root, "escape-link")[0].kind == "missing"


def test_read_range(tree: Path) -> None:
    path = str(tree / "hello.txt")
    assert b"".join(read_range(path, 6, 5, chunk_size=2)) == b"world"
    assert list(read_range(path, 0, 0)) == []
    assert b"".join(read_range(path, 10, 100)) == b"d\n"  # the file is shorter


# -- a large file streams in bounded memory ---------------------------------------------------

BIG = 5 * 1024 * 1024


@pytest.fixture
def big_root(tmp_path: Path) -> Path:
    pattern = bytes(range(256)) * 4096  # 1 MiB
    (tmp_path / "big.bin").write_bytes(pattern * 5)
    return tmp_path


@pytest.fixture
def big_server(big_root: Path) -> Iterator[HTTPServer]:
    srv = HTTPServer(static_handler(str(big_root)), port=0, access_log=lambda line: None)
    with srv.running():
        yield srv


def download_peak(url: str) -> tuple[int, bytes, int]:
    """(bytes received, the first 256, peak traced memory) for a urllib download."""
    tracemalloc.start()
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            head = response.read(256)
            total = len(head)
            while chunk := response.read(65536):
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return total, head, peak


def test_big_file_streams_in_bounded_memory(big_server: HTTPServer) -> None:
    total, head, peak = download_peak(big_server.url + "big.bin")
    assert total == BIG
    assert head == bytes(range(256))
    assert peak < BIG // 4  # server and client together stay far below the file size


def test_big_file_streams_in_bounded_memory_without_sendfile(big_root: Path) -> None:
    handler = static_handler(str(big_root), use_sendfile=False)
    srv = HTTPServer(handler, port=0, access_log=lambda line: None)
    with srv.running():
        total, head, peak = download_peak(srv.url + "big.bin")
    assert total == BIG
    assert head == bytes(range(256))
    assert peak < BIG // 4


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_big_file_to_curl(big_server: HTTPServer, tmp_path: Path) -> None:
    out = tmp_path / "copy.bin"
    result = subprocess.run(
        ["curl", "-sS", "-f", "-o", str(out), big_server.url + "big.bin"],
        timeout=30,
        check=False,
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == bytes(range(256)) * 4096 * 5
    ranged = subprocess.run(
        ["curl", "-sS", "-f", "-r", "1048576-1048579", big_server.url + "big.bin"],
        timeout=30,
        check=False,
        capture_output=True,
    )
    assert ranged.stdout == bytes([0, 1, 2, 3])


def test_big_file_goes_out_with_sendfile(
    big_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    calls: list[tuple[int, int | None]] = []
    original = socket.socket.sendfile

    def spy(self: socket.socket, file: object, offset: int = 0, count: int | None = None) -> int:
        calls.append((offset, count))
        return original(self, file, offset, count)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "sendfile", spy)
    status, _, body = raw_get(big_server, "/big.bin", Range="bytes=100-")
    assert status == 206 and len(body) == BIG - 100
    assert body[:3] == bytes([100, 101, 102])
    assert calls == [(100, BIG - 100)]


def test_streamed_without_sendfile(tree: Path) -> None:
    srv = HTTPServer(
        static_handler(str(tree), use_sendfile=False), port=0, access_log=lambda line: None
    )
    with srv.running():
        assert raw_get(srv, "/hello.txt", Range="bytes=0-4")[2] == b"hello"
        assert raw_get(srv, "/hello.txt")[2] == b"hello world\n"


def test_served_over_tls(tree: Path) -> None:
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    srv = HTTPServer(
        static_handler(str(tree)),
        port=0,
        tls_context=server_context,
        access_log=lambda line: None,
    )
    with srv.running():
        conn = http.client.HTTPSConnection(
            "127.0.0.1", srv.port, context=client_context, timeout=10
        )
        try:
            conn.request("GET", "/hello.txt", headers={"Range": "bytes=6-"})
            response = conn.getresponse()
            assert (response.status, response.read()) == (206, b"world\n")
        finally:
            conn.close()


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"/",
                b"..",
                b".",
                b"%2e",
                b"%2E",
                b"%2f",
                b"%5c",
                b"%00",
                b"a",
                b"\xc3\xa9",
                b"%",
                b"?",
            ]
        ),
        max_size=12,
    )
)
def test_resolve_never_escapes(pieces: list[bytes]) -> None:
    target = b"/" + b"".join(pieces)
    rel = StaticFiles("/srv/root").resolve(target)
    if isinstance(rel, StaticPlan):
        assert rel.status in (400, 404)
        return
    joined = posixpath.normpath(posixpath.join("/srv/root", rel))
    assert joined == "/srv/root" or joined.startswith("/srv/root/")
    assert "\x00" not in rel and "\\" not in rel
    assert ".." not in rel.split("/")
