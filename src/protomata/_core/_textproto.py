"""Framing shared by the line-oriented text protocols (SMTP, POP3, NNTP, FTP ...).

Theory of operation
-------------------
Three framings recur in the old text protocols and live here once:

* **Lines** (:func:`take_line`): one line ending in CRLF, bounded in length.
  ``lf_ok`` decides whether a bare LF also ends a line (tolerant readers of
  replies) or is just a byte inside the line (strict command readers, which
  then reject it themselves).
* **Dot-stuffed blocks** (RFC 5321 4.5.2, RFC 1939 3): a block of lines
  ended by a line holding a single ``"."``; a line that starts with ``"."``
  gets one extra ``"."`` on the wire.  :class:`DotUnstuffer` decodes
  incrementally; :class:`DotStuffer` and :func:`dot_stuff` encode.
* **Numeric replies** (RFC 5321 4.2, RFC 959 4.2, RFC 3977 3.2):
  ``250-first`` continuation lines then ``250 last``.  :class:`ReplyReader`
  takes one whole reply off the buffer.

Smuggling defence: only the exact bytes CRLF "." CRLF end a dot-stuffed
block.  A bare LF or bare CR never starts a line for this purpose, so
``"\\n.\\n"``, ``"\\r.\\r"``, ``"\\n.\\r\\n"`` and ``"\\r\\n.\\n"`` are body
bytes.  On the sending side we never produce a bare CR or LF at all: the
stuffer turns each into CRLF, so no receiver can disagree with us about where
our data ends.

Every reader works on a :class:`ReceiveBuffer`, consumes only what it has
fully decoded, and scans each byte a bounded number of times, so feeding one
byte at a time costs O(n) overall.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

from ._errors import RemoteProtocolError
from ._receivebuffer import ReceiveBuffer

__all__ = [
    "END_OF_BLOCK",
    "DotStuffer",
    "DotUnstuffer",
    "EndOfBlock",
    "ReplyReader",
    "dot_stuff",
    "take_line",
]


def take_line(
    buf: ReceiveBuffer,
    max_length: int,
    *,
    lf_ok: bool = False,
    hint: int = 500,
    what: str = "line",
) -> bytes | None:
    """Take one line off *buf* and return it without its line ending, or None.

    :param max_length: the longest line accepted, *including* its line
        ending (RFC 5321 counts the CRLF in its 512 and 1000 octet limits).
        A longer line raises :class:`RemoteProtocolError` with *hint* as soon
        as that is certain, however the bytes arrived.
    :param lf_ok: when true a bare LF also ends a line (a CR before it is
        stripped); when false only CRLF does and a bare LF stays in the
        returned line, for the caller to reject or keep.
    """
    if lf_ok:
        end = buf.find(b"\n", max_length, hint, what)
        if end < 0:
            return None
        line = buf.take_exactly(end)
        assert line is not None
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]
    end = buf.find(b"\r\n", max_length, hint, what)
    if end < 0:
        return None
    line = buf.take_exactly(end)
    assert line is not None
    return line[:-2]


class EndOfBlock(enum.Enum):
    """Type of :data:`END_OF_BLOCK`, returned once a dot-stuffed block is over."""

    END_OF_BLOCK = "END_OF_BLOCK"

    def __repr__(self) -> str:
        return self.value


#: Returned by :meth:`DotUnstuffer.read` once the terminating line was consumed.
END_OF_BLOCK: Final = EndOfBlock.END_OF_BLOCK

_CR = 0x0D
_DOT = 0x2E
_TERMINATOR = b".\r\n"
# Lines in 2 KiB from which DotUnstuffer decodes in bulk (lines of 256 bytes
# or less on average: there bulk is faster, for longer ones the line loop).
_BULK_MIN_LINES = 8


def _lines_fit(data: bytearray, start: int, stop: int, room: int, max_line: int) -> bool:
    """Whether every line of ``data[start:stop]`` (which ends with CRLF) fits.

    The first line has *room* bytes, CRLF included, the others *max_line*.
    Each step looks for the last CRLF inside one window of the allowed
    size (a reverse search, far cheaper than splitting the lines out): if
    there is none, the line that starts the window is too long; if there
    is one, every line up to it fits.
    """
    while stop - start > room:
        end = data.rfind(b"\r\n", start, start + room)
        if end < 0:
            return False
        start = end + 2
        room = max_line
    return True


class DotUnstuffer:
    """Incremental decoder of one dot-stuffed block (SMTP DATA, POP3 RETR ...).

    Call :meth:`read` whenever bytes arrive.  The decoded body keeps its
    CRLF line endings, including the CRLF that precedes the final ``"."``
    line (it belongs to the last body line); an empty block decodes to
    nothing.  Bytes after the terminator are left in the buffer.

    :param max_line_length: the longest line *on the wire*, CRLF and any
        stuffing dot included (RFC 5321 4.5.3.1.6: 1000).  Longer lines raise
        :class:`RemoteProtocolError` with *line_hint*.
    :param max_size: the most decoded body bytes accepted, or None for no
        limit; beyond it :class:`RemoteProtocolError` with *size_hint*.
    """

    __slots__ = (
        "_at_line_start",
        "_done",
        "_failure",
        "_line_length",
        "line_hint",
        "max_line_length",
        "max_size",
        "size",
        "size_hint",
    )

    def __init__(
        self,
        max_line_length: int = 1000,
        max_size: int | None = None,
        *,
        line_hint: int = 500,
        size_hint: int = 552,
    ) -> None:
        self.max_line_length = max_line_length
        self.max_size = max_size
        self.line_hint = line_hint
        self.size_hint = size_hint
        #: Decoded body bytes handed out so far.
        self.size = 0
        self._at_line_start = True
        self._line_length = 0
        self._done = False
        # (message, hint) of a limit already crossed: raised by the next read.
        self._failure: tuple[str, int] | None = None

    @property
    def done(self) -> bool:
        """Whether the terminating ``"."`` line has been consumed."""
        return self._done

    def read(self, buf: ReceiveBuffer) -> bytes | EndOfBlock | None:
        """Decode what *buf* holds.

        Returns a non-empty chunk of body bytes, :data:`END_OF_BLOCK` once the
        block is over (and on every later call), or None when more bytes are
        needed.  A final chunk and the end may come from two calls.

        A limit is enforced the same way however the bytes arrived: the body
        bytes before the point where a line (or the body) crosses its limit
        are handed out, and the call after them raises.
        """
        failure = self._failure
        if failure is not None:
            raise RemoteProtocolError(*failure)
        if self._done:
            return END_OF_BLOCK
        data = buf._data  # same package: read in place, consume with skip()
        size = len(data)
        pos = 0
        pieces: list[bytes | bytearray] = []
        line_length = self._line_length
        max_line = self.max_line_length
        bulk = data.count(b"\r\n", 0, 2048) >= _BULK_MIN_LINES
        while pos < size:
            if self._at_line_start:
                if data[pos] == _DOT:
                    head = data[pos : pos + 3]
                    if head == _TERMINATOR:
                        pos += 3
                        self._done = True
                        break
                    if _TERMINATOR.startswith(head):
                        break  # "." or ".\r": wait for the byte that decides
                    pos += 1  # a stuffing dot: drop it, count it on the wire
                    line_length = 1
                else:
                    line_length = 0
                self._at_line_start = False
                # The lines that are complete before the terminator (or
                # before the last CRLF) in bulk: no line-start dot among
                # them can end the block, so every one is a stuffing dot.
                # Bulk work costs by the byte and the loop below by the
                # line, so only short lines (the first 2 KiB tell) go here.
                if not bulk:
                    stop = 0
                else:
                    bulk = False  # once per call: what follows is the tail
                    term = data.find(b"\r\n.\r\n", pos)
                    stop = term + 2 if term >= 0 else data.rfind(b"\r\n", pos) + 2
                # The first line's dot, if any, is counted in line_length.
                # If some line is too long, the line by line path says which.
                if stop > pos + 2 and _lines_fit(data, pos, stop, max_line - line_length, max_line):
                    lines = bytes(data[pos:stop])
                    if b"\r\n." in lines:
                        # split and join: half the time of bytes.replace here
                        lines = b"\r\n".join(lines.split(b"\r\n."))
                    pieces.append(lines)
                    pos = stop
                    line_length = 0
                    self._at_line_start = True
                    continue
            end = data.find(b"\r\n", pos)
            if end < 0:
                # Hold back a trailing CR: it may start the CRLF of this line.
                stop = size - 1 if data[size - 1] == _CR else size
            else:
                stop = end + 2
            if line_length + stop - pos > max_line:
                keep = max_line - line_length
                if keep > 0:
                    pieces.append(data[pos : pos + keep])
                    pos += keep
                    line_length += keep
                self._failure = (
                    f"text line exceeds the limit of {max_line} bytes",
                    self.line_hint,
                )
                break
            line_length += stop - pos
            if stop > pos:
                pieces.append(data[pos:stop])
            pos = stop
            if end < 0:
                break
            self._at_line_start = True
        self._line_length = line_length
        chunk = b"".join(pieces)
        if pos:
            buf.skip(pos)
        max_size = self.max_size
        if max_size is not None and self.size + len(chunk) > max_size:
            chunk = chunk[: max_size - self.size]
            self._failure = (f"message exceeds the limit of {max_size} bytes", self.size_hint)
        if chunk:
            self.size += len(chunk)
            return chunk
        failure = self._failure
        if failure is not None:
            raise RemoteProtocolError(*failure)
        return END_OF_BLOCK if self._done else None


class DotStuffer:
    """Incremental encoder of a dot-stuffed block, for sending.

    :meth:`feed` returns the wire bytes for each piece of body;
    :meth:`finish` returns the rest, ending with the terminating line.
    Line endings are normalized: CRLF stays, and each bare CR or bare LF
    becomes CRLF, so the output never contains a bare CR or LF.  A body
    that does not end in a line ending gets a CRLF before the terminator.
    A body that ends in CRLF and has no bare CR or LF therefore survives a
    round trip through :class:`DotUnstuffer` byte for byte.
    """

    __slots__ = ("_at_line_start", "_pending_cr")

    def __init__(self) -> None:
        self._at_line_start = True
        self._pending_cr = False

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        """Return the wire form of the next piece of body (maybe ``b""``)."""
        chunk = bytes(data)
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if chunk.endswith(b"\r"):
            # The CR may be the first half of a CRLF split across pieces.
            chunk = chunk[:-1]
            self._pending_cr = True
        if not chunk:
            return b""
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        chunk = chunk.replace(b"\n", b"\r\n")
        chunk = chunk.replace(b"\n.", b"\n..")
        if self._at_line_start and chunk.startswith(b"."):
            chunk = b"." + chunk
        self._at_line_start = chunk.endswith(b"\n")
        return chunk

    def finish(self) -> bytes:
        """Return the remaining wire bytes and the terminating ``.CRLF`` line."""
        if self._pending_cr:
            self._pending_cr = False
            self._at_line_start = True
            return b"\r\n.\r\n"
        end = b".\r\n" if self._at_line_start else b"\r\n.\r\n"
        self._at_line_start = True
        return end


def dot_stuff(data: bytes | bytearray | memoryview) -> bytes:
    """The complete wire form of *data* as one dot-stuffed block.

    Includes the terminating ``".\\r\\n"`` line; see :class:`DotStuffer` for
    how line endings are normalized.
    """
    stuffer = DotStuffer()
    return stuffer.feed(data) + stuffer.finish()


_DIGITS = frozenset(b"0123456789")


class ReplyReader:
    """Takes complete numeric replies (``250-a`` ... ``250 z``) off a buffer.

    A reply is returned as ``(code, lines)``: the three-digit code and the
    text of each line (after the code and its separator), decoded as UTF-8
    with invalid bytes replaced.  Every line must carry the same code and
    start with three digits followed by ``"-"``, ``" "`` or the line end
    (RFC 5321 4.2.1); anything else raises :class:`RemoteProtocolError`.
    Lines are read with :func:`take_line`; state survives between calls, so
    a long multi-line reply fed byte by byte is scanned once.

    :param max_line_length: the longest reply line, line ending included.
    :param max_lines: the most lines in one reply.
    :param lf_ok: accept a bare LF as a line ending (many real servers
        send them; a reply has no embedded data to smuggle).
    :param first_digits: the digits a reply code may start with.
    """

    __slots__ = ("_code", "_lines", "first_digits", "lf_ok", "max_line_length", "max_lines")

    def __init__(
        self,
        max_line_length: int = 2048,
        max_lines: int = 1000,
        *,
        lf_ok: bool = True,
        first_digits: bytes = b"12345",
    ) -> None:
        self.max_line_length = max_line_length
        self.max_lines = max_lines
        self.lf_ok = lf_ok
        self.first_digits = first_digits
        self._code: bytes | None = None
        self._lines: list[str] = []

    def read(self, buf: ReceiveBuffer) -> tuple[int, list[str]] | None:
        """Return the next complete reply, or None if more bytes are needed."""
        while True:
            line = take_line(
                buf, self.max_line_length, lf_ok=self.lf_ok, hint=500, what="reply line"
            )
            if line is None:
                return None
            code = line[:3]
            sep = line[3:4]
            if (
                len(code) < 3
                or code[0] not in self.first_digits
                or not _DIGITS.issuperset(code)
                or sep not in (b"-", b" ", b"")
            ):
                raise RemoteProtocolError(f"malformed reply line {line[:80]!r}")
            if self._code is not None and code != self._code:
                raise RemoteProtocolError(
                    f"reply code changed from {self._code.decode()} to {code.decode()}"
                )
            if len(self._lines) >= self.max_lines:
                raise RemoteProtocolError(f"reply has more than {self.max_lines} lines")
            self._code = code
            self._lines.append(line[4:].decode("utf-8", "replace"))
            if sep != b"-":
                lines = self._lines
                self._code = None
                self._lines = []
                return int(code), lines

    @property
    def pending(self) -> bool:
        """Whether part of a multi-line reply has been read."""
        return self._code is not None


# Literal type of the end marker, for annotations in protocol packages.
EndOfBlockType = Literal[EndOfBlock.END_OF_BLOCK]
