"""``protomata send-mail`` and ``protomata fetch-mail``: the mail client commands.

Registered by :func:`add_parsers` on the top-level subparsers and run by
:func:`run`; also runnable alone as ``python -m protomata.cli._mail COMMAND ...``.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from .._core import ProtocolError
from . import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CLIError, UsageError, error

__all__ = ["add_parsers", "fetch_mail", "main", "run", "send_mail"]


def _host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` (the port is required)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def add_parsers(commands: Any) -> None:
    """Add ``send-mail`` and ``fetch-mail`` to the top-level subparsers *commands*."""
    send: argparse.ArgumentParser = commands.add_parser(
        "send-mail",
        help="send a message over SMTP",
        description=(
            "Send FILE (default: standard input) unchanged over SMTP and print what "
            "happened to each recipient. TLS certificates are verified."
        ),
        epilog="Exit status: 0 all recipients accepted, 1 failure or a refused recipient, "
        "2 usage error.",
    )
    send.add_argument(
        "--server", required=True, type=_host_port, metavar="HOST:PORT", help="the SMTP server"
    )
    send.add_argument(
        "--from", dest="sender", required=True, metavar="ADDR", help="envelope sender"
    )
    send.add_argument(
        "--to",
        dest="recipients",
        action="append",
        required=True,
        metavar="ADDR",
        help="envelope recipient (repeatable)",
    )
    tls = send.add_mutually_exclusive_group()
    tls.add_argument("--starttls", action="store_true", help="require STARTTLS")
    tls.add_argument("--tls", action="store_true", help="TLS from the start (SMTPS)")
    send.add_argument(
        "--insecure", action="store_true", help="do not verify TLS certificates (testing only)"
    )
    send.add_argument("--user", metavar="NAME", help="log in (AUTH PLAIN or LOGIN) as NAME")
    send.add_argument("--password", metavar="PASSWORD", help="the password for --user")
    send.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per connect/read (%(default)s)"
    )
    send.add_argument("file", nargs="?", metavar="FILE", help="the message (default: stdin)")

    fetch: argparse.ArgumentParser = commands.add_parser(
        "fetch-mail",
        help="download POP3 mail into a Maildir",
        description=(
            "Download every message of the POP3 mailbox URL (pop3://USER:PASSWORD@HOST:PORT/, "
            "or pop3s:// for TLS from the start) into the Maildir DIR, with LF line ends. "
            "Each message is stored durably before it is deleted on the server (--delete)."
        ),
        epilog="Exit status: 0 ok, 1 failure, 2 usage error.",
    )
    fetch.add_argument("url", metavar="URL", help="pop3://USER:PASSWORD@HOST:PORT/")
    fetch.add_argument("--maildir", required=True, metavar="DIR", help="store messages here")
    fetch.add_argument(
        "--delete", action="store_true", help="delete the messages on the server once stored"
    )
    fetch.add_argument("--stls", action="store_true", help="require STLS before logging in")
    fetch.add_argument("--apop", action="store_true", help="log in with APOP")
    fetch.add_argument(
        "--insecure", action="store_true", help="do not verify TLS certificates (testing only)"
    )
    fetch.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per connect/read (%(default)s)"
    )


def send_mail(args: argparse.Namespace) -> int:
    """Run ``send-mail``; return the exit status."""
    from ..sync._mailclients import SMTPClient, SMTPError, SMTPRecipientsRefused

    if (args.user is None) != (args.password is None):
        raise UsageError("--user and --password go together")
    if args.file is None:
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(args.file, "rb") as file:
                data = file.read()
        except OSError as exc:
            raise CLIError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    host, port = args.server
    client = SMTPClient(
        host,
        port,
        tls=args.tls,
        starttls="required" if args.starttls else "never",
        verify=not args.insecure,
        timeout=args.timeout,
        username=args.user,
        password=args.password,
    )
    try:
        refused = client.send_message(data, args.sender, args.recipients)
    except SMTPRecipientsRefused as exc:
        refused = exc.refused
    except (SMTPError, ProtocolError) as exc:
        raise CLIError(str(exc)) from exc
    except ssl.SSLError as exc:
        raise CLIError(f"TLS failed: {exc}") from exc
    except OSError as exc:
        raise CLIError(f"cannot send to {host}:{port}: {exc.strerror or exc}") from exc
    for recipient in args.recipients:
        reply = refused.get(recipient)
        if reply is None:
            print(f"{recipient}: accepted")
        else:
            print(f"{recipient}: refused: {reply.code} {reply.text}")
    sys.stdout.flush()
    return EXIT_FAILURE if refused else EXIT_OK


def _mailbox_url(url: str) -> tuple[str, int, bool, str, str]:
    """Host, port, implicit TLS, user and password of a pop3:// or pop3s:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("pop3", "pop3s", "pop", "pops"):
        raise UsageError(f"expected a pop3:// or pop3s:// URL, not {url!r}")
    tls = parts.scheme in ("pop3s", "pops")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"bad port in {url!r}") from None
    if not parts.hostname or parts.username is None or parts.password is None:
        raise UsageError("the URL needs USER:PASSWORD@HOST")
    return (
        parts.hostname,
        port or (995 if tls else 110),
        tls,
        unquote(parts.username),
        unquote(parts.password),
    )


def fetch_mail(args: argparse.Namespace) -> int:
    """Run ``fetch-mail``; return the exit status."""
    from ..smtp._maildir import to_lf
    from ..sync._maildir import Maildir
    from ..sync._pop3client import POP3Client, POP3Error

    host, port, tls, user, password = _mailbox_url(args.url)
    if tls and args.stls:
        raise UsageError("--stls is for pop3:// URLs (pop3s:// is TLS from the start)")
    try:
        maildir = Maildir(os.path.abspath(args.maildir))
    except OSError as exc:
        raise CLIError(f"cannot use the Maildir {args.maildir}: {exc.strerror or exc}") from exc
    count = 0
    try:
        client = POP3Client(
            host,
            port,
            tls=tls,
            stls=args.stls,
            verify=not args.insecure,
            timeout=args.timeout,
        )
        try:
            client.login(user, password, apop=args.apop)
            for msg, _size in client.list_messages():
                maildir.deliver(to_lf(client.retrieve(msg)))
                count += 1
                if args.delete:
                    client.delete(msg)
        except BaseException:
            client.close()  # no QUIT: nothing is deleted
            raise
        client.quit()
    except (POP3Error, ProtocolError) as exc:
        raise CLIError(f"{exc} ({count} messages stored, none deleted)") from exc
    except ssl.SSLError as exc:
        raise CLIError(f"TLS failed: {exc}") from exc
    except OSError as exc:
        raise CLIError(
            f"{host}:{port}: {exc.strerror or exc} ({count} messages stored, none deleted)"
        ) from exc
    deleted = " and deleted on the server" if args.delete else ""
    print(f"{count} messages stored in {maildir.path}{deleted}", flush=True)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Run the ``send-mail`` or ``fetch-mail`` command parsed into *args*."""
    if args.command == "send-mail":
        return send_mail(args)
    return fetch_mail(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse *argv* as ``send-mail ...`` or ``fetch-mail ...``; return the exit status."""
    parser = argparse.ArgumentParser(prog="protomata")
    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except CLIError as exc:
        error(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
