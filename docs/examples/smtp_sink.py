"""An SMTP server on protomata.sync with a handler that decides what it accepts.

The handler is a plain object; the server calls the methods it has:

* ``mail_from``: senders on a block list get 550 5.7.1;
* ``rcpt_to``: only addresses in ``--domain`` are accepted, others get
  550 5.1.1 (the client learns this per recipient);
* ``message``: a message without a Subject is refused with 554 5.6.0;
  the others are stored in the Maildir ``--maildir`` by the stock
  MaildirHandler, which returns only once the file is on disk (fsync), so
  the 250 the client gets means the message is safe.

Usage: python smtp_sink.py --maildir DIR [--domain example.org] [--host 127.0.0.1] [--port 8025]

It prints the address it serves and one line per stored message, and runs
until Ctrl-C or SIGTERM, which stop it gracefully.
"""

from __future__ import annotations

import argparse
from email.parser import BytesHeaderParser

from protomata.smtp import Envelope, Reply
from protomata.sync import Maildir, MaildirHandler, SMTPServer, Timeouts

BLOCKED_SENDERS = {"spammer@example.net"}


class Handler:
    """Accept mail for one domain; store it in a Maildir."""

    def __init__(self, domain: str, maildir: Maildir) -> None:
        self.domain = domain.lower()
        self.store = MaildirHandler(maildir)

    def mail_from(self, address: str, params: tuple[tuple[str, str | None], ...]) -> Reply | None:
        """None accepts the sender (250); a Reply refuses it."""
        if address.lower() in BLOCKED_SENDERS:
            return Reply(550, "Sender blocked", "5.7.1")
        return None

    def rcpt_to(self, address: str, params: tuple[tuple[str, str | None], ...]) -> Reply | None:
        """Called once per RCPT TO; refusing one recipient leaves the others alone."""
        if address.rpartition("@")[2].lower() != self.domain:
            return Reply(550, f"Only mail for {self.domain} is accepted here", "5.1.1")
        return None

    def message(self, envelope: Envelope, data: bytes) -> Reply | None:
        """Store the message; *data* is what the client sent, dot-unstuffed, CRLF line ends."""
        headers = BytesHeaderParser().parsebytes(data)
        if headers["Subject"] is None:
            return Reply(554, "A Subject header is required", "5.6.0")
        self.store.message(envelope, data)  # returns after fsync
        recipients = ",".join(envelope.rcpt_tos)
        print(f"Stored {len(data)} bytes from <{envelope.mail_from}> to {recipients}", flush=True)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maildir", required=True, help="where accepted messages go")
    parser.add_argument("--domain", default="example.org", help="accept mail for this domain")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025, help="0 picks a free port")
    args = parser.parse_args()
    maildir = Maildir(args.maildir, "sink.example")  # created if missing
    server = SMTPServer(
        Handler(args.domain, maildir),
        args.host,
        args.port,
        hostname="sink.example",  # greeting, EHLO reply and Received: header
        max_message_size=1_000_000,  # announced as SIZE; bigger messages get 552
        timeouts=Timeouts(60.0),  # a client silent this long gets 421
    )
    print(f"Serving SMTP on {server.url}", flush=True)
    server.serve_forever()  # SIGINT/SIGTERM: stop accepting, let sessions finish
    print("Stopped", flush=True)


if __name__ == "__main__":
    main()
