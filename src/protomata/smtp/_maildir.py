"""The pure parts of Maildir delivery: file names and the stored text.

A Maildir (``tmp/``, ``new/``, ``cur/``) holds one file per message, named
uniquely; a message is written in ``tmp/`` and renamed into ``new/``.  The
file I/O is the adapter's (``protomata.sync``); here are only the names and
the bytes to write: the message with LF line endings, preceded by the
``Return-Path:`` and ``Received:`` trace headers (RFC 5321 4.4).
"""

from __future__ import annotations

import re

from ._server import Envelope

__all__ = ["maildir_content", "maildir_name", "received_header", "return_path_header", "to_lf"]


def maildir_name(seconds: int, pid: int, counter: int, hostname: str) -> str:
    """A unique Maildir file name ``<time>.<pid>_<counter>.<hostname>``.

    ``/`` and ``:`` in *hostname* are escaped as Maildir readers expect.
    """
    host = hostname.replace("/", "\\057").replace(":", "\\072") or "localhost"
    return f"{seconds}.{pid}_{counter}.{host}"


_BARE_CR = re.compile(rb"\r(?!\n)")


def to_lf(data: bytes) -> bytes:
    """*data* with CRLF line endings turned into LF (the Maildir convention).

    A bare CR (one not followed by LF) is kept.
    """
    # Deleting one byte value is a memchr-driven copy, several times faster
    # than replacing a two-byte pattern; it is the same thing when every CR
    # ends a line, as in nearly all mail.
    if _BARE_CR.search(data) is None:
        return data.replace(b"\r", b"")
    return data.replace(b"\r\n", b"\n")


def _clean(text: str) -> str:
    """*text* made safe for one header line (no control characters)."""
    if text.isprintable():  # the usual case: control characters are never printable
        return text
    return "".join(ch if ch >= " " and ch != "\x7f" else "?" for ch in text)


def return_path_header(sender: str) -> str:
    """The ``Return-Path:`` line for *sender* (``""`` is the null path)."""
    return f"Return-Path: <{_clean(sender)}>\n"


def received_header(envelope: Envelope, hostname: str, date: str) -> str:
    """The ``Received:`` trace header for a message of *envelope*, folded, LF-ended.

    *date* is an RFC 5322 date (the adapter knows the clock).
    """
    peer_host = _clean(envelope.peer[0]) if envelope.peer[0] else "unknown"
    helo = _clean(envelope.helo) or "unknown"
    line = f"Received: from {helo} ([{peer_host}])\n\tby {_clean(hostname)} (protomata)"
    line += f" with {envelope.protocol}"
    if len(envelope.rcpt_tos) == 1:
        line += f"\n\tfor <{_clean(envelope.rcpt_tos[0])}>"
    return f"{line};\n\t{date}\n"


def maildir_content(envelope: Envelope, data: bytes, hostname: str, date: str) -> bytes:
    """The bytes of the Maildir file for *data* received with *envelope*."""
    head = return_path_header(envelope.mail_from or "") + received_header(envelope, hostname, date)
    return head.encode("utf-8") + to_lf(data)
