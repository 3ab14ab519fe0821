"""Chunking invariance: however the bytes are split, the events are the same.

Valid byte streams come from hypothesis strategies that also know which
events the bytes must produce (requests for a server-role connection,
responses for a client-role one), including the irregularities RFC 9112
lets us accept: bare-LF line ends, empty lines before a message, obs-fold
in responses, chunk extensions and whitespace after chunk sizes, HTTP/1.0
keep-alive.  Each stream is fed whole, split at hypothesis-chosen points and
one byte at a time; the normalized outcome (adjacent Data of one message
merged) must be identical and equal the expected events.

The malformed corpus of ``test_smuggling.py`` is replayed the same way: a
rejected input must fail with the same ``error_status_hint`` after the same
events, however it arrives.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import protomata.http as ph


def _load_sibling(name: str) -> ModuleType:
    """Import a module next to this file by path (works in every pytest import mode)."""
    module_name = f"_protomata_http_tests_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            module_name, Path(__file__).with_name(f"{name}.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


corpus = _load_sibling("test_smuggling")
fuzz = _load_sibling("test_fuzz")
drive = corpus.drive

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- grammar pieces ------------------------------------------------------------------

TOKEN = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FIELD_VCHARS = [bytes([b]) for b in [*range(0x21, 0x7F), *range(0x80, 0x100)]]
PCHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%"
#: Field names the generators add themselves (framing and connection management).
RESERVED = {b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade", b"expect"}
FORBIDDEN_TRAILERS = {b"content-length", b"transfer-encoding", b"host"}

tokens = st.text(TOKEN, min_size=1, max_size=10).map(str.encode)
field_names = tokens.filter(lambda n: n.lower() not in RESERVED)
words = st.lists(st.sampled_from(FIELD_VCHARS), min_size=1, max_size=6).map(b"".join)


@st.composite
def field_values(draw: Any) -> bytes:
    """field-content: words of field-vchar separated by runs of SP / HTAB, or empty."""
    value = b""
    for index, word in enumerate(draw(st.lists(words, max_size=3))):
        if index:
            value += draw(st.sampled_from([b" ", b"\t", b" \t "]))
        value += word
    return value


ows = st.sampled_from([b"", b"", b" ", b"\t", b" \t "])
head_line_ends = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])
leading_empty_lines = st.sampled_from([b"", b"", b"", b"\r\n", b"\n", b"\r\n\r\n", b"\n\r\n"])
methods = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"HEAD"]),
    tokens.filter(lambda m: m not in (b"CONNECT", b"PRI")),
)
reasons = st.lists(
    st.sampled_from([b" ", b"\t", *FIELD_VCHARS[:40], *FIELD_VCHARS[-8:]]), max_size=12
).map(b"".join)


def mixed_case(draw: Any, name: bytes) -> bytes:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return bytes(
        (c ^ 0x20) if flip and chr(c).isalpha() else c for c, flip in zip(name, flips, strict=True)
    )


@st.composite
def targets(draw: Any, method: bytes) -> bytes:
    path = b"/" + draw(st.text(PCHARS + "/", max_size=12)).encode()
    if draw(st.booleans()):
        path += b"?" + draw(st.text(PCHARS + "/?", max_size=8)).encode()
    kind = draw(st.sampled_from(["origin", "origin", "absolute", "asterisk"]))
    if kind == "absolute":
        return b"http://" + draw(st.sampled_from([b"a.example", b"[::1]:8080", b"h:80"])) + path
    if kind == "asterisk" and method == b"OPTIONS":
        return b"*"
    return path


@st.composite
def fields(draw: Any, max_size: int = 4, fold: bool = False, h11_compatible: bool = False) -> Any:
    """Field lines as [(raw bytes, expected (name, value))]; obs-fold if *fold*."""
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        name = draw(field_names)
        value = draw(field_values())
        line = name + b":" + draw(ows) + value
        if fold and value and draw(st.integers(0, 3)) == 0:
            # obs-fold: continuation lines, each joined to the value with one SP.
            for part in draw(st.lists(words, min_size=1, max_size=2)):
                tail = b"" if h11_compatible else draw(ows)
                line += tail + draw(head_line_ends) + draw(st.sampled_from([b" ", b"\t", b"  "]))
                line += part
                value += b" " + part
        line += draw(ows)
        out.append((line, (name.lower(), value)))
    return out


@st.composite
def chunked_body(draw: Any, data: bytes, h11_compatible: bool) -> tuple[bytes, list[Any]]:
    """*data* in the chunked coding, with extensions and a trailer; expected trailers."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=4))))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if data[a:b]]
    out = bytearray()

    def size_line(size: int) -> bytes:
        digits = format(size, draw(st.sampled_from(["x", "X"])))
        line = b"0" * draw(st.integers(0, 2)) + digits.encode()
        for _ in range(draw(st.integers(0, 2))):
            bws = b"" if h11_compatible else draw(st.sampled_from([b"", b" ", b"\t"]))
            line += bws + b";" + draw(st.sampled_from([b"", b" "])) + draw(tokens)
            kind = draw(st.sampled_from(["bare", "token", "quoted"]))
            if kind == "token":
                line += b"=" + draw(tokens)
            elif kind == "quoted":
                line += b'="' + draw(st.text(TOKEN + " ,;=\t", max_size=6)).encode() + b'"'
        return line + draw(st.sampled_from([b"", b"", b" ", b"\t"])) + b"\r\n"

    for piece in pieces:
        out += size_line(len(piece)) + piece + b"\r\n"
    out += size_line(0)
    trailers = [
        (line, pair) for line, pair in draw(fields(max_size=2)) if pair[0] not in FORBIDDEN_TRAILERS
    ]
    for line, _ in trailers:
        out += line + b"\r\n"
    out += b"\r\n"
    return bytes(out), [pair for _, pair in trailers]


