"""A tiny mail host on protomata.sync: mail comes in over SMTP and goes out over POP3.

Both servers share one Maildir.  The SMTP server stores each accepted
message there (on disk, fsynced, before it answers 250); the POP3 server
serves the same messages to the configured users, with unique-ids that
stay the same from session to session, and removes the messages a client
deleted only when that client ends its session with QUIT.

Usage: python pop3_mailhost.py --maildir DIR --user NAME:PASSWORD [--user ...]
                               [--host 127.0.0.1] [--smtp-port 8025] [--pop3-port 8110]

It prints both addresses, then runs until Ctrl-C or SIGTERM, which stop
both servers gracefully.
"""

from __future__ import annotations

import argparse

from protomata.sync import POP3Server, SMTPServer, Timeouts


def user(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD, not {text!r}")
    return name, password


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maildir", required=True, help="the shared Maildir (created if missing)")
    parser.add_argument("--user", type=user, action="append", required=True, help="NAME:PASSWORD")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=8025, help="0 picks a free port")
    parser.add_argument("--pop3-port", type=int, default=8110, help="0 picks a free port")
    args = parser.parse_args()
    users = dict(args.user)

    # No handler: every message goes to the Maildir (which this creates).
    smtp = SMTPServer(None, args.host, args.smtp_port, maildir=args.maildir)
    pop3 = POP3Server(
        args.host,
        args.pop3_port,
        maildir=args.maildir,
        users=users,  # USER/PASS, APOP and SASL; the password is also the APOP secret
        timeouts=Timeouts(600.0),  # RFC 1939: autologout after at least 10 minutes
    )
    print(f"Serving SMTP on {smtp.url}", flush=True)
    print(f"Serving POP3 on {pop3.url}", flush=True)
    # POP3 in a background thread; SMTP in the main thread, where it
    # handles SIGINT and SIGTERM.  Leaving the with block stops POP3 too.
    with pop3.running():
        smtp.serve_forever()
    print("Stopped", flush=True)


if __name__ == "__main__":
    main()
