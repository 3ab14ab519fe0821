"""Text-protocol framing: lines, dot-stuffed blocks, numeric replies."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from protomata import RemoteProtocolError
from protomata._core import ReceiveBuffer, _textproto
from protomata._core._textproto import (
    END_OF_BLOCK,
    DotStuffer,
    DotUnstuffer,
    ReplyReader,
    dot_stuff,
    take_line,
)


def buffer_of(data: bytes) -> ReceiveBuffer:
    buf = ReceiveBuffer()
    buf.feed(data)
    return buf


def unstuff_all(
    chunks: list[bytes], unstuffer: DotUnstuffer | None = None
) -> tuple[bytes, bool, bytes]:
    """Feed *chunks* one by one; return (body, ended, leftover)."""
    unstuffer = unstuffer or DotUnstuffer()
    buf = ReceiveBuffer()
    body = []
    ended = False
    for chunk in chunks:
        buf.feed(chunk)
        while not ended:
            piece = unstuffer.read(buf)
            if piece is None:
                break
            if piece is END_OF_BLOCK:
                ended = True
            else:
                assert isinstance(piece, bytes) and piece
                body.append(piece)
    return b"".join(body), ended, bytes(buf)


def split_every(data: bytes, n: int) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)]


# -- take_line ----------------------------------------------------------------


def test_take_line_crlf() -> None:
    buf = buffer_of(b"HELO x\r\nQUIT\r\npartial")
    assert take_line(buf, 512) == b"HELO x"
    assert take_line(buf, 512) == b"QUIT"
    assert take_line(buf, 512) is None
    assert bytes(buf) == b"partial"


def test_take_line_bare_lf_stays_in_line_unless_lf_ok() -> None:
    assert take_line(buffer_of(b"a\nb\r\n"), 512) == b"a\nb"
    buf = buffer_of(b"a\nb\r\nc\r")
    assert take_line(buf, 512, lf_ok=True) == b"a"
    assert take_line(buf, 512, lf_ok=True) == b"b"
    assert take_line(buf, 512, lf_ok=True) is None


def test_take_line_limit_counts_line_ending() -> None:
    assert take_line(buffer_of(b"x" * 510 + b"\r\n"), 512) == b"x" * 510
    with pytest.raises(RemoteProtocolError) as info:
        take_line(buffer_of(b"x" * 511 + b"\r\n"), 512, hint=500)
    assert info.value.error_status_hint == 500


def test_take_line_limit_enforced_incrementally() -> None:
    buf = ReceiveBuffer()
    with pytest.raises(RemoteProtocolError):
        for _ in range(600):
            buf.feed(b"x")
            assert take_line(buf, 512) is None


def test_take_line_linear_when_fed_byte_by_byte() -> None:
    buf = ReceiveBuffer()
    line = b"y" * 5000 + b"\r\n"
    got = None
    for byte in split_every(line, 1):
        buf.feed(byte)
        got = take_line(buf, 10000)
    assert got == b"y" * 5000
    assert buf.bytes_scanned < 3 * len(line)


# -- DotUnstuffer ---------------------------------------------------------------


def test_unstuff_basic_and_leftover() -> None:
    body, ended, rest = unstuff_all([b"Subject: x\r\n\r\n..dotted\r\nplain\r\n.\r\nQUIT\r\n"])
    assert ended
    assert body == b"Subject: x\r\n\r\n.dotted\r\nplain\r\n"
    assert rest == b"QUIT\r\n"


def test_unstuff_empty_block() -> None:
    assert unstuff_all([b".\r\nNEXT"]) == (b"", True, b"NEXT")


def test_unstuff_read_after_end_keeps_returning_end() -> None:
    u = DotUnstuffer()
    buf = buffer_of(b"a\r\n.\r\nMORE")
    assert u.read(buf) == b"a\r\n"
    assert u.read(buf) is END_OF_BLOCK
    assert u.done
    assert u.read(buf) is END_OF_BLOCK
    assert bytes(buf) == b"MORE"


@pytest.mark.parametrize(
    "smuggle",
    [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\r", b"\r\n.\r"],
)
def test_only_crlf_dot_crlf_ends_the_block(smuggle: bytes) -> None:
    data = b"a" + smuggle + b"MAIL FROM:<evil@x>\r\n.\r\n"
    body, ended, rest = unstuff_all([data])
    assert ended and rest == b""
    # Everything before the real terminator is body (a stuffing dot may go).
    assert b"MAIL FROM:<evil@x>\r\n" in body
    assert body.endswith(b"MAIL FROM:<evil@x>\r\n")
    # Same result byte by byte.
    assert unstuff_all(split_every(data, 1)) == (body, True, b"")


def test_dot_then_other_bytes_is_a_stuffed_line() -> None:
    body, ended, _ = unstuff_all([b"..\r\n.x\r\n.\r\n"])
    assert ended
    assert body == b".\r\nx\r\n"


def test_unstuff_line_limit_counts_wire_bytes() -> None:
    ok = b"x" * 998 + b"\r\n.\r\n"
    assert unstuff_all([ok])[1]
    with pytest.raises(RemoteProtocolError) as info:
        unstuff_all([b"." + b"x" * 998 + b"\r\n.\r\n"])
    assert info.value.error_status_hint == 500


def test_unstuff_line_limit_enforced_without_line_end() -> None:
    with pytest.raises(RemoteProtocolError):
        unstuff_all(split_every(b"z" * 5000, 7), DotUnstuffer(max_line_length=1000))


def test_unstuff_size_limit() -> None:
    u = DotUnstuffer(max_size=10)
    with pytest.raises(RemoteProtocolError) as info:
        unstuff_all([b"12345\r\n6789\r\n.\r\n"], u)
    assert info.value.error_status_hint == 552
    assert unstuff_all([b"1234\r\n6789\r\n.\r\n"], DotUnstuffer(max_size=12))[1]


def test_unstuff_linear_byte_by_byte() -> None:
    data = (b"line of text\r\n" * 2000) + b".\r\n"
    u = DotUnstuffer()
    buf = ReceiveBuffer()
    out = []
    for byte in split_every(data, 1):
        buf.feed(byte)
        piece = u.read(buf)
        if isinstance(piece, bytes):
            out.append(piece)
    assert b"".join(out) == data[:-3]
    assert u.done


def _decode_outcome(chunks: list[bytes], **limits: int) -> tuple[bytes, Any]:
    """(body handed out before the end or the error, ended/leftover or the error)."""
    unstuffer = DotUnstuffer(**limits)
    buf = ReceiveBuffer()
    body: list[bytes] = []
    try:
        for chunk in chunks:
            buf.feed(chunk)
            while True:
                piece = unstuffer.read(buf)
                if piece is None:
                    break
                if piece is END_OF_BLOCK:
                    return b"".join(body), ("end", bytes(buf))
                body.append(piece)
    except RemoteProtocolError as exc:
        return b"".join(body), ("error", str(exc), exc.error_status_hint)
    return b"".join(body), ("open", bytes(buf))


DENSE_LINES = st.lists(
    st.one_of(
        st.sampled_from([b"", b".", b"..", b".x", b"..x", b"a\rb", b"a\nb", b"\r", b"x" * 40]),
        st.binary(max_size=20),
        st.integers(990, 1003).map(lambda n: b"y" * n),  # around the line limit
        st.integers(990, 1003).map(lambda n: b"." + b"y" * n),  # with a stuffing dot
    ),
    min_size=8,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    lines=DENSE_LINES,
    step=st.integers(1, 5000),
    end=st.booleans(),
    cap=st.integers(50, 5000),
    line_cap=st.integers(3, 60),
)
@example(lines=[b"." + b"y" * 998] + [b"a"] * 10, step=5000, end=True, cap=5000, line_cap=3)
@example(lines=[b"." + b"y" * 997] + [b"a"] * 10, step=5000, end=True, cap=5000, line_cap=3)
@example(lines=[b"a" * 10, b"b" * 2] * 8, step=5000, end=True, cap=5000, line_cap=12)  # exact fit
@example(lines=[b"a" * 10, b"b" * 11] * 8, step=5000, end=True, cap=5000, line_cap=12)  # one over
@example(lines=[b".a" * 5, b"b"] * 8, step=5000, end=True, cap=5000, line_cap=12)  # dot counted
def test_bulk_decoding_equals_line_by_line(
    lines: list[bytes], step: int, end: bool, cap: int, line_cap: int
) -> None:
    # Many short lines take the bulk path; the line loop alone must agree on
    # every byte handed out, every error and the point where it is raised.
    # (The first two examples are 1001 and 1000 bytes on the wire against
    # the default limit of 1000; line_cap makes the windows of the bulk
    # line-length check step over short lines.)
    wire = b"\r\n".join(lines) + (b"\r\n.\r\nQUIT\r\n" if end else b"\r\n")
    chunks = split_every(wire, step)
    for limits in ({}, {"max_size": cap}, {"max_line_length": line_cap}):
        bulk = _decode_outcome(chunks, **limits)
        saved = _textproto._BULK_MIN_LINES
        _textproto._BULK_MIN_LINES = 10**9  # never bulk
        try:
            by_line = _decode_outcome(chunks, **limits)
        finally:
            _textproto._BULK_MIN_LINES = saved
        assert bulk == by_line


def test_dense_stuffed_lines_decode_in_one_piece() -> None:
    data = b"".join(b"..line %d\r\n" % n for n in range(50)) + b".\r\n"
    u = DotUnstuffer()
    buf = buffer_of(data)
    body = u.read(buf)
    assert body == b"".join(b".line %d\r\n" % n for n in range(50))  # one piece, all lines
    assert u.read(buf) is END_OF_BLOCK


# -- DotStuffer ---------------------------------------------------------------


def test_dot_stuff_normalizes_and_stuffs() -> None:
    assert dot_stuff(b".a\nb\r.c\r\n") == b"..a\r\nb\r\n..c\r\n.\r\n"
    assert dot_stuff(b"") == b".\r\n"
    assert dot_stuff(b"no newline") == b"no newline\r\n.\r\n"
    assert dot_stuff(b"x\r") == b"x\r\n.\r\n"


def test_stuffer_handles_boundaries() -> None:
    s = DotStuffer()
    out = s.feed(b"a\r") + s.feed(b"\n.b\r") + s.feed(b".c") + s.feed(b"\r\n") + s.finish()
    assert out == b"a\r\n..b\r\n..c\r\n.\r\n"
    s = DotStuffer()
    assert s.feed(b"") == b""
    out = s.feed(b".") + s.feed(b"\n") + s.feed(b".") + s.finish()
    assert out == b"..\r\n..\r\n.\r\n"


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    parts = st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b"x.y", b" "])
    return b"".join(draw(st.lists(parts, max_size=40)))


@settings(max_examples=300, deadline=None)
@given(body=bodies(), cuts=st.lists(st.integers(0, 200), max_size=8))
def test_stuffer_round_trip_and_chunking(body: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    s = DotStuffer()
    wire = b"".join(s.feed(p) for p in pieces) + s.finish()
    assert wire == dot_stuff(body)
    # Nothing we send has a bare CR or LF, and it ends exactly once.
    assert wire.count(b"\r") == wire.count(b"\r\n") == wire.count(b"\n")
    assert wire.endswith(b".\r\n")
    normalized = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if normalized and not normalized.endswith(b"\r\n"):
        normalized += b"\r\n"
    decoded, ended, rest = unstuff_all(split_every(wire, 3))
    assert ended and rest == b""
    assert decoded == normalized


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), step=st.integers(1, 17))
def test_unstuffer_chunking_invariance(data: bytes, step: int) -> None:
    whole = data + b"\r\n.\r\n"
    try:
        expected = unstuff_all([whole])
    except RemoteProtocolError:
        return
    assert unstuff_all(split_every(whole, step)) == expected
    assert unstuff_all(split_every(whole, 1)) == expected


def test_twenty_megabytes_round_trip() -> None:
    rng = os.urandom
    lines = []
    for i in range(20000):
        kind = i % 5
        if kind == 0:
            lines.append(b"." + rng(300).hex().encode()[:900])
        elif kind == 1:
            lines.append(b".")
        elif kind == 2:
            lines.append(b"x" * 998)
        else:
            lines.append(rng(400).hex().encode()[:997])
    body = b"\r\n".join(lines) + b"\r\n"
    body = body * (20_000_000 // len(body) + 1)
    assert len(body) >= 20_000_000
    s = DotStuffer()
    wire = b"".join(s.feed(body[i : i + 65536]) for i in range(0, len(body), 65536)) + s.finish()
    decoded, ended, rest = unstuff_all(split_every(wire, 100_003))
    assert ended and rest == b""
    assert decoded == body


# -- ReplyReader ----------------------------------------------------------------


def test_reply_reader_multiline() -> None:
    r = ReplyReader()
    buf = buffer_of(b"250-mail.example\r\n250-SIZE 100\r\n250 HELP\r\n220 x\r\n")
    assert r.read(buf) == (250, ["mail.example", "SIZE 100", "HELP"])
    assert r.read(buf) == (220, ["x"])
    assert r.read(buf) is None


def test_reply_reader_incremental_and_bare_code() -> None:
    r = ReplyReader()
    buf = ReceiveBuffer()
    got = None
    for byte in split_every(b"354-a\n354\r\n", 1):
        buf.feed(byte)
        got = r.read(buf) or got
        if byte == b"\n" and got is None:
            assert r.pending  # the first line is taken, the reply is not done
    assert got == (354, ["a", ""])


@pytest.mark.parametrize(
    "data",
    [b"250-a\r\n251 b\r\n", b"25 x\r\n", b"abc def\r\n", b"250xyz\r\n", b"650 no\r\n", b"\r\n"],
)
def test_reply_reader_rejects_malformed(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        ReplyReader(first_digits=b"2345").read(buffer_of(data))


def test_reply_reader_limits() -> None:
    with pytest.raises(RemoteProtocolError):
        ReplyReader(max_lines=3).read(buffer_of(b"250-a\r\n" * 4 + b"250 b\r\n"))
    with pytest.raises(RemoteProtocolError):
        ReplyReader(max_line_length=100).read(buffer_of(b"250 " + b"x" * 200 + b"\r\n"))
