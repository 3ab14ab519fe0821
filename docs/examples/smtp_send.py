"""Send a message with protomata.sync.SMTPClient and report what became of each recipient.

The message is built with the standard library's email package; the
client takes the sender and the recipients from its headers, uses
PIPELINING, SIZE, 8BITMIME and CHUNKING when the server offers them, and
returns one result per recipient instead of raising when some are refused.

Usage: python smtp_send.py --server HOST:PORT --from ADDR --to ADDR [--to ADDR ...]
                           [--subject TEXT] [--starttls] [--user NAME --password PASSWORD]

The body is read from standard input.  It prints one line per recipient
and exits with status 1 if any recipient was refused, 2 if the message
could not be sent at all.
"""

from __future__ import annotations

import argparse
import sys
from email.message import EmailMessage

from protomata.sync import SendResult, SMTPClient, SMTPError


def send(
    host: str,
    port: int,
    sender: str,
    recipients: list[str],
    *,
    subject: str,
    body: str,
    starttls: str = "if-offered",
    username: str | None = None,
    password: str | None = None,
) -> SendResult:
    """Send one message; the per-recipient result (SMTPError if it failed as a whole)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    # The session opens on entering the block (greeting, EHLO, STARTTLS by
    # policy, AUTH when a username is given) and ends with QUIT.
    with SMTPClient(
        host, port, starttls=starttls, username=username, password=password, timeout=30.0
    ) as client:
        return client.send_message(message)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, metavar="HOST:PORT")
    parser.add_argument("--from", dest="sender", required=True, metavar="ADDR")
    parser.add_argument("--to", dest="recipients", action="append", required=True, metavar="ADDR")
    parser.add_argument("--subject", default="A message from protomata")
    parser.add_argument("--starttls", action="store_true", help="require STARTTLS")
    parser.add_argument("--user", help="log in as this user (with --password)")
    parser.add_argument("--password")
    args = parser.parse_args()
    host, _, port = args.server.rpartition(":")
    try:
        result = send(
            host,
            int(port),
            args.sender,
            args.recipients,
            subject=args.subject,
            body=sys.stdin.read(),
            starttls="required" if args.starttls else "if-offered",
            username=args.user,
            password=args.password,
        )
    except (SMTPError, OSError) as exc:
        print(f"not sent: {exc}", file=sys.stderr)
        return 2
    for address in args.recipients:
        if address in result.accepted:
            print(f"{address}: accepted")
        else:
            reply = result.refused[address]  # the server's reply to this RCPT TO
            status = f"{reply.enhanced_status} " if reply.enhanced_status else ""
            print(f"{address}: refused: {reply.code} {status}{reply.text}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
