"""Static files for the trio HTTP server.

The decisions (path mapping, ranges, 304, listings) come from
:class:`protomata.http._static.StaticFiles`; the filesystem look-up is the
blocking adapter's :func:`~protomata.sync._static.file_info`, run in a
worker thread, and the chosen byte range is streamed with trio's async
file reads, so a file of any size is served in bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

from .._core._ops import Call, drive_calls_async
from ..http._operations import ResponseSpec
from ..http._static import FileInfo, StaticFiles, plan_static, plan_to_spec
from ..sync._static import CHUNK_SIZE, file_info
from ._httpserver import ServerRequest

__all__ = ["read_range", "static_handler"]


async def read_range(
    path: str, offset: int, length: int, chunk_size: int = CHUNK_SIZE
) -> AsyncIterator[bytes]:
    """Yield *length* bytes of the file at *path* from *offset*, a piece at a time.

    The file is opened on the first iteration, so a HEAD request (whose
    body is never pulled) does not open it.
    """
    if length <= 0:
        return
    async with await trio.open_file(path, "rb", buffering=0) as f:
        await f.seek(offset)
        left = length
        while left > 0:
            piece = await f.read(min(chunk_size, left))
            if not piece:
                return  # the file shrank: the server ops turn this into a closed connection
            left -= len(piece)
            yield piece


def static_handler(
    root: str,
    *,
    index_files: tuple[str, ...] = ("index.html",),
    listing: bool = True,
    content_types: dict[str, str] | None = None,
) -> Callable[[ServerRequest], Awaitable[ResponseSpec]]:
    """An async handler for :class:`~protomata.trio.HTTPServer` serving *root*.

    GET and HEAD only; directory listings (unless ``listing=False``),
    index files, Last-Modified/ETag with 304, single byte ranges (206/416).
    """
    files = StaticFiles(root, index_files=index_files, listing=listing, content_types=content_types)
    real_root = os.path.realpath(root)
    if not os.path.isdir(real_root):
        raise NotADirectoryError(f"not a directory: {root}")

    async def look_up(call: Call) -> tuple[FileInfo, str]:
        return await trio.to_thread.run_sync(file_info, files, real_root, call.args[0])

    async def handle(request: ServerRequest) -> ResponseSpec:
        op = plan_static(files, request.method, request.target, request.headers)
        plan, real = await drive_calls_async(op, look_up)
        return plan_to_spec(plan, real, read_range)

    return handle
