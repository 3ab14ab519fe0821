"""Static files for the blocking HTTP server.

The decisions (path mapping, ranges, 304, listings) come from
:class:`protomata.http._static.StaticFiles`; this module only looks at the
filesystem and sends the chosen byte range: with ``socket.sendfile``
(``os.sendfile`` on a plain socket, 64 KiB-or-smaller reads on TLS), or,
where the platform has no ``sendfile``, as 64 KiB reads through a streamed
:class:`~protomata.http.ResponseSpec`.  Either way a file of any size is
served in bounded memory.

The sendfile path hands a :class:`~protomata.http._static.FileRange` to the
pure :func:`~protomata.http._operations.send_body`, which frames and counts
it like any body piece; only the writing of the resulting pieces is ours.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .._core._ops import drive_calls
from ..http._operations import ResponseSpec
from ..http._static import FileInfo, StaticFiles, plan_static, plan_to_spec
from ._httpserver import ServerRequest

__all__ = ["CHUNK_SIZE", "file_info", "read_range", "send_file_range", "static_handler"]

#: bytes per read when streaming a file
CHUNK_SIZE = 65536


def file_info(files: StaticFiles, real_root: str, rel_path: str) -> tuple[FileInfo, str]:
    """Look *rel_path* up under *real_root*: (what was found, its real path).

    Symlinks are followed; a path whose real location is outside the root
    is reported as missing, so its existence is not revealed.
    """
    real = os.path.realpath(os.path.join(real_root, rel_path))
    if not files.inside_root(real, real_root):
        return FileInfo("missing"), real
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return FileInfo("missing"), real
    except (PermissionError, NotADirectoryError):
        return FileInfo("missing" if not os.path.lexists(real) else "forbidden"), real
    except OSError:
        return FileInfo("missing"), real
    if stat.S_ISDIR(st.st_mode):
        try:
            names = [
                entry.name + "/" if entry.is_dir() else entry.name for entry in os.scandir(real)
            ]
        except OSError:
            return FileInfo("forbidden"), real
        return FileInfo("dir", 0, st.st_mtime, names), real
    if not stat.S_ISREG(st.st_mode):
        return FileInfo("forbidden"), real  # devices, FIFOs, sockets
    if not os.access(real, os.R_OK):
        return FileInfo("forbidden"), real
    return FileInfo("file", st.st_size, st.st_mtime), real


def read_range(
    path: str, offset: int, length: int, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """Yield *length* bytes of the file at *path* from *offset*, a piece at a time.

    The file is opened on the first ``next()``, so a HEAD request (whose
    body is never pulled) does not open it.
    """
    if length <= 0:
        return
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        left = length
        while left > 0:
            piece = f.read(min(chunk_size, left))
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
    use_sendfile: bool = True,
) -> Callable[[ServerRequest], ResponseSpec | None]:
    """A handler for :class:`~protomata.sync.HTTPServer` serving the directory *root*.

    GET and HEAD only; directory listings (unless ``listing=False``),
    index files, Last-Modified/ETag with 304, single byte ranges (206/416).
    File bodies go out with ``sendfile`` unless *use_sendfile* is false.
    """
    files = StaticFiles(root, index_files=index_files, listing=listing, content_types=content_types)
    real_root = os.path.realpath(root)
    if not os.path.isdir(real_root):
        raise NotADirectoryError(f"not a directory: {root}")

    def handle(request: ServerRequest) -> ResponseSpec | None:
        op = plan_static(files, request.method, request.target, request.headers)
        plan, real = drive_calls(op, lambda call: file_info(files, real_root, call.args[0]))
        if use_sendfile and plan.body is None and plan.length and request.method == b"GET":
            try:
                f = open(real, "rb")  # noqa: SIM115 - closed below
            except OSError:  # gone or unreadable since we looked
                gone = files.plan(request.method, request.headers, "", FileInfo("missing"))
                return plan_to_spec(gone, real, read_range)
            with f:
                request.start_response(plan.status, plan.headers)
                send_file_range(request, f, plan.offset, plan.length)
                request.end_response()
            return None
        return plan_to_spec(plan, real, read_range)

    return handle


def send_file_range(request: ServerRequest, file: BinaryIO, offset: int, count: int) -> None:
    """Send *count* bytes of *file* from *offset* as (part of) the response body.

    The pure :func:`~protomata.http._operations.send_body` frames and counts
    the range; ``socket.sendfile`` sends it (``os.sendfile`` on a plain
    socket, reads and sends on TLS).  The response must have been started.
    """
    request.send_file(file, offset, count)
