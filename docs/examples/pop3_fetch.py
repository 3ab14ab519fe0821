"""Download new mail with protomata.sync.POP3Client, leaving it on the server.

Mail clients that "leave messages on the server" remember which messages
they have already seen by their unique-id (UIDL), which a server keeps
stable from one session to the next.  This program does the same: it
downloads only the messages whose unique-id it has not seen before,
streams each one into its own file in DIR (never holding a whole message
in memory), and records the unique-ids in DIR/.seen.  With ``--delete`` it
deletes what it downloaded; the server removes those messages when the
session ends with QUIT, so an interrupted run deletes nothing.

Usage: python pop3_fetch.py --server HOST:PORT --user NAME --password PASSWORD --into DIR
                            [--delete] [--stls]

It prints how many messages it fetched, and how many it had seen already.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import quote

from protomata.sync import POP3Client, POP3Error


def fetch(
    host: str,
    port: int,
    user: str,
    password: str,
    into: Path,
    *,
    delete: bool = False,
    stls: bool = False,
) -> tuple[int, int]:
    """Download the messages not seen before into *into*; (fetched, already seen)."""
    into.mkdir(parents=True, exist_ok=True)
    seen_file = into / ".seen"
    seen = set(seen_file.read_text().split()) if seen_file.exists() else set()
    fetched = known = 0
    # The constructor connects and reads the greeting (and upgrades with STLS).
    # Leaving the with block sends QUIT, which commits the deletions; after an
    # error it only closes the connection, and the server deletes nothing.
    with POP3Client(host, port, stls=stls, timeout=30.0) as client:
        client.login(user, password)
        for number, uid in client.uidl():
            if uid in seen:
                known += 1
                if delete:
                    client.delete(number)
                continue
            path = into / (quote(uid, safe="") + ".eml")
            with open(path, "wb") as file:
                client.retrieve_to(number, file)  # streamed piece by piece, CRLF line ends
                file.flush()
                os.fsync(file.fileno())
            seen.add(uid)
            seen_file.write_text("".join(f"{u}\n" for u in sorted(seen)))
            fetched += 1
            if delete:
                client.delete(number)
    return fetched, known


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, metavar="HOST:PORT")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--into", required=True, type=Path, metavar="DIR")
    parser.add_argument("--delete", action="store_true", help="delete what was downloaded")
    parser.add_argument("--stls", action="store_true", help="require STLS before logging in")
    args = parser.parse_args()
    host, _, port = args.server.rpartition(":")
    try:
        fetched, known = fetch(
            host,
            int(port),
            args.user,
            args.password,
            args.into,
            delete=args.delete,
            stls=args.stls,
        )
    except (POP3Error, OSError) as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    print(f"Fetched {fetched} new messages; {known} seen before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
