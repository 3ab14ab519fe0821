"""Serving files with the asyncio static handler."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from protomata.asyncio import HTTPClient, HTTPServer, static_handler


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "hello.txt").write_bytes(b"0123456789")
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 1024)  # 256 KiB: several reads
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_bytes(b"<p>docs</p>")
    outside = tmp_path.parent / (tmp_path.name + "-secret.txt")
    outside.write_bytes(b"secret")
    os.symlink(outside, tmp_path / "escape.txt")
    return tmp_path


def test_static_files(site: Path) -> None:
    async def main() -> None:
        server = HTTPServer(static_handler(str(site)), port=0, access_log=False)
        async with server.running(), HTTPClient() as client:
            response = await client.get(server.url + "hello.txt")
            assert response.status == 200
            assert response.headers.get(b"content-type") == b"text/plain"
            assert await response.read() == b"0123456789"
            last_modified = response.headers.get(b"last-modified")
            assert last_modified is not None

            response = await client.get(server.url + "big.bin")
            assert await response.read() == bytes(range(256)) * 1024

            response = await client.get(server.url + "big.bin", headers=[("Range", "bytes=-3")])
            assert response.status == 206
            assert await response.read() == bytes([253, 254, 255])

            response = await client.get(server.url + "hello.txt", headers=[("Range", "bytes=20-")])
            assert response.status == 416
            await response.read()

            response = await client.get(
                server.url + "hello.txt", headers=[("If-Modified-Since", last_modified)]
            )
            assert response.status == 304
            assert await response.read() == b""

            response = await client.request("HEAD", server.url + "big.bin")
            assert response.headers.get(b"content-length") == str(256 * 1024).encode()
            assert await response.read() == b""

            response = await client.get(server.url + "docs/")
            assert await response.read() == b"<p>docs</p>"

            for path in ("missing.txt", "escape.txt", "../x", "%2e%2e/x"):
                response = await client.get(server.url + path)
                assert response.status == 404, path
                assert b"secret" not in await response.read()

    asyncio.run(main())


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        static_handler(str(tmp_path / "nope"))
