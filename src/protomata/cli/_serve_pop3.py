"""``protomata serve pop3``: a Maildir over POP3 (with optional STLS).

Runnable on its own as ``python -m protomata.cli._serve_pop3 ARGS`` (the
same arguments as ``protomata serve pop3``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from . import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, IO_CHOICES, CLIError, UsageError, error
from ._serve import _run as run_server
from ._serve import adapter_module, server_tls_context

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
    parser.add_argument(
        "--tls-cert", metavar="FILE", help="the TLS certificate: STLS is offered (or see --tls)"
    )
    parser.add_argument("--tls-key", metavar="FILE", help="the private key for --tls-cert")
    parser.add_argument(
        "--tls", action="store_true", help="TLS from the start (POP3S, port 995) instead of STLS"
    )


def serve_pop3(args: argparse.Namespace) -> int:
    """Run ``serve pop3``; return the exit status."""
    maildir = os.path.abspath(args.maildir)
    if not os.path.isdir(maildir):
        raise UsageError(f"--maildir {args.maildir!r} is not a directory")
    tls = server_tls_context(args)
    if args.tls and tls is None:
        raise UsageError("--tls needs --tls-cert and --tls-key")
    server_class = adapter_module(args.io, "POP3Server").POP3Server

    try:
        server = server_class(
            args.host,
            args.port,
            maildir=maildir,
            users=dict(args.user),
            tls_context=tls,
            implicit_tls=args.tls,
        )
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    kind = "POP3S" if args.tls else "POP3"
    banner = f"Serving {kind} on {args.host}:{server.port} (maildir: {maildir})"
    with contextlib.suppress(KeyboardInterrupt):
        run_server(server, args.io, lambda: print(banner, flush=True))
    return EXIT_OK


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
