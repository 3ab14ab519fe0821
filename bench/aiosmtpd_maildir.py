"""The aiosmtpd side of bench/smtp_bench.py: a Maildir sink with fsync.

    python bench/aiosmtpd_maildir.py --port P --maildir DIR [--offload]

A handler written the way an aiosmtpd user would write a durable Maildir
delivery: ``handle_DATA`` writes ``Return-Path:`` plus the message (LF line
ends, as Maildir readers expect) to ``tmp/``, fsyncs the file, renames it into
``new/`` and fsyncs ``new/``, and only then answers 250.

By default the delivery runs inside ``handle_DATA`` on the event loop, so
each fsync blocks every other session of the server (the common way, as in
aiosmtpd's documentation examples).  With ``--offload`` it runs in the loop's
default thread pool through ``run_in_executor``, so the loop keeps serving
the other sessions while a message is written.

Started by smtp_bench.py; prints one line once it listens and stops on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from aiosmtpd.controller import Controller


class MaildirHandler:
    """Deliver each message into a Maildir; acknowledge it once it is on disk."""

    def __init__(self, path: str, offload: bool) -> None:
        self.path = path
        self.offload = offload
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        self.hostname = socket.gethostname()
        self.counter = itertools.count(1)

    def deliver(self, mail_from: str | None, content: bytes) -> None:
        name = f"{int(time.time())}.{os.getpid()}_{next(self.counter)}.{self.hostname}"
        tmp_path = os.path.join(self.path, "tmp", name)
        new_path = os.path.join(self.path, "new", name)
        data = f"Return-Path: <{mail_from or ''}>\n".encode() + content.replace(b"\r\n", b"\n")
        with open(tmp_path, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.rename(tmp_path, new_path)
        directory = os.open(os.path.join(self.path, "new"), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.offload:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.deliver, envelope.mail_from, envelope.content)
        else:
            self.deliver(envelope.mail_from, envelope.content)
        return "250 Message accepted for delivery"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--offload", action="store_true", help="deliver in run_in_executor")
    args = parser.parse_args()
    handler = MaildirHandler(os.path.abspath(args.maildir), args.offload)
    controller = Controller(
        handler,
        hostname=args.host,
        port=args.port,
        server_hostname=socket.gethostname(),
        data_size_limit=32 * 1024 * 1024,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.start()
    print(f"aiosmtpd listening on {args.host}:{args.port} (maildir: {handler.path})", flush=True)
    while not stop.wait(0.5):
        pass
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
