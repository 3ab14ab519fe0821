"""ReceiveBuffer: exact and bounded reads, delimiter searches, limits, linear cost."""

from __future__ import annotations

import re

import pytest

from protomata import RemoteProtocolError
from protomata._core import ReceiveBuffer

BLANK_LINE = re.compile(rb"\n\r?\n")  # the HTTP head terminator; longest match 3 -> overlap 2
HEADERISH = b"X-Some-Header: some value, another value\r\n"


def make_buffer(*chunks: bytes) -> ReceiveBuffer:
    buf = ReceiveBuffer()
    for chunk in chunks:
        buf.feed(chunk)
    return buf


def headerish_message(size: int, terminator: bytes = b"\r\n") -> bytes:
    """``size`` bytes of header lines (each ending in CRLF), then *terminator*."""
    body = (HEADERISH * (size // len(HEADERISH) + 1))[:size]
    # End the block on a complete line so only the terminator makes a blank line.
    body = body[: body.rfind(b"\r\n") + 2]
    return body + terminator


# -- feeding and inspecting ---------------------------------------------------


def test_new_buffer_is_empty() -> None:
    buf = ReceiveBuffer()
    assert len(buf) == 0
    assert not buf
    assert bytes(buf) == b""
    assert buf.bytes_scanned == 0


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_accepts_bytes_like(kind: type) -> None:
    buf = ReceiveBuffer()
    buf.feed(kind(b"abc"))
    buf.feed(kind(b"def"))
    assert bytes(buf) == b"abcdef"
    assert len(buf) == 6
    assert buf


def test_iadd_appends_and_returns_same_buffer() -> None:
    buf = ReceiveBuffer()
    original = buf
    buf += b"ab"
    buf += memoryview(b"cd")
    assert buf is original
    assert bytes(buf) == b"abcd"


def test_peek_does_not_consume() -> None:
    buf = make_buffer(b"hello")
    assert buf.peek(2) == b"he"
    assert buf.peek(100) == b"hello"
    assert buf.peek(0) == b""
    assert type(buf.peek(2)) is bytes
    assert bytes(buf) == b"hello"


def test_startswith() -> None:
    buf = make_buffer(b"\r\nrest")
    assert buf.startswith(b"\r\n")
    assert buf.startswith((b"x", b"\r"))
    assert not buf.startswith(b"\n")
    assert not ReceiveBuffer().startswith(b"\r")


# -- exact-length and bounded reads ------------------------------------------


def test_take_exactly_waits_for_enough_bytes() -> None:
    buf = make_buffer(b"abc")
    assert buf.take_exactly(4) is None
    assert bytes(buf) == b"abc"  # nothing consumed
    buf.feed(b"de")
    assert buf.take_exactly(4) == b"abcd"
    assert bytes(buf) == b"e"
    assert buf.take_exactly(1) == b"e"
    assert not buf


def test_take_exactly_zero_and_whole_buffer() -> None:
    buf = make_buffer(b"xyz")
    assert buf.take_exactly(0) == b""
    assert buf.take_exactly(3) == b"xyz"
    assert buf.take_exactly(0) == b""
    assert buf.take_exactly(1) is None


def test_take_exactly_returns_immutable_copy() -> None:
    buf = make_buffer(b"abcd")
    out = buf.take_exactly(2)
    assert type(out) is bytes
    buf.feed(b"zz")
    assert out == b"ab"


def test_take_at_most() -> None:
    buf = ReceiveBuffer()
    assert buf.take_at_most(10) is None
    buf.feed(b"abcdef")
    assert buf.take_at_most(4) == b"abcd"
    assert buf.take_at_most(10) == b"ef"  # fewer than asked: what is there
    assert buf.take_at_most(10) is None
    assert len(buf) == 0


def test_take_all_and_skip() -> None:
    buf = ReceiveBuffer()
    assert buf.take_all() == b""
    buf.feed(b"0123456789")
    buf.skip(3)
    assert bytes(buf) == b"3456789"
    assert buf.take_all() == b"3456789"
    assert not buf
    assert buf.take_all() == b""


# -- delimiter search ---------------------------------------------------------


def test_find_reports_end_of_delimiter_without_consuming() -> None:
    buf = make_buffer(b"abc\r\ndef\r\n")
    assert buf.find(b"\r\n", 100) == 5
    assert bytes(buf) == b"abc\r\ndef\r\n"
    assert make_buffer(b"abc").find(b"\r\n", 100) == -1


def test_take_through_returns_through_first_delimiter() -> None:
    buf = make_buffer(b"line one\r\nline two\r\nrest")
    assert buf.take_through(b"\r\n", 100) == b"line one\r\n"
    assert buf.take_through(b"\r\n", 100) == b"line two\r\n"
    assert buf.take_through(b"\r\n", 100) is None
    assert bytes(buf) == b"rest"


def test_take_through_delimiter_at_start() -> None:
    buf = make_buffer(b"\r\nabc")
    assert buf.take_through(b"\r\n", 100) == b"\r\n"
    assert bytes(buf) == b"abc"


MESSAGE = b"GET / HTTP/1.1\r\nHost: example.com\r\nX: y\r\n\r\nBODY"
HEAD = MESSAGE[: MESSAGE.index(b"\r\n\r\n") + 4]


@pytest.mark.parametrize("split", range(1, len(MESSAGE)))
def test_take_through_finds_delimiter_split_across_feeds(split: int) -> None:
    buf = make_buffer(MESSAGE[:split])
    first = buf.take_through(b"\r\n\r\n", 1000)
    if split < len(HEAD):
        assert first is None
        buf.feed(MESSAGE[split:])
        assert buf.take_through(b"\r\n\r\n", 1000) == HEAD
    else:
        assert first == HEAD
        buf.feed(MESSAGE[split:])
    assert bytes(buf) == b"BODY"


@pytest.mark.parametrize("split", range(1, len(MESSAGE)))
def test_take_through_match_finds_pattern_split_across_feeds(split: int) -> None:
    buf = make_buffer(MESSAGE[:split])
    first = buf.take_through_match(BLANK_LINE, 2, 1000)
    if split < len(HEAD):
        assert first is None
        buf.feed(MESSAGE[split:])
        assert buf.take_through_match(BLANK_LINE, 2, 1000) == HEAD
    else:
        assert first == HEAD
        buf.feed(MESSAGE[split:])
    assert bytes(buf) == b"BODY"


def test_take_through_match_bare_lf_variant() -> None:
    buf = make_buffer(b"a: b\n\nrest")
    assert buf.take_through_match(BLANK_LINE, 2, 100) == b"a: b\n\n"
    assert bytes(buf) == b"rest"


@pytest.mark.parametrize("split", range(1, len(MESSAGE)))
def test_take_header_block_finds_end_split_across_feeds(split: int) -> None:
    buf = make_buffer(MESSAGE[:split])
    first = buf.take_header_block(1000)
    if split < len(HEAD):
        assert first is None
        buf.feed(MESSAGE[split:])
        assert buf.take_header_block(1000) == HEAD
    else:
        assert first == HEAD
        buf.feed(MESSAGE[split:])
    assert bytes(buf) == b"BODY"


@pytest.mark.parametrize(
    ("data", "block"),
    [
        (b"a: b\r\n\r\nrest", b"a: b\r\n\r\n"),
        (b"a: b\n\nrest", b"a: b\n\n"),
        (b"a: b\n\r\nrest", b"a: b\n\r\n"),
        (b"a: b\r\n\nrest", b"a: b\r\n\n"),
        # whichever empty line comes first ends the block
        (b"a\n\nb\r\n\r\nrest", b"a\n\n"),
        (b"a\r\n\r\nb\n\nrest", b"a\r\n\r\n"),
        (b"a: b\r\n\r\n", b"a: b\r\n\r\n"),  # the whole buffer
    ],
)
def test_take_header_block_line_end_variants(data: bytes, block: bytes) -> None:
    buf = make_buffer(data)
    assert buf.take_header_block(100) == block
    assert bytes(buf) == data[len(block) :]


@pytest.mark.parametrize(
    ("data", "block"),
    [
        (b"a: b\r\n\r\nrest", b"a: b\r\n\r\n"),
        (b"a: b\n\nrest", b"a: b\n\n"),
        (b"a: b\n\r\nrest", b"a: b\n\r\n"),
        (b"a\n\nb\r\n\r\nrest", b"a\n\n"),
        (b"a\n\nb: c\nd: e\n\r\nrest", b"a\n\n"),
        (b"a\r\n\nb\r\n\r\nrest", b"a\r\n\n"),
        (b"a\r\n\r\nb\n\nrest", b"a\r\n\r\n"),
    ],
)
def test_unchecked_header_block_and_give_back(data: bytes, block: bytes) -> None:
    # Unchecked, the block runs to the first CRLF CRLF (or LF CRLF); giving
    # back the bytes after an earlier LF LF leaves what a checked take leaves.
    buf = make_buffer(data)
    taken = buf.take_header_block(100, unchecked=True)
    assert taken is not None
    assert taken.endswith(b"\n\r\n") or taken == block
    assert buf.give_back_after_bare_end(taken) == block
    assert bytes(buf) == data[len(block) :]
    # A later search starts at the front again.
    buf.feed(b"x: y\r\n\r\n")
    assert buf.take_header_block(100) is not None


def test_unchecked_header_block_checks_when_past_the_limit() -> None:
    # The CRLF CRLF is past the limit but an LF LF before it is not: the
    # block is the short one, not a "too long" error.
    buf = make_buffer(b"a\n\n" + b"x" * 50 + b"\r\n\r\n")
    assert buf.take_header_block(20, unchecked=True) == b"a\n\n"
    with pytest.raises(RemoteProtocolError):
        make_buffer(b"a: " + b"x" * 50 + b"\r\n\r\n").take_header_block(20, unchecked=True)


def test_take_header_block_needs_an_empty_line() -> None:
    buf = make_buffer(b"a: b\r\nc: d\r\n")
    assert buf.take_header_block(100) is None
    assert buf.take_header_block(100) is None  # asking again changes nothing
    buf.feed(b"\r")
    assert buf.take_header_block(100) is None
    buf.feed(b"\nbody")
    assert buf.take_header_block(100) == b"a: b\r\nc: d\r\n\r\n"
    assert bytes(buf) == b"body"


def test_take_header_block_default_hint() -> None:
    with pytest.raises(RemoteProtocolError) as excinfo:
        make_buffer(b"x" * 20).take_header_block(10)
    assert excinfo.value.error_status_hint == 400
    assert "header block" in str(excinfo.value)


def test_take_through_byte_by_byte_returns_each_line() -> None:
    data = b"one\r\ntwo\r\nthree\r\n"
    buf = ReceiveBuffer()
    lines = []
    for i in range(len(data)):
        buf.feed(data[i : i + 1])
        line = buf.take_through(b"\r\n", 100)
        if line is not None:
            lines.append(line)
    assert lines == [b"one\r\n", b"two\r\n", b"three\r\n"]
    assert not buf


def test_search_restarts_from_front_after_consuming() -> None:
    # A failed search remembers where it stopped; consuming must forget it,
    # or a delimiter now near the front would be missed.
    buf = make_buffer(b"abcdefgh")
    assert buf.take_through(b"\r\n", 100) is None
    assert buf.take_exactly(7) == b"abcdefg"
    buf.feed(b"\r\nxyz")
    assert buf.take_through(b"\r\n", 100) == b"h\r\n"

    buf = make_buffer(b"abcdefgh")
    assert buf.take_through_match(BLANK_LINE, 2, 100) is None
    buf.skip(8)
    buf.feed(b"\n\nq")
    assert buf.take_through_match(BLANK_LINE, 2, 100) == b"\n\n"

    buf = make_buffer(b"abcdefgh")
    assert buf.take_through(b"\r\n", 100) is None
    assert buf.take_at_most(8) == b"abcdefgh"
    buf.feed(b"\r\n")
    assert buf.take_through(b"\r\n", 100) == b"\r\n"

    buf = make_buffer(b"abcdefgh")
    assert buf.take_through(b"\r\n", 100) is None
    assert buf.take_all() == b"abcdefgh"
    buf.feed(b"\r\n")
    assert buf.take_through(b"\r\n", 100) == b"\r\n"


def test_bytes_scanned_counts_searched_bytes() -> None:
    buf = make_buffer(b"abcdef")
    assert buf.take_through(b"\r\n", 100) is None
    assert buf.bytes_scanned == 6
    buf.feed(b"gh\r\n")
    assert buf.take_through(b"\r\n", 100) == b"abcdefgh\r\n"
    # The second search resumed one byte before the old end.
    assert buf.bytes_scanned == 6 + 5


# -- limits ---------------------------------------------------------------------


def feed_and_search(data: bytes, search, byte_by_byte: bool):  # type: ignore[no-untyped-def]
    buf = ReceiveBuffer()
    pieces = [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]
    result = None
    for piece in pieces:
        buf.feed(piece)
        result = search(buf)
        if result is not None:
            return result, buf
    return result, buf


SEARCHES = {
    "take_through": lambda limit, hint: (
        lambda buf: buf.take_through(b"\r\n\r\n", limit, hint, "message head")
    ),
    "take_through_match": lambda limit, hint: (
        lambda buf: buf.take_through_match(BLANK_LINE, 2, limit, hint, "message head")
    ),
    "take_header_block": lambda limit, hint: (
        lambda buf: buf.take_header_block(limit, hint, "message head")
    ),
}


@pytest.mark.parametrize("byte_by_byte", [False, True], ids=["at-once", "byte-by-byte"])
@pytest.mark.parametrize("method", sorted(SEARCHES))
def test_limit_raises_with_hint_when_delimiter_is_too_far(method: str, byte_by_byte: bool) -> None:
    data = b"A" * 50 + b"\r\n\r\n"
    search = SEARCHES[method](40, 431)
    with pytest.raises(RemoteProtocolError) as excinfo:
        feed_and_search(data, search, byte_by_byte)
    assert excinfo.value.error_status_hint == 431
    assert "message head" in str(excinfo.value)
    assert "40" in str(excinfo.value)


@pytest.mark.parametrize("byte_by_byte", [False, True], ids=["at-once", "byte-by-byte"])
@pytest.mark.parametrize("method", sorted(SEARCHES))
def test_limit_raises_without_any_delimiter(method: str, byte_by_byte: bool) -> None:
    # The peer never sends the delimiter: we must not buffer without bound.
    search = SEARCHES[method](40, 414)
    with pytest.raises(RemoteProtocolError) as excinfo:
        feed_and_search(b"B" * 41, search, byte_by_byte)
    assert excinfo.value.error_status_hint == 414


@pytest.mark.parametrize("byte_by_byte", [False, True], ids=["at-once", "byte-by-byte"])
@pytest.mark.parametrize("method", sorted(SEARCHES))
def test_limit_is_inclusive_of_delimiter(method: str, byte_by_byte: bool) -> None:
    data = b"C" * 36 + b"\r\n\r\n"  # exactly 40 bytes through the delimiter
    result, buf = feed_and_search(data, SEARCHES[method](40, 431), byte_by_byte)
    assert result == data
    assert not buf
    with pytest.raises(RemoteProtocolError):
        feed_and_search(b"C" + data, SEARCHES[method](40, 431), byte_by_byte)


def test_limit_default_hint_and_description() -> None:
    with pytest.raises(RemoteProtocolError) as excinfo:
        make_buffer(b"x" * 20).take_through(b"\n", 10)
    assert excinfo.value.error_status_hint == 400
    assert "line" in str(excinfo.value)
    with pytest.raises(RemoteProtocolError) as excinfo:
        make_buffer(b"x" * 20 + b"\n\n").take_through_match(BLANK_LINE, 2, 10)
    assert excinfo.value.error_status_hint == 400
    assert "header block" in str(excinfo.value)
    with pytest.raises(RemoteProtocolError) as excinfo:
        make_buffer(b"x" * 20 + b"\n").find(b"\n", 10, 414, "request line")
    assert excinfo.value.error_status_hint == 414
    assert "request line" in str(excinfo.value)


def test_limit_does_not_apply_to_bytes_after_delimiter() -> None:
    buf = make_buffer(b"ab\r\n" + b"z" * 1000)
    assert buf.take_through(b"\r\n", 10) == b"ab\r\n"
    buf = make_buffer(b"ab\n\n" + b"z" * 1000)
    assert buf.take_through_match(BLANK_LINE, 2, 10) == b"ab\n\n"


# -- linear cost ------------------------------------------------------------------

ONE_MB = 1 << 20


def test_byte_by_byte_take_through_scans_linearly() -> None:
    delimiter = b"\r\n\r\n"
    message = headerish_message(ONE_MB)  # ~1 MB of header lines, then CRLF
    assert message.endswith(delimiter)
    assert message.find(delimiter) == len(message) - len(delimiter)
    n = len(message)
    buf = ReceiveBuffer()
    view = memoryview(message)
    result = None
    for i in range(n):
        buf.feed(view[i : i + 1])
        result = buf.take_through(delimiter, 2 * ONE_MB, 431)
        if i % 4096 == 0:
            # fail fast (not after minutes) if scanning ever turns quadratic
            assert buf.bytes_scanned <= len(delimiter) * (i + 1)
        if result is not None:
            assert i == n - 1, "delimiter reported before it arrived"
    assert result == message
    # Each search rescans at most len(delimiter) - 1 old bytes plus the new
    # one: O(n).  A restart-from-the-front search would scan about n*n/2.
    assert buf.bytes_scanned <= len(delimiter) * n
    assert buf.bytes_scanned >= n


def test_byte_by_byte_take_through_match_scans_linearly() -> None:
    message = headerish_message(ONE_MB // 4)
    n = len(message)
    buf = ReceiveBuffer()
    view = memoryview(message)
    result = None
    for i in range(n):
        buf.feed(view[i : i + 1])
        result = buf.take_through_match(BLANK_LINE, 2, 2 * ONE_MB, 431)
        if i % 4096 == 0:
            # fail fast (not after minutes) if scanning ever turns quadratic
            assert buf.bytes_scanned <= 3 * (i + 1)
        if result is not None:
            assert i == n - 1, "pattern reported before it arrived"
    assert result == message
    assert n <= buf.bytes_scanned <= 3 * n


def test_byte_by_byte_take_header_block_scans_linearly() -> None:
    message = headerish_message(ONE_MB // 4)
    n = len(message)
    buf = ReceiveBuffer()
    view = memoryview(message)
    result = None
    for i in range(n):
        buf.feed(view[i : i + 1])
        result = buf.take_header_block(2 * ONE_MB, 431)
        if i % 4096 == 0:
            # fail fast (not after minutes) if scanning ever turns quadratic
            assert buf.bytes_scanned <= 3 * (i + 1)
        if result is not None:
            assert i == n - 1, "end of block reported before it arrived"
    assert result == message
    assert n <= buf.bytes_scanned <= 3 * n


def test_one_shot_search_scans_each_byte_once() -> None:
    message = headerish_message(ONE_MB)
    buf = make_buffer(message)
    assert buf.take_through(b"\r\n\r\n", 2 * ONE_MB) == message
    assert buf.bytes_scanned == len(message)


@pytest.mark.parametrize("byte_by_byte", [False, True], ids=["at-once", "byte-by-byte"])
def test_large_message_over_limit_raises_same_way_however_it_arrives(byte_by_byte: bool) -> None:
    message = headerish_message(64 * 1024)
    limit = 32 * 1024
    buf = ReceiveBuffer()
    view = memoryview(message)
    pieces = (view[i : i + 1] for i in range(len(message))) if byte_by_byte else [view]
    fed = 0
    with pytest.raises(RemoteProtocolError) as excinfo:
        for piece in pieces:
            buf.feed(piece)
            fed += len(piece)
            buf.take_through_match(BLANK_LINE, 2, limit, 431, "message head")
    assert excinfo.value.error_status_hint == 431
    if byte_by_byte:
        # Raised as soon as the limit was passed, not after buffering everything.
        assert fed == limit + 1
    # Even while failing, the cost stayed linear.
    assert buf.bytes_scanned <= 3 * fed
