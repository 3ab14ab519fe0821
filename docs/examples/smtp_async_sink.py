"""A mail catcher for development: an async SMTP server that keeps mail in memory.

Point the application you are developing at it; every message it sends is
caught, summarized on standard output and kept in memory (not on disk:
this is a tool for testing, not a mail store).  The handler is async, as
one would be that asks a database or a directory service; it runs on the
asyncio adapter or, with ``--io trio``, on the trio adapter, unchanged.

* ``rcpt_to``: addresses of the form ``bounce-...@...`` are refused with
  550 5.1.1, so the application's handling of bad recipients can be tried;
* ``message``: each message is kept and summarized in one line.

Usage: python smtp_async_sink.py [--io asyncio|trio] [--host 127.0.0.1] [--port 8025]

It prints the address it serves, runs until Ctrl-C or SIGTERM, then
prints how many messages it caught.
"""

from __future__ import annotations

import argparse
from email.parser import BytesHeaderParser

from protomata.smtp import Envelope, Reply

Params = tuple[tuple[str, str | None], ...]


class Catcher:
    """The handler: plain or async methods, whichever the work needs."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, bytes]] = []

    async def rcpt_to(self, address: str, params: Params) -> Reply | None:
        """None accepts the recipient; a Reply refuses this one only."""
        if address.lower().startswith("bounce-"):
            return Reply(550, "No such mailbox", "5.1.1")
        return None

    async def message(self, envelope: Envelope, data: bytes) -> Reply | None:
        """Keep the message; *data* is dot-unstuffed, with CRLF line ends."""
        self.messages.append((envelope, data))
        subject = BytesHeaderParser().parsebytes(data)["Subject"]
        print(
            f"#{len(self.messages)} <{envelope.mail_from}> -> {', '.join(envelope.rcpt_tos)}:"
            f" {subject!r} ({len(data)} bytes, {envelope.protocol})",
            flush=True,
        )
        return None


async def serve_asyncio(catcher: Catcher, host: str, port: int) -> None:
    from protomata.asyncio import SMTPServer

    server = SMTPServer(catcher, host, port, hostname="catcher.example")
    # The socket listens from construction on: the address is final already.
    print(f"Serving SMTP on {server.url}", flush=True)
    await server.serve_forever()  # returns after SIGINT/SIGTERM and a graceful drain


async def serve_trio(catcher: Catcher, host: str, port: int) -> None:
    import trio

    from protomata.trio import SMTPServer

    server = SMTPServer(catcher, host, port, hostname="catcher.example")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_forever)  # returns once it accepts
        print(f"Serving SMTP on {server.url}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--io", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025, help="0 picks a free port")
    args = parser.parse_args()
    catcher = Catcher()
    if args.io == "trio":
        import trio

        trio.run(serve_trio, catcher, args.host, args.port)
    else:
        import asyncio

        asyncio.run(serve_asyncio(catcher, args.host, args.port))
    print(f"Caught {len(catcher.messages)} messages", flush=True)


if __name__ == "__main__":
    main()
