"""``protomata send-mail`` and ``protomata fetch-mail``: the mail client commands.

Registered by :func:`add_parsers` on the top-level subparsers and run by
:func:`run`; also runnable alone as ``python -m protomata.cli._mail COMMAND ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from .._core import ProtocolError
from ..pop3._client import SASL_MECHANISMS
from ..pop3._connection import DEFAULT_MAX_LINE_LENGTH
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
    send.add_argument("--user", metavar="NAME", help="log in (AUTH) as NAME")
    send.add_argument(
        "--password", metavar="PASSWORD", help="the password for --user (XOAUTH2: the token)"
    )
    send.add_argument(
        "--auth",
        metavar="MECH",
        type=str.upper,
        choices=_SMTP_AUTH_MECHANISMS,
        help=f"the AUTH mechanism: {', '.join(_SMTP_AUTH_MECHANISMS)} "
        "(default: the strongest the server offers)",
    )
    send.add_argument("--lmtp", action="store_true", help="speak LMTP (RFC 2033)")
    send.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per connect/read (%(default)s)"
    )
    send.add_argument(
        "--io", choices=("asyncio", "trio", "sync"), default="sync", help="I/O adapter (sync)"
    )
    send.add_argument("file", nargs="?", metavar="FILE", help="the message (default: stdin)")

    fetch: argparse.ArgumentParser = commands.add_parser(
        "fetch-mail",
        help="download POP3 mail into a Maildir",
        description=(
            "Download every message of the POP3 mailbox URL (pop3://USER:PASSWORD@HOST:PORT/, "
            "or pop3s:// for TLS from the start) into the Maildir DIR, with LF line ends. "
            "Messages are streamed to disk, so their size does not matter. Each message is "
            "stored durably before it is deleted on the server (--delete)."
        ),
        epilog="Exit status: 0 ok, 1 failure, 2 usage error.",
    )
    fetch.add_argument("url", metavar="URL", help="pop3://USER:PASSWORD@HOST:PORT/")
    fetch.add_argument("--maildir", required=True, metavar="DIR", help="store messages here")
    fetch.add_argument(
        "--delete", action="store_true", help="delete the messages on the server once stored"
    )
    fetch.add_argument("--stls", action="store_true", help="require STLS before logging in")
    login = fetch.add_mutually_exclusive_group()
    login.add_argument("--apop", action="store_true", help="log in with APOP")
    login.add_argument(
        "--auth",
        metavar="MECH",
        type=str.upper,
        choices=SASL_MECHANISMS,
        help=f"log in with SASL: {', '.join(SASL_MECHANISMS)} (XOAUTH2: PASSWORD is the token)",
    )
    fetch.add_argument(
        "--insecure", action="store_true", help="do not verify TLS certificates (testing only)"
    )
    fetch.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per connect/read (%(default)s)"
    )
    fetch.add_argument(
        "--max-line-length",
        type=int,
        default=DEFAULT_MAX_LINE_LENGTH,
        metavar="BYTES",
        help="longest message line accepted (%(default)s)",
    )
    fetch.add_argument(
        "--io", choices=("asyncio", "trio", "sync"), default="sync", help="I/O adapter (sync)"
    )


def send_mail(args: argparse.Namespace) -> int:
    """Run ``send-mail``; return the exit status."""
    from ..smtp._operations import SMTPError

    if (args.user is None) != (args.password is None):
        raise UsageError("--user and --password go together")
    if args.auth is not None and args.user is None:
        raise UsageError("--auth needs --user and --password")
    if args.file is None:
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(args.file, "rb") as file:
                data = file.read()
        except OSError as exc:
            raise CLIError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    host, port = args.server
    try:
        if args.io == "asyncio":
            import asyncio

            from ..asyncio._smtpclient import SMTPClient as AsyncioClient

            result = asyncio.run(_send_async(AsyncioClient, args, data))
        elif args.io == "trio":
            try:
                import trio
            except ImportError:
                raise CLIError("--io trio needs trio: pip install 'protomata[trio]'") from None
            from ..trio._smtpclient import SMTPClient as TrioClient

            result = trio.run(_send_async, TrioClient, args, data)
        else:
            result = _send_sync(args, data)
    except (SMTPError, ProtocolError) as exc:
        raise CLIError(str(exc)) from exc
    except ssl.SSLError as exc:
        raise CLIError(f"TLS failed: {exc}") from exc
    except OSError as exc:
        raise CLIError(f"cannot send to {host}:{port}: {exc.strerror or exc}") from exc
    for recipient in args.recipients:
        reply = result.refused.get(recipient)
        if reply is None:
            print(f"{recipient}: accepted")
        else:
            print(f"{recipient}: refused: {reply.code} {reply.text}")
    sys.stdout.flush()
    return EXIT_FAILURE if result.refused else EXIT_OK


_SMTP_AUTH_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")


def _smtp_client_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "tls": args.tls,
        "starttls": "required" if args.starttls else "never",
        "verify": not args.insecure,
        "timeout": args.timeout,
        "lmtp": args.lmtp,
    }


def _smtp_login_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.auth == "XOAUTH2":
        return {"mechanism": "XOAUTH2", "token": args.password}
    return {"password": args.password, "mechanism": args.auth}


def _send_sync(args: argparse.Namespace, data: bytes) -> Any:
    """Send with the blocking client; the :class:`SendResult`."""
    from ..sync._mailclients import SMTPClient

    with SMTPClient(*args.server, **_smtp_client_options(args)) as client:
        if args.user is not None:
            client.login(args.user, **_smtp_login_args(args))
        return client.send_message(data, args.sender, args.recipients)


async def _send_async(client_class: Any, args: argparse.Namespace, data: bytes) -> Any:
    """Send with an asyncio or trio client; the :class:`SendResult`."""
    async with client_class(*args.server, **_smtp_client_options(args)) as client:
        if args.user is not None:
            await client.login(args.user, **_smtp_login_args(args))
        return await client.send_message(data, args.sender, args.recipients)


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


class _MaildirDelivery:
    """One message streamed into a Maildir: ``tmp/``, fsync, rename into ``new/``.

    Pieces arrive with CRLF line ends split anywhere; they are stored with
    LF (the Maildir convention), a CR at the end of a piece held back
    until the next piece shows whether an LF follows.
    """

    def __init__(self, maildir: Any) -> None:
        from ..sync._maildir import _fsync_dir

        self._fsync_dir = _fsync_dir
        name = maildir._unique_name()
        self.tmp_path = os.path.join(maildir.path, "tmp", name)
        self.new_path = os.path.join(maildir.path, "new", name)
        self.file = open(self.tmp_path, "xb")  # noqa: SIM115 - closed by commit/abort
        self._cr = False

    def write(self, piece: bytes) -> None:
        """Store the next piece of the message."""
        if self._cr:
            piece = b"\r" + piece
        self._cr = piece.endswith(b"\r")
        if self._cr:
            piece = piece[:-1]
        self.file.write(piece.replace(b"\r\n", b"\n"))

    def commit(self) -> str:
        """Make the message durable and visible in ``new/``; its path."""
        if self._cr:
            self.file.write(b"\r")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.rename(self.tmp_path, self.new_path)
        self._fsync_dir(os.path.dirname(self.new_path))
        return self.new_path

    def abort(self) -> None:
        """Drop the partly written message."""
        self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp_path)


class _ThreadedWriter:
    """Writes pieces to a delivery in a worker thread (*to_thread* is the adapter's)."""

    def __init__(self, delivery: _MaildirDelivery, to_thread: Any) -> None:
        self.delivery = delivery
        self.to_thread = to_thread

    async def write(self, piece: bytes) -> None:
        await self.to_thread(self.delivery.write, piece)


class _Fetch:
    """One ``fetch-mail`` run: the mailbox, the Maildir and the messages stored so far."""

    def __init__(self, args: argparse.Namespace, maildir: Any) -> None:
        self.args = args
        self.host, self.port, self.tls, self.user, self.password = _mailbox_url(args.url)
        self.maildir = maildir
        #: the numbers of the messages stored
        self.stored: list[int] = []

    def client_args(self) -> tuple[tuple[str, int], dict[str, Any]]:
        args = self.args
        options = {
            "tls": self.tls,
            "stls": args.stls,
            "verify": not args.insecure,
            "timeout": args.timeout,
            "max_line_length": args.max_line_length,
        }
        return (self.host, self.port), options

    def run_sync(self) -> None:
        """Store every message with the blocking client."""
        from ..sync._pop3client import POP3Client

        args = self.args
        address, options = self.client_args()
        client = POP3Client(*address, **options)
        try:
            if args.auth:
                client.auth(args.auth, self.user, self.password)
            else:
                client.login(self.user, self.password, apop=args.apop)
            for msg, _size in client.list_messages():
                delivery = _MaildirDelivery(self.maildir)
                try:
                    client.retrieve_to(msg, delivery)
                    delivery.commit()
                except BaseException:
                    delivery.abort()
                    raise
                self.stored.append(msg)
                if args.delete:
                    client.delete(msg)
        except BaseException:
            client.close()  # no QUIT: nothing is deleted
            raise
        client.quit()

    async def run_async(self, client_class: Any, to_thread: Any) -> None:
        """Store every message with an async client; file work runs in worker threads."""
        args = self.args
        address, options = self.client_args()
        client = client_class(*address, **options)
        await client.connect()
        try:
            if args.auth:
                await client.auth(args.auth, self.user, self.password)
            else:
                await client.login(self.user, self.password, apop=args.apop)
            for msg, _size in await client.list_messages():
                delivery = await to_thread(_MaildirDelivery, self.maildir)
                try:
                    await client.retrieve_to(msg, _ThreadedWriter(delivery, to_thread))
                    await to_thread(delivery.commit)
                except BaseException:
                    delivery.abort()
                    raise
                self.stored.append(msg)
                if args.delete:
                    await client.delete(msg)
        except BaseException:
            await client.close()  # no QUIT: nothing is deleted
            raise
        await client.quit()


def fetch_mail(args: argparse.Namespace) -> int:
    """Run ``fetch-mail``; return the exit status."""
    from ..pop3._client import POP3Error
    from ..sync._maildir import Maildir

    _host, _port, tls, _user, _password = _mailbox_url(args.url)
    if tls and args.stls:
        raise UsageError("--stls is for pop3:// URLs (pop3s:// is TLS from the start)")
    if args.max_line_length < 3:
        raise UsageError("--max-line-length must be at least 3")
    try:
        maildir = Maildir(os.path.abspath(args.maildir))
    except OSError as exc:
        raise CLIError(f"cannot use the Maildir {args.maildir}: {exc.strerror or exc}") from exc
    fetch = _Fetch(args, maildir)
    try:
        if args.io == "asyncio":
            import asyncio

            from ..asyncio._pop3client import POP3Client as AsyncioClient

            asyncio.run(fetch.run_async(AsyncioClient, asyncio.to_thread))
        elif args.io == "trio":
            try:
                import trio
            except ImportError:
                raise CLIError("--io trio needs trio: pip install 'protomata[trio]'") from None
            from ..trio._pop3client import POP3Client as TrioClient

            trio.run(fetch.run_async, TrioClient, trio.to_thread.run_sync)
        else:
            fetch.run_sync()
    except (POP3Error, ProtocolError) as exc:
        raise CLIError(f"{exc} ({len(fetch.stored)} messages stored, none deleted)") from exc
    except ssl.SSLError as exc:
        raise CLIError(f"TLS failed: {exc}") from exc
    except OSError as exc:
        raise CLIError(
            f"{fetch.host}:{fetch.port}: {exc.strerror or exc} "
            f"({len(fetch.stored)} messages stored, none deleted)"
        ) from exc
    deleted = " and deleted on the server" if args.delete else ""
    print(f"{len(fetch.stored)} messages stored in {maildir.path}{deleted}", flush=True)
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
