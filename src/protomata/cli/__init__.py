"""The ``protomata`` command: serve files or an application, fetch URLs.

Exit codes: 0 success; 1 a runtime failure (connection refused, an HTTP
status >= 400, a port already in use, a failed TLS handshake ...); 2 a
usage error (bad arguments or option combinations); 130 interrupted
(``get`` only: ``serve`` treats SIGINT as the normal way to stop and
exits 0).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__

__all__ = ["CLIError", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

IO_CHOICES = ("asyncio", "trio", "sync")


class CLIError(Exception):
    """A runtime failure: reported as ``protomata: error: ...``, exit status 1."""


class UsageError(Exception):
    """A bad combination of arguments: reported by argparse, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``protomata`` command (every subcommand has --help)."""
    parser = argparse.ArgumentParser(
        prog="protomata",
        description="Sans-I/O internet protocols: serve and fetch over HTTP, SMTP and POP3.",
        epilog="Exit status: 0 ok, 1 runtime failure, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"protomata {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run a server", description="Run a server.")
    protocols = serve.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    http = protocols.add_parser(
        "http",
        help="an HTTP/1.1 server for a directory or a WSGI/ASGI application",
        description=(
            "Serve a directory (--root, the default is the current directory) or an "
            "application (--app MODULE:ATTR) over HTTP/1.1 until SIGINT or SIGTERM. "
            "The URL is printed on standard output once the server listens."
        ),
        epilog="Exit status: 0 stopped by a signal, 1 runtime failure, 2 usage error.",
    )
    http.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    http.add_argument("--port", type=_port, default=8000, help="TCP port (%(default)s)")
    what = http.add_mutually_exclusive_group()
    what.add_argument("--root", metavar="DIR", help="serve the files of DIR (default: .)")
    what.add_argument("--app", metavar="MODULE:ATTR", help="serve a WSGI or ASGI application")
    http.add_argument(
        "--interface",
        choices=("asgi", "wsgi"),
        help="the application's interface: asgi (needs --io asyncio|trio) or wsgi (needs "
        "--io sync); guessed when omitted: a coroutine function is ASGI",
    )
    http.add_argument(
        "--lifespan",
        choices=("auto", "on", "off"),
        default="auto",
        help="ASGI lifespan protocol: auto runs it if the app supports it (%(default)s)",
    )
    http.add_argument(
        "--io",
        choices=IO_CHOICES,
        help="I/O adapter (default: sync, or asyncio for an ASGI application)",
    )
    http.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="run N processes sharing the port with SO_REUSEPORT (default 1)",
    )
    http.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    http.add_argument("--tls-key", metavar="FILE", help="the private key for --tls-cert")
    http.add_argument(
        "--tls-client-ca",
        metavar="FILE",
        help="require TLS client certificates issued by the authorities in FILE (PEM)",
    )
    http.add_argument(
        "--no-access-log", action="store_true", help="do not log requests to standard error"
    )

    from ._serve_pop3 import add_pop3_parser
    from ._serve_smtp import add_parser as add_smtp_parser

    add_smtp_parser(protocols)
    add_pop3_parser(protocols)

    get = commands.add_parser(
        "get",
        help="download a URL",
        description=(
            "Download URL to standard output (binary-safe) or to FILE, following "
            "redirects. For a status >= 400 nothing is written and the exit status is 1."
        ),
        epilog="Exit status: 0 ok, 1 failure (connection, TLS, HTTP status >= 400), 2 usage error.",
    )
    get.add_argument("url", metavar="URL", help="an http:// or https:// URL")
    get.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE")
    get.add_argument("--io", choices=IO_CHOICES, default="sync", help="I/O adapter (sync)")
    get.add_argument(
        "-v", "--verbose", action="store_true", help="print the status line and headers to stderr"
    )
    get.add_argument(
        "--insecure", action="store_true", help="do not verify TLS certificates (testing only)"
    )
    get.add_argument(
        "--cacert", metavar="FILE", help="trust the certificate authorities in FILE (PEM)"
    )
    get.add_argument(
        "--cert", metavar="FILE", help="present this TLS client certificate (PEM; may hold the key)"
    )
    get.add_argument("--key", metavar="FILE", help="the private key for --cert")
    get.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per connect/read (%(default)s)"
    )
    get.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr: auto shows it for long downloads on a terminal",
    )
    from ._mail import add_parsers as add_mail_parsers

    add_mail_parsers(commands)
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def error(message: str) -> None:
    """Print the one-line error report on stderr."""
    print(f"protomata: error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with *argv* (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            if args.protocol == "smtp":
                from ._serve_smtp import serve_smtp

                return serve_smtp(args)
            if args.protocol == "pop3":
                from ._serve_pop3 import serve_pop3

                return serve_pop3(args)
            from ._serve import serve_http

            return serve_http(args)
        if args.command in ("send-mail", "fetch-mail"):
            from ._mail import run as run_mail

            return run_mail(args)
        from ._get import get

        return get(args)
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except CLIError as exc:
        error(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        # A client interrupted mid-transfer failed; a server stopped by ^C did its job.
        return EXIT_INTERRUPTED if args.command in ("get", "send-mail", "fetch-mail") else EXIT_OK
