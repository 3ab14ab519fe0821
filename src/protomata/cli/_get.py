"""``protomata get``: download a URL to standard output or a file."""

from __future__ import annotations

import argparse
import contextlib
import os
import ssl
import sys
import time
from typing import IO, Any

from ..http._operations import HTTPError
from . import EXIT_OK, CLIError, UsageError

__all__ = ["Progress", "get"]


class Progress:
    """A one-line progress bar on a terminal, shown only for long downloads.

    Nothing is drawn during the first *delay* seconds, so quick downloads
    leave the terminal untouched; then at most ten updates per second.
    """

    def __init__(self, out: IO[str], total: int | None, *, delay: float = 0.5) -> None:
        self.out = out
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.delay = delay
        self._last = 0.0
        self.shown = False

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.started < self.delay or now - self._last < 0.1:
            return
        self._last = now
        self.shown = True
        self.out.write("\r" + self.line(now - self.started))
        self.out.flush()

    def line(self, elapsed: float) -> str:
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = ("#" * int(share * 30)).ljust(30)
            return f"[{bar}] {share:4.0%} {_size(self.done)}/{_size(self.total)} {_size(rate)}/s   "
        return f"{_size(self.done)} {_size(rate)}/s   "

    def finish(self) -> None:
        if self.shown:
            self.out.write("\r" + self.line(time.monotonic() - self.started) + "\n")
            self.out.flush()


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _verbose(response: Any) -> None:
    version = response.http_version.decode("ascii", "replace")
    reason = response.reason.decode("latin-1")
    lines = [f"HTTP/{version} {response.status} {reason}".rstrip()]
    lines += [
        f"{name.decode('latin-1')}: {value.decode('latin-1')}"
        for name, value in response.headers.raw_items()
    ]
    print("\n".join(lines) + "\n", file=sys.stderr, flush=True)


class _Sink:
    """Where the body goes: stdout, or FILE written via FILE.part and renamed at the end."""

    def __init__(self, output: str | None) -> None:
        self.output = output
        self.partial = f"{output}.part" if output else None
        self.file: IO[bytes] | None = None

    def open(self) -> IO[bytes]:
        if self.partial is None:
            return sys.stdout.buffer
        try:
            self.file = open(self.partial, "wb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise CLIError(f"cannot write {self.output}: {exc.strerror or exc}") from exc
        return self.file

    def commit(self) -> None:
        if self.file is not None and self.partial is not None and self.output is not None:
            self.file.close()
            os.replace(self.partial, self.output)
        else:
            sys.stdout.buffer.flush()

    def abort(self) -> None:
        if self.file is not None and self.partial is not None:
            self.file.close()
            with contextlib.suppress(OSError):
                os.unlink(self.partial)


def _progress(args: argparse.Namespace, response: Any) -> Progress | None:
    wanted = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    if not wanted:
        return None
    length = response.headers.info.content_length
    return Progress(sys.stderr, length, delay=0.0 if args.progress == "always" else 0.5)


def _verify(args: argparse.Namespace) -> bool | ssl.SSLContext:
    """The clients' ``verify``: --insecure, --cacert, --cert/--key, or the default."""
    if args.insecure and args.cacert:
        raise UsageError("--insecure and --cacert contradict each other")
    if args.key and not args.cert:
        raise UsageError("--key needs --cert")
    if not (args.cacert or args.cert):
        return not args.insecure
    try:
        context = ssl.create_default_context(cafile=args.cacert)
        if args.cert:
            context.load_cert_chain(args.cert, args.key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load a TLS certificate, key or CA file: {exc}") from exc
    if args.insecure:  # a client certificate, but no check of the server's
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _get_sync(args: argparse.Namespace, sink: _Sink) -> None:
    from ..sync import HTTPClient

    with HTTPClient(timeout=args.timeout, verify=_verify(args), follow_redirects=True) as client:
        response = client.get(args.url)
        with response:
            if args.verbose:
                _verbose(response)
            if response.status >= 400:
                raise CLIError(_status_error(args.url, response))
            out = sink.open()
            progress = _progress(args, response)
            for chunk in response.iter_bytes():
                out.write(chunk)
                if progress is not None:
                    progress.advance(len(chunk))
            if progress is not None:
                progress.finish()


async def _get_async(args: argparse.Namespace, sink: _Sink, adapter: Any) -> None:
    async with adapter.HTTPClient(
        timeout=args.timeout, verify=_verify(args), follow_redirects=True
    ) as client:
        response = await client.get(args.url)
        async with response:
            if args.verbose:
                _verbose(response)
            if response.status >= 400:
                raise CLIError(_status_error(args.url, response))
            out = sink.open()
            progress = _progress(args, response)
            async for chunk in response.iter_bytes():
                out.write(chunk)
                if progress is not None:
                    progress.advance(len(chunk))
            if progress is not None:
                progress.finish()


def _status_error(url: str, response: Any) -> str:
    reason = response.reason.decode("latin-1")
    return f"{url}: HTTP {response.status} {reason}".rstrip()


def get(args: argparse.Namespace) -> int:
    """Run ``get``; return the exit status (errors raise :class:`CLIError`)."""
    if not args.url.lower().startswith(("http://", "https://")):
        raise UsageError(f"not an http:// or https:// URL: {args.url!r}")
    sink = _Sink(args.output)
    try:
        if args.io == "sync":
            _get_sync(args, sink)
        else:
            import importlib

            try:
                adapter = importlib.import_module(f"protomata.{args.io}")
            except ImportError as exc:
                raise UsageError(f"--io {args.io} is not available: {exc}") from exc
            if not hasattr(adapter, "HTTPClient"):
                raise UsageError(f"--io {args.io} has no HTTP client yet")
            if args.io == "asyncio":
                import asyncio

                asyncio.run(_get_async(args, sink, adapter))
            else:
                import trio

                trio.run(_get_async, args, sink, adapter)
    except HTTPError as exc:
        sink.abort()
        raise CLIError(str(exc)) from exc
    except (OSError, ValueError) as exc:
        sink.abort()
        if isinstance(exc, BrokenPipeError):
            raise CLIError("output closed") from exc
        raise CLIError(f"{args.url}: {exc}") from exc
    except BaseException:
        sink.abort()
        raise
    sink.commit()
    return EXIT_OK
