"""A server killed (SIGKILL) in the middle of a load loses no message it
acknowledged: every 250 the clients saw is a complete file in ``new/``.

Four clients send as fast as they can over one connection each (some
messages with dot lines, some large enough to take several reads); the
server is killed once a number of messages were acknowledged, while others
are in flight.  On every adapter.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

CLIENTS = 4
KILL_AFTER = 40  # acknowledged messages


def _body(client: int, number: int) -> bytes:
    size = 200 if number % 3 else 150_000
    line = b".dot line %d-%d\r\n" % (client, number)
    return line * (size // len(line))


def _client(port: int, client: int, acked: list[str], stop: threading.Event) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"220")
            sock.sendall(b"HELO load\r\n")
            assert reader.readline().startswith(b"250")
            number = 0
            while not stop.is_set():
                msg_id = f"{client}-{number}"
                stuffed = _body(client, number).replace(b".dot", b"..dot")  # every line
                sock.sendall(
                    b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
                    + b"Subject: "
                    + msg_id.encode()
                    + b"\r\n\r\n"
                    + stuffed
                    + b".\r\n"
                )
                replies = [reader.readline() for _ in range(4)]
                if not replies[-1].startswith(b"250 "):
                    return
                acked.append(msg_id)
                number += 1
    except (OSError, AssertionError):
        return  # the server is gone


@pytest.mark.parametrize("io", ["sync", "asyncio", "trio"])
def test_no_acknowledged_message_is_lost(tmp_path: Path, io: str) -> None:
    if io == "trio":
        pytest.importorskip("trio")
    maildir = tmp_path / "Maildir"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "protomata",
            "serve",
            "smtp",
            "--port",
            "0",
            "--maildir",
            str(maildir),
            "--io",
            io,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        match = re.search(r"127\.0\.0\.1:(\d+)", banner)
        assert match is not None, banner
        port = int(match.group(1))
        acked: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=_client, args=(port, n, acked, stop), daemon=True)
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acked) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # with messages in flight
        proc.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(15)
    finally:
        proc.kill()
        proc.wait()
    assert len(acked) >= KILL_AFTER
    stored: dict[str, bytes] = {}
    for path in (maildir / "new").iterdir():
        content = path.read_bytes()
        subject = re.search(rb"\nSubject: (\d+-\d+)\n\n", content)
        assert subject is not None, content[:300]
        assert subject.group(1).decode() not in stored  # stored once
        stored[subject.group(1).decode()] = content
    for msg_id in acked:
        client, number = map(int, msg_id.split("-"))
        content = stored.get(msg_id)
        assert content is not None, f"acknowledged message {msg_id} is lost"
        assert content.endswith(b"\n\n" + _body(client, number).replace(b"\r\n", b"\n")), msg_id
