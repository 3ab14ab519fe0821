"""The receive buffer every parser reads from.

Theory of operation
-------------------
Bytes from the peer are appended to one :class:`bytearray`.  Consumers take
bytes off the front (``del buf[:n]`` is cheap in CPython: bytearray keeps a
moving start offset) in three ways:

* exact-length reads (:meth:`ReceiveBuffer.take_exactly`) and bounded reads
  (:meth:`ReceiveBuffer.take_at_most`) for bodies and literals;
* delimiter searches (:meth:`ReceiveBuffer.take_through`,
  :meth:`ReceiveBuffer.take_through_match`) for lines and header blocks.

A delimiter search that fails remembers how far it looked, so the next
search after more data arrives starts just before the old end instead of at
the front.  Feeding a message one byte at a time therefore costs O(n) in
total, not O(n^2).  ``bytes_scanned`` counts the bytes searched so tests can
prove that without a clock.

Every search takes a ``limit``: once the bytes before the delimiter would
exceed it, the search raises :class:`RemoteProtocolError` carrying the
caller's status hint, whether the bytes arrived in one piece or many.
"""

from __future__ import annotations

import re

from ._errors import RemoteProtocolError

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    """A growable byte buffer with incremental, bounded delimiter search."""

    __slots__ = ("_data", "_resume", "bytes_scanned")

    def __init__(self) -> None:
        self._data = bytearray()
        # Offset where the next delimiter search starts; nothing before it
        # (less a delimiter's length of overlap) can hold the delimiter.
        self._resume = 0
        #: Total bytes examined by delimiter searches (for complexity tests).
        self.bytes_scanned = 0

    # -- feeding and inspecting ------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer."""
        self._data += data

    def __iadd__(self, data: bytes | bytearray | memoryview) -> ReceiveBuffer:
        self._data += data
        return self

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __bytes__(self) -> bytes:
        return bytes(self._data)

    def peek(self, n: int) -> bytes:
        """Return up to *n* bytes from the front without consuming them."""
        return bytes(self._data[:n])

    def startswith(self, prefix: bytes | tuple[bytes, ...]) -> bool:
        """Whether the unconsumed bytes begin with *prefix* (or one of them)."""
        return self._data.startswith(prefix)

    # -- consuming ------------------------------------------------------

    def _take(self, n: int) -> bytes:
        data = self._data
        out = bytes(data[:n])
        del data[:n]
        self._resume = 0
        return out

    def skip(self, n: int) -> None:
        """Discard *n* bytes from the front."""
        del self._data[:n]
        self._resume = 0

    def take_exactly(self, n: int) -> bytes | None:
        """Take exactly *n* bytes, or return None if fewer are buffered."""
        if len(self._data) < n:
            return None
        return self._take(n)

    def take_at_most(self, n: int) -> bytes | None:
        """Take up to *n* bytes, or return None if the buffer is empty."""
        if not self._data:
            return None
        return self._take(n)

    def take_all(self) -> bytes:
        """Take everything buffered (possibly ``b""``)."""
        return self._take(len(self._data))

    # -- delimiter search -----------------------------------------------

    def _too_long(self, limit: int, hint: int, what: str) -> RemoteProtocolError:
        return RemoteProtocolError(f"{what} exceeds the limit of {limit} bytes", hint)

    def find(self, delimiter: bytes, limit: int, hint: int = 400, what: str = "line") -> int:
        """Return the offset just past the first *delimiter*, or -1.

        Raises :class:`RemoteProtocolError` (with *hint*) when the bytes up
        to and including the delimiter are, or must become, longer than
        *limit*.
        """
        data = self._data
        start = self._resume
        end = data.find(delimiter, start)
        if end < 0:
            size = len(data)
            self.bytes_scanned += size - start
            if size > limit:
                raise self._too_long(limit, hint, what)
            self._resume = max(0, size - len(delimiter) + 1)
            return -1
        end += len(delimiter)
        self.bytes_scanned += end - start
        if end > limit:
            raise self._too_long(limit, hint, what)
        return end

    def take_through(
        self, delimiter: bytes, limit: int, hint: int = 400, what: str = "line"
    ) -> bytes | None:
        """Take the bytes up to and including *delimiter*, or return None."""
        end = self.find(delimiter, limit, hint, what)
        if end < 0:
            return None
        return self._take(end)

    def take_through_match(
        self,
        pattern: re.Pattern[bytes],
        overlap: int,
        limit: int,
        hint: int = 400,
        what: str = "header block",
    ) -> bytes | None:
        """Take the bytes through the first match of *pattern*, or return None.

        *overlap* is the longest match minus one: how far back from the end a
        later search must restart so a match split across two feeds is found.
        """
        data = self._data
        start = self._resume
        match = pattern.search(data, start)
        if match is None:
            size = len(data)
            self.bytes_scanned += size - start
            if size > limit:
                raise self._too_long(limit, hint, what)
            self._resume = max(0, size - overlap)
            return None
        end = match.end()
        self.bytes_scanned += end - start
        if end > limit:
            raise self._too_long(limit, hint, what)
        return self._take(end)

    def give_back_after_bare_end(self, block: bytes) -> bytes:
        """Undo an *unchecked* :meth:`take_header_block` that went too far.

        If *block* holds an empty line ``\\n\\n`` before its end, the
        bytes after it go back to the front of the buffer and the block up
        to it is returned; otherwise *block* itself.
        """
        lf_end = block.find(b"\n\n")
        if lf_end < 0 or lf_end + 2 == len(block):
            return block
        self._data[0:0] = block[lf_end + 2 :]
        self._resume = 0
        return block[: lf_end + 2]

    def take_header_block(
        self, limit: int, hint: int = 400, what: str = "header block", *, unchecked: bool = False
    ) -> bytes | None:
        """Take a MIME-style header block through its empty line, or return None.

        The block ends at the first empty line, whether lines end in CRLF or
        in a bare LF (``\\n\\r\\n`` or ``\\n\\n``); callers decide whether
        bare LFs are acceptable.  A block that starts with its empty line
        is not recognized here: callers handle a leading empty line.

        With *unchecked*, a block that ends in ``\\n\\r\\n`` within *limit*
        is taken without the second search for an earlier ``\\n\\n``: for
        callers that prove the block free of bare LFs anyway, and otherwise
        call :meth:`give_back_after_bare_end` before parsing it.
        """
        data = self._data
        start = self._resume
        # "\n\r\n" covers CRLF CRLF and LF CRLF; "\n\n" covers LF LF.  Both
        # are memchr-speed searches, far cheaper than one regex.
        end = data.find(b"\n\r\n", start)
        if end >= 0:
            if unchecked and end + 3 <= limit:
                end += 3
            else:
                lf_end = data.find(b"\n\n", start, end + 1)
                end = lf_end + 2 if lf_end >= 0 else end + 3
        else:
            end = data.find(b"\n\n", start)
            if end < 0:
                size = len(data)
                self.bytes_scanned += size - start
                if size > limit:
                    raise self._too_long(limit, hint, what)
                self._resume = max(0, size - 2)
                return None
            end += 2
        self.bytes_scanned += end - start
        if end > limit:
            raise self._too_long(limit, hint, what)
        if end == len(data):
            out = bytes(data)
            data.clear()
        else:
            out = bytes(data[:end])
            del data[:end]
        self._resume = 0
        return out
