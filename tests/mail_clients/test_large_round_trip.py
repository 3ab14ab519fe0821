"""A 20 MB message with long lines and dot lines, end to end and byte-exact:
protomata's SMTP client -> its SMTP server (durably into a Maildir) -> its
POP3 server -> its POP3 client, over DATA (dot-stuffed, lines within the
RFC's 1000 octets) and over BDAT (raw chunks, lines of any length)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from protomata.sync import POP3Client, POP3Server, SMTPClient, SMTPServer, Timeouts

TIMEOUT = 60.0


def make_message(line_length: int, size: int = 20_000_000) -> bytes:
    """Header, then lines of *line_length* octets (with CRLF): every third
    starts with a dot, some are a lone dot or two, some are 8-bit."""
    head = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: large\r\n\r\n"
    lines = [head]
    total = len(head)
    n = 0
    while total < size:
        if n % 97 == 0:
            line = b"."
        elif n % 89 == 0:
            line = b".."
        else:
            stem = (b"." if n % 3 == 0 else b"") + b"%08d " % n
            fill = bytes([0x61 + n % 26]) if n % 5 else "é".encode()
            line = stem + fill * ((line_length - 2 - len(stem)) // len(fill))
        lines.append(line + b"\r\n")
        total += len(line) + 2
        n += 1
    return b"".join(lines)


@pytest.mark.parametrize(("chunking", "line_length"), [(False, 998), (True, 50_000)])
def test_twenty_megabytes_round_trip(tmp_path: Path, chunking: bool, line_length: int) -> None:
    message = make_message(line_length)
    assert len(message) >= 20_000_000
    maildir = tmp_path / "Maildir"
    smtp = SMTPServer(maildir=maildir, timeouts=Timeouts(TIMEOUT))
    with smtp.running():
        with SMTPClient("127.0.0.1", smtp.port, timeout=TIMEOUT, chunking=chunking) as client:
            assert client.extensions.chunking  # offered; used only when chunking=True
            result = client.send_message(message, "a@example.com", ["b@example.com"])
        assert result.ok and set(result.accepted) == {"b@example.com"}
    # Acknowledged means on disk: read it back through POP3.
    pop3 = POP3Server(maildir=maildir, users={"b": "pw"}, timeouts=Timeouts(TIMEOUT))
    with (
        pop3.running(),
        POP3Client("127.0.0.1", pop3.port, timeout=TIMEOUT, max_line_length=65536) as box,
    ):
        box.login("b", "pw")
        assert box.stat()[0] == 1
        digest = hashlib.sha256()
        pieces = 0
        for piece in box.iter_retrieve(1):
            digest.update(piece)
            pieces += 1
            retrieved_tail = piece
    # The sink puts Return-Path and Received on top; the rest is the message.
    stored = next((maildir / "new").iterdir()).read_bytes()
    assert stored.endswith(message.replace(b"\r\n", b"\n"))
    trace = stored[: len(stored) - len(message.replace(b"\r\n", b"\n"))]
    expected = hashlib.sha256(trace.replace(b"\n", b"\r\n") + message)
    assert digest.hexdigest() == expected.hexdigest()
    assert pieces > 1 and retrieved_tail.endswith(message[-100:])
