"""Send a personal message to each of many recipients with protomata.asyncio.SMTPClient.

A few SMTP sessions run at once (``--sessions``); each one sends message
after message over its connection, taking the next recipient from a shared
queue, so a thousand messages do not need a thousand connections.  A
refused recipient or a refused message is reported and the session goes
on; a broken connection is reopened by the client on its next message.

Usage: python smtp_async_send.py --server HOST:PORT --from ADDR [--sessions 3] ADDR [ADDR ...]

It prints one line per recipient, in the order given, and exits with
status 1 if any message was not accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from email.message import EmailMessage

from protomata.asyncio import SMTPClient, SMTPError


def personal_message(sender: str, recipient: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = "Your weekly report"
    message.set_content(f"Hello {recipient.partition('@')[0]},\n\nall is well.\n")
    return message


async def send_all(
    host: str, port: int, sender: str, recipients: list[str], sessions: int = 3
) -> dict[str, str]:
    """Send one message to each recipient; what happened, by recipient."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for recipient in recipients:
        queue.put_nowait(recipient)
    outcome: dict[str, str] = {}

    async def session() -> None:
        async with SMTPClient(host, port, starttls="if-offered", timeout=30.0) as client:
            while not queue.empty():
                recipient = queue.get_nowait()
                try:
                    result = await client.send_message(personal_message(sender, recipient))
                except SMTPError as exc:  # the sender or the message was refused
                    outcome[recipient] = f"failed: {exc}"
                    continue
                if result.ok:
                    outcome[recipient] = "accepted"
                else:
                    reply = result.refused[recipient]
                    outcome[recipient] = f"refused: {reply.code} {reply.text}"

    await asyncio.gather(*(session() for _ in range(min(sessions, len(recipients)))))
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, metavar="HOST:PORT")
    parser.add_argument("--from", dest="sender", required=True, metavar="ADDR")
    parser.add_argument("--sessions", type=int, default=3, help="connections at once (3)")
    parser.add_argument("recipients", nargs="+", metavar="ADDR")
    args = parser.parse_args()
    host, _, port = args.server.rpartition(":")
    try:
        outcome = asyncio.run(
            send_all(host, int(port), args.sender, args.recipients, args.sessions)
        )
    except OSError as exc:
        print(f"cannot connect: {exc}", file=sys.stderr)
        return 1
    for recipient in args.recipients:
        print(f"{recipient}: {outcome[recipient]}")
    return 0 if all(text == "accepted" for text in outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
