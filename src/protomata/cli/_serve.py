"""``protomata serve http``: a directory or an application over HTTP/1.1."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import signal
import ssl
import sys
import traceback
from collections.abc import Callable
from typing import Any

from . import EXIT_FAILURE, EXIT_OK, CLIError, UsageError

__all__ = ["adapter_module", "load_app", "serve_http", "server_tls_context"]


def load_app(spec: str) -> Any:
    """Import ``MODULE:ATTR`` (ATTR may be dotted) from the current directory too."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--app wants MODULE:ATTR, not {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from exc
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{spec} is not callable")
    return obj


def server_tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server TLS context of ``--tls-cert``/``--tls-key``, or None without them.

    With ``--tls-client-ca`` (``serve http``) clients must present a
    certificate issued by one of those authorities.
    """
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if not args.tls_cert:
        if getattr(args, "tls_client_ca", None):
            raise UsageError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificate or key: {exc}") from exc
    client_ca = getattr(args, "tls_client_ca", None)
    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load the client certificate authorities: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def looks_asgi(app: Any) -> bool:
    """Whether *app* is a coroutine function (or an object whose ``__call__`` is)."""
    call = app if inspect.isroutine(app) or inspect.isclass(app) else type(app).__call__
    return inspect.iscoroutinefunction(call)


def _choose(args: argparse.Namespace, app: Any = None) -> tuple[str, str | None]:
    """(io, interface) after applying the defaults and checking the combination.

    Without ``--interface`` the application's kind is guessed: a coroutine
    function is ASGI, anything else WSGI.
    """
    io = args.io
    interface = args.interface
    if args.app is None:
        if interface is not None:
            raise UsageError("--interface applies to --app only")
        return io or "sync", None
    if interface is None and app is not None:
        interface = "asgi" if looks_asgi(app) else "wsgi"
    if io is None:
        io = "asyncio" if interface == "asgi" else "sync"
    if interface is None:
        interface = "wsgi" if io == "sync" else "asgi"
    if interface == "asgi" and io == "sync":
        raise UsageError("--interface asgi needs --io asyncio or --io trio")
    if interface == "wsgi" and io != "sync":
        raise UsageError("--interface wsgi needs --io sync")
    return io, interface


def adapter_module(io: str, needs: str = "HTTPServer") -> Any:
    """The adapter package ``protomata.<io>``, which must offer *needs*."""
    try:
        adapter = importlib.import_module(f"protomata.{io}")
    except ImportError as exc:
        raise UsageError(f"--io {io} is not available: {exc}") from exc
    if not hasattr(adapter, needs):
        raise UsageError(f"--io {io} has no {needs}")
    return adapter


def _build(args: argparse.Namespace, reuse_port: bool) -> tuple[Any, str, str]:
    """The server object, its adapter name and what it serves (for the banner)."""
    app = load_app(args.app) if args.app is not None else None
    io, interface = _choose(args, app)
    tls = server_tls_context(args)
    adapter = adapter_module(io)
    options: dict[str, Any] = {"tls_context": tls, "reuse_port": reuse_port}
    if args.no_access_log:
        options["access_log"] = (lambda line: None) if io == "sync" else False
    if app is not None:
        what = f"app: {args.app}, {interface}"
        if interface == "wsgi":
            from ..sync._wsgi import wsgi_handler

            handler: Any = wsgi_handler(app)
        else:
            server_class = getattr(adapter, "ASGIServer", None)
            if server_class is None:
                raise UsageError(f"--io {io} has no ASGI server yet")
            options["lifespan"] = args.lifespan
            return _listen(server_class, app, args, options), io, what
    else:
        root = os.path.abspath(args.root or ".")
        if not os.path.isdir(root):
            raise UsageError(f"--root {args.root!r} is not a directory")
        what = f"root: {root}"
        make_handler: Callable[..., Any] | None = getattr(adapter, "static_handler", None)
        if make_handler is None and io == "sync":
            from ..sync._static import static_handler as make_handler
        if make_handler is None:
            raise UsageError(f"--io {io} cannot serve static files yet")
        handler = make_handler(root)
    return _listen(adapter.HTTPServer, handler, args, options), io, what


def _listen(server_class: Any, target: Any, args: argparse.Namespace, options: Any) -> Any:
    try:
        return server_class(target, args.host, args.port, **options)
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc


def _run(server: Any, io: str, ready: Callable[[], None]) -> None:
    """Serve until SIGINT/SIGTERM (each adapter's serve_forever handles them).

    *ready* is called once the server accepts connections (the blocking
    and asyncio servers listen from construction on: connections wait in
    the backlog until the loop runs).
    """
    if io == "sync":
        ready()
        server.serve_forever()
    elif io == "asyncio":
        import asyncio

        ready()
        asyncio.run(server.serve_forever())
    else:
        import trio

        async def serve() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(server.serve_forever)
                ready()

        trio.run(serve)


def _banner(server: Any, what: str) -> str:
    return f"Serving HTTP on {server.url} ({what})"


def serve_http(args: argparse.Namespace) -> int:
    """Run ``serve http``; return the exit status."""
    if args.workers > 1:
        return _serve_workers(args)
    server, io, what = _build(args, reuse_port=False)
    _run(server, io, lambda: print(_banner(server, what), flush=True))
    return EXIT_OK


def _worker(args: argparse.Namespace, ready_w: int) -> int:
    """A forked worker's life: listen with SO_REUSEPORT, say so on *ready_w*, serve."""
    code = EXIT_FAILURE
    try:
        server, io, what = _build(args, reuse_port=True)

        def ready() -> None:
            os.write(ready_w, (_banner(server, what) + "\n").encode())
            os.close(ready_w)

        _run(server, io, ready)
        code = EXIT_OK
    except (CLIError, UsageError) as exc:
        print(f"protomata: error: {exc}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        code = EXIT_OK
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _serve_workers(args: argparse.Namespace) -> int:
    """Fork ``--workers`` processes that each listen on the port with SO_REUSEPORT."""
    if args.port == 0:
        raise UsageError("--workers needs a fixed --port (not 0)")
    if not hasattr(os, "fork") or not hasattr(signal, "SIGTERM"):
        raise UsageError("--workers needs fork(), which this platform lacks")
    _choose(args, load_app(args.app) if args.app else None)  # usage errors before forking
    server_tls_context(args)
    ready_r, ready_w = os.pipe()
    children: list[int] = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:  # the worker
            code = EXIT_FAILURE
            try:
                os.close(ready_r)
                code = _worker(args, ready_w)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)  # never return into the parent's code
        children.append(pid)
    os.close(ready_w)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    # Announce once every worker listens (or the first one failed).
    banners: list[bytes] = []
    with os.fdopen(ready_r, "rb") as ready:
        for _ in range(args.workers):
            line = ready.readline()
            if not line:
                break
            banners.append(line)
    if len(banners) < args.workers:  # a worker could not start: stop them all
        forward(signal.SIGTERM, None)
        for child in children:
            os.waitpid(child, 0)
        return EXIT_FAILURE
    print(banners[0].decode().rstrip("\n") + f" [{args.workers} workers]", flush=True)
    failed = False
    for child in children:
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        failed = failed or os.waitstatus_to_exitcode(status) != 0
    return EXIT_FAILURE if failed else EXIT_OK
