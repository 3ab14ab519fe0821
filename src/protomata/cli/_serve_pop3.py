"""``protomata serve pop3``: a Maildir over POP3 (with optional STLS).

Runnable on its own as ``python -m protomata.cli._serve_pop3 ARGS`` (the
same arguments as ``protomata serve pop3``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from . import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, IO_CHOICES, CLIError, UsageError, error
from ._serve import _run as run_server

__all__ = ["add_pop3_parser", "main", "serve_pop3"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _user(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--user wants NAME:PASSWORD, not {text!r}")
    return name, password


def add_pop3_parser(protocols: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``pop3`` subcommand to the ``serve`` subparsers *protocols*."""
    configure_parser(
        protocols.add_parser(
            "pop3",
            help="a POP3 server for a Maildir",
            description=_DESCRIPTION,
            epilog=_EPILOG,
        )
    )


_DESCRIPTION = (
    "Serve the messages of a Maildir (new/ and cur/) over POP3 until SIGINT or "
    "SIGTERM. Messages deleted by a client are removed when it sends QUIT. With "
    "--tls-cert/--tls-key the server offers STLS."
)
_EPILOG = "Exit status: 0 stopped by a signal, 1 runtime failure, 2 usage error."


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve pop3`` options to *parser*."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=_port, default=8110, help="TCP port (%(default)s)")
    parser.add_argument("--maildir", metavar="DIR", required=True, help="the Maildir to serve")
    parser.add_argument(
        "--user",
        metavar="NAME:PASSWORD",
        type=_user,
        action="append",
        required=True,
        help="an account (repeat for more); the password is also the APOP secret",
    )
    parser.add_argument("--io", choices=IO_CHOICES, default="sync", help="I/O adapter (sync)")
    parser.add_argument("--tls-cert", metavar="FILE", help="offer STLS with this certificate")
    parser.add_argument("--tls-key", metavar="FILE", help="the private key for --tls-cert")


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if not args.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificate or key: {exc}") from exc
    return context


def serve_pop3(args: argparse.Namespace) -> int:
    """Run ``serve pop3``; return the exit status."""
    maildir = os.path.abspath(args.maildir)
    if not os.path.isdir(maildir):
        raise UsageError(f"--maildir {args.maildir!r} is not a directory")
    tls = _tls_context(args)
    server_class = _server_class(args.io)

    try:
        server = server_class(
            args.host, args.port, maildir=maildir, users=dict(args.user), tls_context=tls
        )
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    banner = f"Serving POP3 on {args.host}:{server.port} (maildir: {maildir})"
    with contextlib.suppress(KeyboardInterrupt):
        run_server(server, args.io, lambda: print(banner, flush=True))
    return EXIT_OK


def _server_class(io: str) -> Any:
    """The POP3Server class of the adapter *io* (all take the same arguments)."""
    if io == "asyncio":
        from ..asyncio import POP3Server as AsyncioPOP3Server

        return AsyncioPOP3Server
    if io == "trio":
        try:
            from ..trio import POP3Server as TrioPOP3Server
        except ImportError as exc:
            raise UsageError(str(exc)) from None
        return TrioPOP3Server
    from ..sync import POP3Server

    return POP3Server


def main(argv: Sequence[str] | None = None) -> int:
    """``protomata serve pop3`` as a program of its own; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="protomata serve pop3", description=_DESCRIPTION, epilog=_EPILOG
    )
    configure_parser(parser)
    args = parser.parse_args(argv)
    try:
        return serve_pop3(args)
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except CLIError as exc:
        error(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
