"""Serving files from a directory, as pure decisions (no file I/O here).

Theory of operation: an adapter asks :meth:`StaticFiles.resolve` to map a
request target to a path relative to the root (or to an error plan), does
the filesystem work itself (``os.path.realpath`` then
:meth:`StaticFiles.inside_root`, ``stat``, ``listdir``), describes what it
found as a :class:`FileInfo`, and asks :meth:`StaticFiles.plan` what to
answer.  The :class:`StaticPlan` says which status and fields to send and
either a generated body or which byte range of the file to send.  Every
adapter (blocking, asyncio, trio) therefore answers identically; only the
way bytes leave the file differs.

Path safety: targets are split on raw ``/`` *before* percent-decoding, so
``%2F`` can never create a separator; a decoded segment that contains a
slash, a backslash or a NUL byte is refused, dot segments are resolved and
may not climb above the root, and the adapter rejects symlinks that lead
outside the (resolved) root with :meth:`StaticFiles.inside_root`.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from .._core._ops import Call, FileRange, Operation  # FileRange: re-exported for adapters
from ._headers import Headers
from ._operations import ResponseSpec

__all__ = ["CONTENT_TYPES", "FileInfo", "FileRange", "StaticFiles", "StaticPlan", "content_type"]

#: File name suffix -> media type.  A fixed table (rather than
#: :mod:`mimetypes`, which reads system files on first use) keeps answers
#: identical on every machine; pass ``content_types=`` to extend it.
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".rst": "text/plain",
    ".py": "text/x-python",
    ".csv": "text/csv",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon",
    ".bmp": "image/bmp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".tar": "application/x-tar",
    ".wasm": "application/wasm",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}

_DEFAULT_TYPE = "application/octet-stream"
_TEXT_PLAIN = b"text/plain; charset=utf-8"
_HEX = re.compile(rb"%(?![0-9A-Fa-f]{2})")  # a % not followed by two hex digits
_RANGE = re.compile(rb"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*\Z", re.IGNORECASE)


def content_type(name: str, extra: dict[str, str] | None = None) -> str:
    """The media type for file *name*, judged by its suffix."""
    suffix = posixpath.splitext(name)[1].lower()
    if extra and suffix in extra:
        return extra[suffix]
    return CONTENT_TYPES.get(suffix, _DEFAULT_TYPE)


class FileInfo:
    """What the adapter learned about a path from the filesystem.

    *kind* is ``"file"``, ``"dir"``, ``"missing"`` or ``"forbidden"``;
    *size* and *mtime* (seconds since the epoch) describe a file; *names*
    lists a directory's entries for a listing (a name ending in ``/`` is
    shown as a subdirectory).
    """

    __slots__ = ("kind", "mtime", "names", "size")

    def __init__(
        self, kind: str, size: int = 0, mtime: float = 0.0, names: list[str] | None = None
    ) -> None:
        if kind not in ("file", "dir", "missing", "forbidden"):
            raise ValueError(f"unknown file kind {kind!r}")
        self.kind = kind
        self.size = size
        self.mtime = mtime
        self.names = names

    def __repr__(self) -> str:
        return f"FileInfo({self.kind!r}, size={self.size}, mtime={self.mtime})"


class StaticPlan:
    """What to answer.

    Send *status* with *headers* (complete, including Content-Length where
    the response has a body).  If *body* is not None it is the whole body;
    otherwise send *length* bytes of the file starting at *offset* (nothing
    to read when *length* is 0, as for 304).  HEAD requests get the same
    plan; the server operations leave the body out.  ``status == 0`` means
    "look further": stat the path *redirect* (relative to the root, e.g. a
    directory's index file) and call :meth:`StaticFiles.plan` again.
    """

    __slots__ = ("body", "headers", "length", "offset", "redirect", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        offset: int = 0,
        length: int = 0,
        body: bytes | None = None,
        redirect: str | None = None,
    ) -> None:
        self.status = status
        self.headers = headers if headers is not None else []
        self.offset = offset
        self.length = length
        self.body = body
        self.redirect = redirect

    def __repr__(self) -> str:
        return (
            f"StaticPlan({self.status}, offset={self.offset}, length={self.length}, "
            f"body={self.body is not None}, redirect={self.redirect!r})"
        )


def error_plan(
    status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> StaticPlan:
    """A short plain-text error answer."""
    body = f"{status} {message}\n".encode()
    fields = [
        (b"Content-Type", _TEXT_PLAIN),
        (b"Content-Length", b"%d" % len(body)),
        *(headers or ()),
    ]
    return StaticPlan(status, fields, body=body)


class StaticFiles:
    """Decisions for serving the directory *root* over HTTP.

    :param index_files: names tried, in order, when a directory is asked for.
    :param listing: answer a directory without an index file with an HTML
        listing (otherwise 403).
    :param content_types: extra suffix -> media type entries.
    """

    def __init__(
        self,
        root: str,
        *,
        index_files: tuple[str, ...] = ("index.html",),
        listing: bool = True,
        content_types: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.index_files = index_files
        self.listing = listing
        self.content_types = content_types

    # -- mapping targets to paths ------------------------------------------------

    def resolve(self, target: bytes) -> str | StaticPlan:
        """Map a request target to a path relative to the root, or an error plan.

        The result uses ``/`` separators, has no dot segments, is
        percent-decoded (UTF-8) and keeps a trailing ``/`` if the target had
        one; the root itself is ``""``.  Bad encoding, NUL bytes or
        backslashes give 400; climbing above the root or an encoded
        separator gives 404.
        """
        path = target.partition(b"?")[0].partition(b"#")[0]
        if path.startswith((b"http://", b"https://")):  # absolute-form
            after = path.split(b"//", 1)[1]
            slash = after.find(b"/")
            path = after[slash:] if slash >= 0 else b"/"
        if not path.startswith(b"/"):
            return error_plan(400, "Bad Request")
        if b"\x00" in path or b"\\" in path or _HEX.search(path):
            return error_plan(400, "Bad Request")
        parts: list[str] = []
        for raw in path.split(b"/"):
            if not raw:
                continue
            try:
                segment = _unquote(raw).decode("utf-8")
            except UnicodeDecodeError:
                return error_plan(400, "Bad Request")
            if "\x00" in segment or "\\" in segment:
                return error_plan(400, "Bad Request")
            if "/" in segment:
                return error_plan(404, "Not Found")
            if segment == ".":
                continue
            if segment == "..":
                if not parts:
                    return error_plan(404, "Not Found")
                parts.pop()
                continue
            parts.append(segment)
        rel = "/".join(parts)
        if rel and path.endswith((b"/", b"/.", b"/..")):
            rel += "/"
        return rel

    def inside_root(self, real_path: str, real_root: str) -> bool:
        """Whether *real_path* (symlinks resolved) lies in *real_root* (resolved too)."""
        root = real_root.rstrip("/\\")
        if real_path in (root, real_root):
            return True
        return real_path.startswith((root + "/", root + "\\")) if root else True

    # -- deciding the answer ---------------------------------------------------------

    def plan(self, method: bytes, headers: Headers, rel_path: str, info: FileInfo) -> StaticPlan:
        """Decide the response to *method* on *rel_path*, described by *info*."""
        if method not in (b"GET", b"HEAD"):
            return error_plan(405, "Method Not Allowed", [(b"Allow", b"GET, HEAD")])
        kind = info.kind
        if kind == "missing":
            return error_plan(404, "Not Found")
        if kind == "forbidden":
            return error_plan(403, "Forbidden")
        if kind == "dir":
            return self._plan_dir(rel_path, info)
        if rel_path.endswith("/"):  # a file asked for as a directory
            return error_plan(404, "Not Found")
        return self._plan_file(headers, rel_path, info)

    def _plan_dir(self, rel_path: str, info: FileInfo) -> StaticPlan:
        if rel_path and not rel_path.endswith("/"):
            location = "/" + quote(rel_path, safe="/") + "/"
            body = b"Moved to " + location.encode("ascii") + b"\n"
            return StaticPlan(
                301,
                [
                    (b"Location", location.encode("ascii")),
                    (b"Content-Type", _TEXT_PLAIN),
                    (b"Content-Length", b"%d" % len(body)),
                ],
                body=body,
            )
        names = info.names or []
        present = set(names)
        for index in self.index_files:
            if index in present:
                return StaticPlan(0, redirect=rel_path + index)
        if not self.listing:
            return error_plan(403, "Forbidden")
        body = self.listing_html(rel_path, names)
        return StaticPlan(
            200,
            [
                (b"Content-Type", b"text/html; charset=utf-8"),
                (b"Content-Length", b"%d" % len(body)),
            ],
            body=body,
        )

    def listing_html(self, rel_path: str, names: list[str]) -> bytes:
        """An HTML page linking every entry of the directory *rel_path*."""
        title = html.escape("Index of /" + rel_path)
        lines = [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8">',
            f"<title>{title}</title></head><body>",
            f"<h1>{title}</h1>",
            "<ul>",
        ]
        if rel_path:
            lines.append('<li><a href="../">../</a></li>')
        for name in sorted(names, key=lambda n: (not n.endswith("/"), n)):
            is_dir = name.endswith("/")
            bare = name.rstrip("/")
            if not bare or "/" in bare:
                continue
            href = quote(bare, safe="") + ("/" if is_dir else "")
            label = html.escape(bare + ("/" if is_dir else ""))
            lines.append(f'<li><a href="{html.escape(href)}">{label}</a></li>')
        lines += ["</ul>", "</body></html>", ""]
        return "\n".join(lines).encode("utf-8", "surrogateescape")

    def _plan_file(self, headers: Headers, rel_path: str, info: FileInfo) -> StaticPlan:
        size = info.size
        seconds = int(info.mtime)
        last_modified = formatdate(seconds, usegmt=True).encode("ascii")
        etag = b'"%x-%x"' % (int(info.mtime * 1_000_000), size)  # changes within a second
        fields = [
            (b"Content-Type", content_type(rel_path, self.content_types).encode("ascii")),
            (b"Last-Modified", last_modified),
            (b"ETag", etag),
            (b"Accept-Ranges", b"bytes"),
        ]
        if _not_modified(headers, etag, seconds):
            return StaticPlan(304, fields[1:3])
        range_field = headers.get(b"range")
        if range_field is not None and _if_range_holds(headers, etag, last_modified):
            span = _parse_range(range_field, size)
            if span is None:  # unsatisfiable
                unsatisfied = [(b"Content-Range", b"bytes */%d" % size)]
                return error_plan(416, "Range Not Satisfiable", unsatisfied)
            if span is not _IGNORE:
                start, stop = span
                fields.append((b"Content-Range", b"bytes %d-%d/%d" % (start, stop - 1, size)))
                fields.append((b"Content-Length", b"%d" % (stop - start)))
                return StaticPlan(206, fields, offset=start, length=stop - start)
        fields.append((b"Content-Length", b"%d" % size))
        return StaticPlan(200, fields, offset=0, length=size)


_IGNORE = (0, -1)  # a Range field we do not act on (invalid or multi-range)


def _unquote(raw: bytes) -> bytes:
    if b"%" not in raw:
        return raw
    pieces = raw.split(b"%")
    out = [pieces[0]]
    out += [bytes((int(p[:2], 16),)) + p[2:] for p in pieces[1:]]
    return b"".join(out)


def _not_modified(headers: Headers, etag: bytes, mtime: int) -> bool:
    none_match = headers.get(b"if-none-match")
    if none_match is not None:  # takes precedence over If-Modified-Since
        tags = [t.strip() for t in none_match.split(b",")]
        return b"*" in tags or etag in tags or b"W/" + etag in tags
    since = headers.get(b"if-modified-since")
    if since is None:
        return False
    when = _parse_date(since)
    return when is not None and mtime <= when


def _parse_date(value: bytes) -> int | None:
    try:
        return int(parsedate_to_datetime(value.decode("latin-1")).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _if_range_holds(headers: Headers, etag: bytes, last_modified: bytes) -> bool:
    if_range = headers.get(b"if-range")
    if if_range is None:
        return True
    if_range = if_range.strip()
    return if_range in (etag, last_modified)


def _parse_range(value: bytes, size: int) -> tuple[int, int] | None:
    """The half-open span a single byte range selects, None if unsatisfiable,
    :data:`_IGNORE` for ranges we ignore (malformed or more than one)."""
    match = _RANGE.match(value)
    if match is None:
        return _IGNORE
    first, last = match.groups()
    if first:
        start = int(first)
        stop = int(last) + 1 if last else size
        if last and stop <= start:
            return _IGNORE  # "5-3" is invalid: ignore the field (RFC 9110 14.1.1)
        if start >= size:
            return None
        return start, min(stop, size)
    if not last:
        return _IGNORE  # "bytes=-"
    suffix = int(last)
    if suffix == 0 or size == 0:
        return None
    return max(0, size - suffix), size


def plan_static(
    files: StaticFiles, method: bytes, target: bytes, headers: Headers
) -> Operation[tuple[StaticPlan, str]]:
    """Decide the response to a request for a static file: (plan, real path).

    Yields ``Call("file_info", rel_path)``; the adapter answers with
    ``(FileInfo, real_path)`` from the filesystem (see ``file_info`` in the
    blocking adapter).  A directory's index file takes a second look-up.
    The real path is "" when the plan needs no file.
    """
    rel = files.resolve(target)
    if isinstance(rel, StaticPlan):
        return rel, ""
    info, real = yield Call("file_info", rel)
    plan = files.plan(method, headers, rel, info)
    if plan.status == 0 and plan.redirect is not None:  # a directory's index file
        info, real = yield Call("file_info", plan.redirect)
        if info.kind == "dir":
            info = FileInfo("forbidden")
        plan = files.plan(method, headers, plan.redirect, info)
    return plan, real


def plan_to_spec(
    plan: StaticPlan, real: str, read_range: Callable[[str, int, int], Any]
) -> ResponseSpec:
    """The :class:`~protomata.http._operations.ResponseSpec` for *plan*.

    *read_range(path, offset, length)* is the adapter's (sync or async)
    iterable over a file range; it is only called for plans with a file body.
    """
    if plan.body is not None:
        return ResponseSpec(plan.status, plan.headers, plan.body)
    # A file range; Content-Length is among the plan's fields (none for 304).
    return ResponseSpec(
        plan.status, plan.headers, None, stream=read_range(real, plan.offset, plan.length)
    )
