"""``protomata serve smtp``: a mail sink storing messages in a Maildir.

With ``--lmtp`` the same sink speaks LMTP (RFC 2033) instead, the local
delivery protocol an MTA such as Postfix hands mail to.

Registered by :func:`add_parser` under ``serve``; also runnable alone as
``python -m protomata.cli._serve_smtp [options]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, IO_CHOICES, CLIError, UsageError, _port, error
from ._serve import _run as run_server
from ._serve import adapter_module, server_tls_context

__all__ = ["add_parser", "main", "serve_smtp"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=_port, default=8025, help="TCP port (%(default)s)")
    parser.add_argument(
        "--maildir", metavar="DIR", default="Maildir", help="store messages here (%(default)s)"
    )
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="offer AUTH PLAIN/LOGIN/CRAM-MD5 for this user (repeatable)",
    )
    parser.add_argument(
        "--tls-cert", metavar="FILE", help="the TLS certificate: STARTTLS is offered (or see --tls)"
    )
    parser.add_argument("--tls-key", metavar="FILE", help="the private key for --tls-cert")
    parser.add_argument(
        "--auth-required",
        action="store_true",
        help="refuse mail from clients that have not logged in (needs --user)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="TLS from the start (SMTPS, port 465) instead of STARTTLS",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=32 * 1024 * 1024,
        metavar="BYTES",
        help="largest message accepted (%(default)s)",
    )
    parser.add_argument(
        "--lmtp",
        action="store_true",
        help="speak LMTP (RFC 2033: LHLO, one reply per recipient) instead of SMTP",
    )
    parser.add_argument("--io", choices=IO_CHOICES, default="sync", help="I/O adapter (sync)")
    parser.add_argument(
        "--delivery",
        choices=("process", "threads"),
        default="process",
        help=(
            "with --io asyncio or trio: write the Maildir from a child process, so the "
            "event loop keeps the GIL, or from worker threads (%(default)s)"
        ),
    )


def add_parser(protocols: Any) -> argparse.ArgumentParser:
    """Add the ``smtp`` command to the ``serve`` subparsers *protocols*."""
    parser: argparse.ArgumentParser = protocols.add_parser(
        "smtp",
        help="an SMTP (or, with --lmtp, LMTP) mail sink storing messages in a Maildir",
        description=(
            "Accept mail over SMTP (or LMTP with --lmtp) and store each message in a "
            "Maildir until SIGINT or SIGTERM. The address is printed on standard output "
            "once the server listens. DSN parameters are accepted and recorded; the sink "
            "sends no delivery status notifications itself."
        ),
        epilog="Exit status: 0 stopped by a signal, 1 runtime failure, 2 usage error.",
    )
    _configure(parser)
    return parser


def _users(specs: list[str]) -> dict[str, str]:
    users: dict[str, str] = {}
    for spec in specs:
        name, sep, password = spec.partition(":")
        if not sep or not name:
            raise UsageError(f"--user wants NAME:PASSWORD, not {spec!r}")
        users[name] = password
    return users


def serve_smtp(args: argparse.Namespace) -> int:
    """Run ``serve smtp``; return the exit status."""
    if args.max_size < 1:
        raise UsageError("--max-size must be at least 1")
    users = _users(args.user)
    if args.auth_required and not users:
        raise UsageError("--auth-required needs --user")
    tls = server_tls_context(args)
    if args.tls and tls is None:
        raise UsageError("--tls needs --tls-cert and --tls-key")
    maildir = os.path.abspath(args.maildir)
    server_class = adapter_module(args.io, "SMTPServer").SMTPServer

    try:
        server = server_class(
            None,
            args.host,
            args.port,
            maildir=maildir,
            users=users,
            tls_context=tls,
            implicit_tls=args.tls,
            auth_required=args.auth_required,
            max_message_size=args.max_size,
            lmtp=args.lmtp,
        )
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    if args.delivery == "threads" and hasattr(server, "delivery_process"):
        server.delivery_process = False
    host = f"[{server.host}]" if ":" in server.host else server.host
    kind = "LMTP" if args.lmtp else "SMTPS" if args.tls else "SMTP"
    banner = f"Serving {kind} on {host}:{server.port} (maildir: {maildir})"
    with contextlib.suppress(KeyboardInterrupt):
        run_server(server, args.io, lambda: print(banner, flush=True))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Parse *argv* as ``serve smtp`` options and run; return the exit status."""
    parser = argparse.ArgumentParser(prog="protomata serve smtp")
    _configure(parser)
    args = parser.parse_args(argv)
    try:
        return serve_smtp(args)
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except CLIError as exc:
        error(str(exc))
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