def content_length_fields(draw: Any, length: int) -> list[tuple[bytes, tuple[bytes, bytes] | None]]:
    """Content-Length field lines (one or two) and the single field the parser keeps."""
    name = mixed_case(draw, b"content-length")
    value = str(length).encode()
    kind = draw(st.sampled_from(["plain", "plain", "zeros", "list", "twice"]))
    if kind == "zeros":
        value = b"00" + value
    if kind == "list":
        return [(name + b": " + value + b", " + value, (b"content-length", value))]
    if kind == "twice":
        return [
            (name + b": " + value, (b"content-length", value)),
            (b"Content-Length:" + value, None),
        ]
    return [(name + b":" + draw(ows) + value + draw(ows), (b"content-length", value))]


def assemble_head(
    draw: Any, start_line: bytes, lines: list[tuple[bytes, tuple[bytes, bytes] | None]]
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Shuffle field lines (a duplicate CL stays after its first), join with random EOLs."""
    lines = draw(st.permutations(lines))
    # A repeated Content-Length collapses into the first one the parser meets.
    seen_cl = False
    expected = []
    for _, pair in lines:
        if pair is None or pair[0] == b"content-length":
            if not seen_cl:
                value = next(p for _, p in lines if p is not None and p[0] == b"content-length")
                expected.append(value)
            seen_cl = True
        else:
            expected.append(pair)
    head = start_line + draw(head_line_ends)
    for line, _ in lines:
        head += line + draw(head_line_ends)
    head += draw(head_line_ends)
    return head, expected


@st.composite
def request_streams(draw: Any, h11_compatible: bool = False) -> tuple[bytes, bool, tuple[Any, ...]]:
    """(bytes, eof, expected outcome) for a server-role connection: 1-3 requests."""
    count = draw(st.integers(1, 3))
    data = bytearray()
    expected: list[Any] = []
    for index in range(count):
        last = index == count - 1
        if not h11_compatible:
            data += draw(leading_empty_lines)
        version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
        if h11_compatible and not last:
            version = b"1.1"  # h11 closes after every HTTP/1.0 exchange
        method = draw(methods)
        target = draw(targets(method))
        lines: list[Any] = list(draw(fields()))
        if version == b"1.1" or draw(st.booleans()):
            host = mixed_case(draw, b"host") + b":" + draw(ows) + b"a.example"
            lines.append((host, (b"host", b"a.example")))
        if version == b"1.0" and not last:
            lines.append((b"Connection: keep-alive", (b"connection", b"keep-alive")))
        elif last and draw(st.booleans()):
            lines.append((b"Connection: close", (b"connection", b"close")))
        framings = ["none", "length", "chunked"] if version == b"1.1" else ["none", "length"]
        framing = draw(st.sampled_from(framings))
        content = draw(st.binary(max_size=40)) if framing != "none" else b""
        trailers: list[Any] = []
        payload = content
        if framing == "length":
            lines += content_length_fields(draw, len(content))
        elif framing == "chunked":
            te = mixed_case(draw, b"transfer-encoding") + b":" + draw(ows)
            lines.append((te + mixed_case(draw, b"chunked"), (b"transfer-encoding", b"chunked")))
            payload, trailers = draw(chunked_body(content, h11_compatible))
        head, headers = assemble_head(draw, b"%s %s HTTP/%s" % (method, target, version), lines)
        data += head + payload
        expected.append(corpus.req(method, target, version, headers))
        if content:
            expected.append(corpus.body(content))
        expected.append(corpus.eom(*trailers))
    eof = draw(st.booleans())
    expected += [corpus.CLOSED, "CLOSED"] if eof else [corpus.NEED]
    return bytes(data), eof, tuple(expected)


@st.composite
def response_streams(
    draw: Any, h11_compatible: bool = False
) -> tuple[bytes, bool, bytes, tuple[Any, ...]]:
    """(bytes, eof, request method, expected outcome) for a client-role connection."""
    method = draw(st.sampled_from([b"GET", b"GET", b"HEAD"]))
    count = draw(st.integers(1, 3))
    data = bytearray()
    expected: list[Any] = []
    eof = draw(st.booleans())
    for index in range(count):
        last = index == count - 1
        if not h11_compatible:
            data += draw(leading_empty_lines)
        for status in draw(st.lists(st.sampled_from([100, 102, 103, 150, 199]), max_size=2)):
            reason = draw(reasons).strip(b" \t")
            lines = draw(fields(fold=True, h11_compatible=h11_compatible))
            head, headers = assemble_head(draw, b"HTTP/1.1 %d %s" % (status, reason), lines)
            data += head
            expected.append(corpus.info(status, reason, b"1.1", headers))
        version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
        if h11_compatible and not last:
            version = b"1.1"
        status = draw(st.sampled_from([200, 201, 204, 206, 299, 301, 304, 404, 500, 599, 999]))
        reason = draw(reasons)
        start = b"HTTP/%s %d" % (version, status)
        if reason or draw(st.booleans()):
            start += b" " + reason
        lines = list(draw(fields(fold=True, h11_compatible=h11_compatible)))
        if version == b"1.0" and not last:
            lines.append((b"Connection: keep-alive", (b"connection", b"keep-alive")))
        no_content = status in (204, 304) or method == b"HEAD"
        choices = ["length", "chunked"] if version == b"1.1" else ["length"]
        if last and eof and not no_content:
            choices.append("close")  # the body runs to EOF
        framing = draw(st.sampled_from(choices))
        content = draw(st.binary(max_size=40))
        trailers: list[Any] = []
        payload = content
        if framing == "length":
            lines += content_length_fields(draw, len(content))
        elif framing == "chunked":
            lines.append((b"Transfer-Encoding: chunked", (b"transfer-encoding", b"chunked")))
            payload, trailers = draw(chunked_body(content, h11_compatible))
        if no_content:
            content, payload, trailers = b"", b"", []
        head, headers = assemble_head(draw, start, lines)
        data += head + payload
        expected.append(corpus.resp(status, reason, version, headers))
        if content:
            expected.append(corpus.body(content))
        expected.append(corpus.eom(*trailers))
        if framing == "close":
            break
    if not eof:
        expected.append(corpus.NEED)
    elif framing == "close" or version == b"1.0":
        expected += [corpus.CLOSED, "CLOSED"]
    else:
        # The driver sent its next request; closing instead of answering is an error.
        expected.append(corpus.err(400))
    return bytes(data), eof, method, tuple(expected)


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# -- valid streams ----------------------------------------------------------------------


@SETTINGS
@given(stream=request_streams(), points=st.lists(st.integers(0, 10**6), max_size=12))
def test_requests_any_split(stream: Any, points: list[int]) -> None:
    data, eof, expected = stream
    assert drive(ph, "server", [data], eof=eof) == expected
    assert drive(ph, "server", split_at(data, points), eof=eof) == expected
    assert drive(ph, "server", one_byte_at_a_time(data), eof=eof) == expected


@SETTINGS
@given(stream=response_streams(), points=st.lists(st.integers(0, 10**6), max_size=12))
def test_responses_any_split(stream: Any, points: list[int]) -> None:
    data, eof, method, expected = stream
    assert drive(ph, "client", [data], eof=eof, method=method) == expected
    assert drive(ph, "client", split_at(data, points), eof=eof, method=method) == expected
    assert drive(ph, "client", one_byte_at_a_time(data), eof=eof, method=method) == expected


FIXED_VALID = [
    ("server", b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("server", b"GET / HTTP/1.1\nHost: a\n\nGET /2 HTTP/1.1\r\nHost: a\n\r\n"),
    (
        "server",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;a=b\r\nabc\r\n0003 \r\ndef\r\n0\r\nX: y\r\n\r\n"
        b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ),
    (
        "server",
        b"PUT /x HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"
        b"GET / HTTP/1.0\r\n\r\n",
    ),
    (
        "client",
        b"\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX: a\r\n b\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nHTTP/1.1 204\r\n\r\n",
    ),
]


@pytest.mark.parametrize(("role", "data"), FIXED_VALID)
def test_fixed_valid_streams_every_split_point(role: str, data: bytes) -> None:
    whole = drive(ph, role, [data])
    assert whole[-1] == corpus.NEED
    assert len(whole) > 2
    for cut in range(len(data) + 1):
        assert drive(ph, role, [data[:cut], data[cut:]]) == whole, cut
    assert drive(ph, role, one_byte_at_a_time(data)) == whole


@pytest.mark.parametrize("role", ["server", "client"])
def test_empty_line_split_after_its_cr(role: str) -> None:
    # Regression: a client-role connection given only the CR of an empty line
    # before a status line used to raise "illegal status line".
    start = b"GET / HTTP/1.1\r\nHost: a\r\n" if role == "server" else b"HTTP/1.1 200 OK\r\n"
    data = b"\r\n\r\n" + start + b"Content-Length: 0\r\n\r\n"
    whole = drive(ph, role, [data])
    assert whole[-1] == corpus.NEED and len(whole) == 3
    for cut in (1, 3):
        assert drive(ph, role, [data[:cut], data[cut:]]) == whole
    assert drive(ph, role, [data[:1], data[1:2], data[2:3], data[3:]]) == whole


def test_bare_cr_before_a_start_line_is_rejected_however_split() -> None:
    data = b"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"
    assert drive(ph, "server", [data]) == (corpus.err(400),)
    assert drive(ph, "server", one_byte_at_a_time(data)) == (corpus.err(400),)


# -- the malformed corpus -----------------------------------------------------------------

#: Corpus cases whose outcome depends on the split (known bugs: case id -> reason).
SPLIT_BUGS: dict[str, str] = {}
SPLITTABLE = [c for c in corpus.CASES if not c.bug]


def _corpus_params(cases: list[Any]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(reason=SPLIT_BUGS[case.id], strict=True)]
            if case.id in SPLIT_BUGS
            else [],
        )
        for case in cases
    ]


@pytest.mark.parametrize("case", _corpus_params(SPLITTABLE))
def test_corpus_one_byte_at_a_time(case: Any) -> None:
    whole = corpus.run_ours(case)
    assert corpus.run_ours(case, one_byte_at_a_time(case.data)) == whole


@pytest.mark.parametrize("case", _corpus_params([c for c in SPLITTABLE if len(c.data) < 400]))
def test_corpus_every_two_way_split(case: Any) -> None:
    whole = corpus.run_ours(case)
    for cut in range(1, len(case.data)):
        assert corpus.run_ours(case, [case.data[:cut], case.data[cut:]]) == whole, cut


@SETTINGS
@given(
    case=st.sampled_from([c for c in SPLITTABLE if c.id not in SPLIT_BUGS]),
    points=st.lists(st.integers(0, 10**6), max_size=20),
)
def test_corpus_any_split(case: Any, points: list[int]) -> None:
    assert corpus.run_ours(case, split_at(case.data, points)) == corpus.run_ours(case)


# -- mutated messages -----------------------------------------------------------------------


@SETTINGS
@given(
    role=st.sampled_from(["server", "client"]),
    data=st.data(),
    points=st.lists(st.integers(0, 10**6), max_size=12),
)
def test_mutated_messages_any_split(role: str, data: Any, points: list[int]) -> None:
    # Mostly invalid input, ending in EOF so that every outcome is final: the
    # events before the error and the error's status hint must not depend on
    # how the bytes arrive.
    seeds = fuzz.VALID_REQUESTS if role == "server" else fuzz.VALID_RESPONSES
    message = data.draw(fuzz.mutated(seeds))
    whole = drive(ph, role, [message], eof=True)
    assert drive(ph, role, split_at(message, points), eof=True) == whole
    assert drive(ph, role, one_byte_at_a_time(message), eof=True) == whole


_BUG_TRAILER_START = (
    "BUG: ChunkedReader._read_trailer rejects a trailer section whose first byte cannot "
    "start a field only while fewer than 2 bytes are buffered; with more it waits, so "
    "b'@\\n' after the last chunk is an error when split after the '@' but NEED_DATA "
    "when it arrives together"
)
SPLIT_DEPENDENT = [
    pytest.param("server", b"\x16\x03\x01" + b"\x00" * 17000, 3, {}, id="tls-garbage-over-16k"),
    pytest.param(
        "server",
        b" GET / HTTP/1.1\r\n" + b"X: y\r\n" * 130 + b"\r\n",
        1,
        {},
        id="bad-first-byte-too-many-fields",
    ),
    pytest.param(
        "client",
        b"HXTP/1.1 200 OK\r\n" + b"X: y\r\n" * 130 + b"\r\n",
        2,
        {},
        id="bad-status-line-too-many-fields",
    ),
    pytest.param(
        "server",
        b"GET / HTTP/1.1\rX" + b"a" * 60 + b"\r\nHost: a\r\n\r\n",
        50,
        {"max_line_length": 40},
        id="bare-cr-in-long-request-line",
    ),
    pytest.param(
        "client",
        b"HTT/1.1 200 " + b"a" * 60 + b"\r\n\r\n",
        4,
        {"max_line_length": 40},
        id="bad-long-status-line",
    ),
]


@pytest.mark.parametrize(("role", "data", "cut", "limits"), SPLIT_DEPENDENT)
def test_error_hint_does_not_depend_on_split(
    role: str, data: bytes, cut: int, limits: dict[str, int]
) -> None:
    whole = drive(ph, role, [data], **limits)
    assert whole[-1][0] == "error"
    assert drive(ph, role, [data[:cut], data[cut:]], **limits) == whole


def test_bad_trailer_start_does_not_depend_on_split() -> None:
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
    data = head + b"@\n"
    whole = drive(ph, "server", [data])
    # "@" cannot start a field name: rejected at once, however split.
    assert whole[-1] == corpus.err(400)
    assert drive(ph, "server", [head + b"@", b"\n"]) == whole


# -- limits --------------------------------------------------------------------------------


@st.composite
def oversized_heads(draw: Any) -> bytes:
    """Requests with some long lines, to hit small limits from any direction."""
    request_line = b"GET /" + b"a" * draw(st.integers(0, 300)) + b" HTTP/1.1"
    lines = [request_line, b"Host: a"]
    for index in range(draw(st.integers(0, 3))):
        lines.append(b"X-%d: " % index + b"b" * draw(st.integers(0, 300)))
    eol = draw(head_line_ends)
    return eol.join(lines) + eol + eol


LIMITS = [
    {"max_incomplete_event_size": 256},
    {"max_incomplete_event_size": 300, "max_header_count": 2},
]
#: A line limit below the head limit: start-line checks that depend on the split.
LINE_LIMITS = [{"max_incomplete_event_size": 4096, "max_line_length": 128}]


@SETTINGS
@given(
    data=oversized_heads(),
    points=st.lists(st.integers(0, 10**6), max_size=8),
    limits=st.sampled_from(LIMITS),
)
def test_limits_do_not_depend_on_split(data: bytes, points: list[int], limits: Any) -> None:
    whole = drive(ph, "server", [data], **limits)
    assert drive(ph, "server", split_at(data, points), **limits) == whole
    assert drive(ph, "server", one_byte_at_a_time(data), **limits) == whole


@settings(max_examples=60, deadline=None, phases=[Phase.generate], derandomize=True)
@given(
    data=oversized_heads(),
    points=st.lists(st.integers(0, 10**6), max_size=8),
    limits=st.sampled_from(LINE_LIMITS),
)
def test_line_limit_does_not_depend_on_split(data: bytes, points: list[int], limits: Any) -> None:
    whole = drive(ph, "server", [data], **limits)
    assert drive(ph, "server", split_at(data, points), **limits) == whole
    assert drive(ph, "server", one_byte_at_a_time(data), **limits) == whole


def _request_with_line(length: int) -> bytes:
    line = b"GET /" + b"a" * (length - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == length
    return line + b"\r\nHost: a\r\n\r\n"


def test_start_line_of_exactly_max_line_length_whole() -> None:
    data = _request_with_line(128)
    assert drive(ph, "server", [data], **LINE_LIMITS[0])[-1] == corpus.NEED
    assert drive(ph, "server", [_request_with_line(129)], **LINE_LIMITS[0]) == (corpus.err(414),)


@pytest.mark.parametrize("length", [127, 128, 129, 130])
def test_start_line_near_max_line_length_however_split(length: int) -> None:
    # Regression: a start line of exactly max_line_length bytes used to get 414
    # when its CR and LF arrived separately.
    data = _request_with_line(length)
    whole = drive(ph, "server", [data], **LINE_LIMITS[0])
    assert whole[-1] == (corpus.NEED if length <= 128 else corpus.err(414))
    for cut in range(length - 2, length + 3):
        assert drive(ph, "server", [data[:cut], data[cut:]], **LINE_LIMITS[0]) == whole
    assert drive(ph, "server", one_byte_at_a_time(data), **LINE_LIMITS[0]) == whole


def test_start_line_is_checked_first_however_split() -> None:
    # The request line is judged before the field lines, as it is when the
    # head arrives in pieces: 414 for it, never 431 for the longer field.
    data = b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 300 + b"\r\n\r\n"
    whole = drive(ph, "server", [data], **LINE_LIMITS[0])
    assert whole == (corpus.err(414),)
    assert drive(ph, "server", one_byte_at_a_time(data), **LINE_LIMITS[0]) == whole


def test_limit_errors_are_reached() -> None:
    # The limit properties above must see both accepted and rejected heads.
    small = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    big = b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    many = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"
    assert drive(ph, "server", [small], **LIMITS[0])[-1] == corpus.NEED
    # A request line over the (default) line limit is 414, before the head limit.
    assert drive(ph, "server", [big], **LIMITS[0]) == (corpus.err(414),)
    assert drive(ph, "server", [many], **LIMITS[1]) == (corpus.err(431),)
