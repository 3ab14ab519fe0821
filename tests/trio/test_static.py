"""Serving files with the trio static handler."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from protomata.trio import HTTPClient, HTTPServer, static_handler

from ._util import quiet, trio_test


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "hello.txt").write_bytes(b"0123456789")
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 1024)  # 256 KiB: several reads
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_bytes(b"<p>docs</p>")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "a<b>.txt").write_bytes(b"")
    outside = tmp_path.parent / (tmp_path.name + "-secret.txt")
    outside.write_bytes(b"secret")
    os.symlink(outside, tmp_path / "escape.txt")
    return tmp_path


@trio_test
async def test_static_files(site: Path) -> None:
    handler = static_handler(str(site))
    async with (
        HTTPServer(handler, port=0, access_log=quiet).running() as server,
        HTTPClient() as client,
    ):
        response = await client.get(server.url + "hello.txt")
        assert response.status == 200
        assert response.headers.get(b"content-type") == b"text/plain"
        assert await response.read() == b"0123456789"
        last_modified = response.headers.get(b"last-modified")
        assert last_modified is not None

        response = await client.get(server.url + "big.bin")
        assert await response.read() == bytes(range(256)) * 1024

        response = await client.get(server.url + "hello.txt", headers=[("Range", "bytes=2-4")])
        assert response.status == 206
        assert response.headers.get(b"content-range") == b"bytes 2-4/10"
        assert await response.read() == b"234"

        response = await client.get(server.url + "hello.txt", headers=[("Range", "bytes=20-")])
        assert response.status == 416
        await response.read()

        response = await client.get(
            server.url + "hello.txt", headers=[("If-Modified-Since", last_modified)]
        )
        assert response.status == 304
        assert await response.read() == b""

        response = await client.request("HEAD", server.url + "hello.txt")
        assert response.headers.get(b"content-length") == b"10"
        assert await response.read() == b""

        response = await client.get(server.url + "docs")
        assert response.status == 301
        assert response.headers.get(b"location") == b"/docs/"
        await response.read()
        response = await client.get(server.url + "docs/")
        assert await response.read() == b"<p>docs</p>"

        response = await client.get(server.url + "list/")
        assert b"a&lt;b&gt;.txt" in await response.read()

        for path in ("missing.txt", "escape.txt", "../x"):
            response = await client.get(server.url + path)
            assert response.status == 404, path
            assert b"secret" not in await response.read()

        response = await client.request("POST", server.url + "hello.txt", content=b"x")
        assert response.status == 405
        await response.read()


def test_static_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        static_handler(str(tmp_path / "nope"))
