"""The tables of header lines and header pairs seen before.

The head parser remembers field lines it has parsed and proven valid
(``_readers._LINE_ITEMS``) and whole field sections, or the runs of lines
around one secret line (``_readers._SECTIONS``), header validation remembers the pairs users
gave (``_headers._PAIR_ITEMS``), so that repeated fields cost one dict
lookup each, and the framing analysis of a list made of remembered items
is remembered too (``_headers._INFO_MEMO``).  Correctness must never
depend on them: every outcome (events, errors, their messages and status
hints) is the same with the tables empty and with them full of whatever
came before, the tables stay bounded, and secrets never enter them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protomata.http as ph
from protomata.http import _headers, _readers
from tests.http.test_smuggling import CASES, drive


def _clear_tables() -> None:
    _readers._LINE_ITEMS.clear()
    _readers._SECTIONS.clear()
    _readers._VALID_NAMES.clear()
    _headers._PAIR_ITEMS.clear()
    _headers._INFO_MEMO.clear()
    _headers._HEADERS_MEMO.clear()
    for warmth in (_readers._LINE_WARMTH, _readers._SECTION_WARMTH, _headers._PAIR_WARMTH):
        warmth.cold = warmth.skip = 0


@pytest.fixture(autouse=True)
def _cold_tables() -> Iterator[None]:
    _clear_tables()
    yield
    _clear_tables()


def parse_head(data: bytes, role: Any = ph.SERVER, **limits: Any) -> Any:
    """The first event, or ("error", message, hint)."""
    conn = ph.Connection(role, **limits)
    if role is ph.CLIENT:
        conn.send(ph.Request(method="GET", target="/", headers=[("Host", "a")]))
        conn.send(ph.EndOfMessage())
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except ph.RemoteProtocolError as exc:
        return ("error", str(exc), exc.error_status_hint)
    if isinstance(event, (ph.Request, ph.Response, ph.InformationalResponse)):
        return (type(event).__name__, event, event.headers.raw_items(), vars_of(event.headers.info))
    return event


def vars_of(info: Any) -> dict[str, Any]:
    return {
        name: getattr(info, name)
        for name in (
            "content_length",
            "chunked",
            "close",
            "keep_alive",
            "expect_continue",
            "upgrade",
            "host_count",
        )
    }


def cold_and_warm(data: bytes, role: Any = ph.SERVER, **limits: Any) -> tuple[Any, Any]:
    """Parse *data* with empty tables, then again after warming them with
    every line of *data* that a valid head accepts."""
    _clear_tables()
    cold = parse_head(data, role, **limits)
    for line in data.split(b"\r\n"):
        parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n")
        parse_head(b"HTTP/1.1 200 OK\r\n" + line + b"\r\n\r\n", ph.CLIENT)
    warm = parse_head(data, role, **limits)
    assert parse_head(data, role, **limits) == warm  # and once more, its sections known
    return cold, warm


# -- the head parser ---------------------------------------------------------------


KNOWN = b"Host: a.example\r\nUser-Agent: known/1.0\r\nAccept: */*\r\nAccept-Language: en\r\n"


def test_known_lines_are_remembered_and_give_the_same_request() -> None:
    data = b"GET / HTTP/1.1\r\n" + KNOWN + b"\r\n"
    cold, warm = cold_and_warm(data)
    assert cold == warm
    assert cold[0] == "Request"
    assert b"User-Agent: known/1.0" in _readers._LINE_ITEMS
    # The warm parse took every field from the table.
    assert [item for item in _readers._LINE_ITEMS.values() if item[1] == b"accept"] == [
        (b"Accept", b"accept", b"*/*")
    ]


BAD_HEADS = [
    b"GET / HTTP/1.1\r\n" + KNOWN + b"Bad Name: x\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b"NoColonHere\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b"Name : x\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b": empty name\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b" folded: continuation\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b"X: nul\x00byte\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b"X: bare\rCR\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b"X: bare\nLF\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b"Host: b.example\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN + b"Transfer-Encoding: gzip\r\n\r\n",
    b"GET / HTTP/1.1 \r\n" + KNOWN + b"\r\n",
    b"GET /\x7f HTTP/1.1\r\n" + KNOWN + b"\r\n",
    b"GET / HTTP/1.1\r\n" + KNOWN[17:] + b"\r\n",  # no Host
    b"GET / HTTP/1.1\r\n" + KNOWN + b"X: trailing space \r\n\r\n",  # valid: stripped
    b"GET / HTTP/1.1\n" + KNOWN.replace(b"\r\n", b"\n") + b"\n",  # valid: bare LF ends
]


@pytest.mark.parametrize("data", BAD_HEADS)
def test_known_lines_hide_no_error_and_change_no_message(data: bytes) -> None:
    cold, warm = cold_and_warm(data)
    assert cold == warm


def test_limits_apply_to_known_lines() -> None:
    long_line = b"X-Long: " + b"v" * 192
    # Remembered by a connection with default limits ...
    assert parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + long_line + b"\r\n\r\n")[0] == "Request"
    assert long_line in _readers._LINE_ITEMS
    # ... it still exceeds a smaller limit elsewhere, as do too many fields.
    data = b"GET / HTTP/1.1\r\nHost: a\r\n" + long_line + b"\r\n\r\n"
    result = parse_head(data, max_line_length=100)
    assert result[0] == "error" and result[2] == 431
    result = parse_head(b"GET / HTTP/1.1\r\n" + KNOWN + b"\r\n", max_header_count=3)
    parse_head(b"GET / HTTP/1.1\r\n" + KNOWN + b"\r\n")
    assert parse_head(b"GET / HTTP/1.1\r\n" + KNOWN + b"\r\n", max_header_count=3) == result
    assert result[0] == "error" and result[2] == 431


def test_secrets_and_long_lines_are_never_remembered() -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: a\r\n"
        b"Authorization: Basic dXNlcjpwYXNz\r\n"
        b"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
        b"Cookie: session=secret\r\n"
        b"X-Long: " + b"v" * 300 + b"\r\n"
        b"X-Plain: yes\r\n\r\n"
    )
    for _ in range(2):  # the first parse takes the bulk path, the second the per-line one
        assert parse_head(request)[0] == "Request"
    response = b"HTTP/1.1 200 OK\r\nSet-Cookie: session=secret\r\nX-Plain: yes\r\n\r\n"
    for _ in range(2):
        assert parse_head(response, ph.CLIENT)[0] == "Response"
    remembered = {item[1] for item in _readers._LINE_ITEMS.values()}
    assert b"x-plain" in remembered and b"host" in remembered
    assert not remembered & {
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"set-cookie",
        b"x-long",
    }


def test_line_table_is_bounded() -> None:
    limit = _readers._LINE_ITEMS_MAX
    for round_ in range(3 * limit // 50):
        fields = b"".join(b"X-%d-%d: v\r\n" % (round_, n) for n in range(50))
        assert parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")[0] == "Request"
        assert len(_readers._LINE_ITEMS) <= limit
        # a few known lines among new ones take the per-line path, also bounded
        mixed = b"X-%d-0: v\r\nX-new-%d: v\r\n" % (round_, round_)
        parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + mixed + b"\r\n")
        assert len(_readers._LINE_ITEMS) <= limit


def _run(case: Any) -> Any:
    return drive(ph, case.role, [case.data], eof=case.eof, method=case.method)


def test_malformed_corpus_outcomes_do_not_depend_on_the_tables() -> None:
    cold = {}
    for case in CASES:
        _clear_tables()
        cold[case.id] = _run(case)
        assert _run(case) == cold[case.id], case.id  # warmed by itself
    # warmed by every line of every case, in both roles
    for case in CASES:
        for line in case.data.split(b"\r\n"):
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n")
            parse_head(b"HTTP/1.1 200 OK\r\n" + line + b"\r\n\r\n", ph.CLIENT)
    assert _readers._LINE_ITEMS
    for case in CASES:
        assert _run(case) == cold[case.id], case.id


FIELD_LINES = st.one_of(
    st.sampled_from(
        [
            b"Host: a.example",
            b"Host: b.example",
            b"Accept: */*",
            b"Connection: close",
            b"Connection: keep-alive",
            b"Content-Length: 3",
            b"Transfer-Encoding: chunked",
            b"Expect: 100-continue",
            b"Upgrade: websocket",
            b"X-Empty:",
            b"X-Pad:   padded  ",
            b"Cookie: c=1",
            b"Cookie: c=2",
            b"Cookie: \x00",
            b"Cookie: a\rb",
            b"Cookie:  padded ",
            b"cookie: lower",
            b"Authorization: Basic eA==",
            b"Set-Cookie: s=1",
            b"Proxy-Authorization: p",
            b" folded",
            b"NoColon",
            b"Bad Name: x",
        ]
    ),
    st.binary(max_size=12),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(FIELD_LINES, max_size=6),
    start=st.sampled_from([b"GET / HTTP/1.1", b"GET / HTTP/1.0", b"HTTP/1.1 200 OK"]),
    warm=st.lists(FIELD_LINES, max_size=6),
)
def test_any_head_parses_the_same_cold_and_warm(
    lines: list[bytes], start: bytes, warm: list[bytes]
) -> None:
    role = ph.CLIENT if start.startswith(b"HTTP/") else ph.SERVER
    data = start + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    _clear_tables()
    cold = parse_head(data, role)
    for line in warm + lines:
        parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n")
        parse_head(b"HTTP/1.1 200 OK\r\n" + line + b"\r\n\r\n", ph.CLIENT)
    # whole sections, and runs of lines around a secret one, seen before
    for other_start in (b"GET / HTTP/1.1", b"HTTP/1.1 200 OK"):
        other_role = ph.CLIENT if other_start.startswith(b"HTTP/") else ph.SERVER
        for fields in (warm, lines, warm + lines, lines + warm):
            head = other_start + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"
            parse_head(head, other_role)
    assert parse_head(data, role) == cold
    assert parse_head(data, role) == cold


# -- field sections ------------------------------------------------------------------

BROWSER_FIELDS = (
    b"Host: a.example\r\nUser-Agent: known/1.0\r\nAccept: */*\r\n"
    b"Cookie: session=%s\r\n"
    b"Accept-Language: en\r\nConnection: keep-alive\r\n"
)


def _request(fields: bytes, target: bytes = b"/") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\n" + fields + b"\r\n"


def _section_bytes() -> bytes:
    return b"|".join(_readers._SECTIONS)


def test_runs_around_a_cookie_are_remembered_and_the_cookie_is_not() -> None:
    first = parse_head(_request(BROWSER_FIELDS % b"one", b"/a"))
    assert first[0] == "Request"
    # Stored: the lines before the Cookie and those after it, never the Cookie.
    assert len(_readers._SECTIONS) == 2
    assert b"User-Agent" in _section_bytes() and b"Accept-Language" in _section_bytes()
    assert b"session" not in _section_bytes()
    # Another request with another cookie and target: found there, and equal
    # to the same request parsed with empty tables.
    data = _request(BROWSER_FIELDS % b"two", b"/b")
    warm = parse_head(data)
    assert _readers._SECTION_WARMTH.cold == 0  # the table served it
    _clear_tables()
    assert warm == parse_head(data)
    assert (b"cookie", b"session=two") in list(warm[1].headers)
    assert warm[1].target == b"/b"


@pytest.mark.parametrize(
    "fields",
    [
        b"Cookie: c=1\r\nHost: a\r\n",  # secret line first
        b"Host: a\r\nCookie: c=1\r\n",  # last
        b"Host: a\r\nAuthorization: Bearer t\r\nX: y\r\n",
        b"Host: a\r\nCookie:  c=1 \r\nX: y\r\n",  # optional whitespace
        b"Host: a\r\nCookie: \r\nX: y\r\n",  # empty value
        b"Host: a\r\n",  # no secret at all
    ],
)
def test_heads_found_in_sections_equal_heads_parsed_cold(fields: bytes) -> None:
    data = _request(fields)
    cold = parse_head(data)
    assert cold[0] == "Request"
    for _ in range(2):
        assert parse_head(data) == cold
    assert _readers._SECTIONS and _readers._SECTION_WARMTH.cold == 0


@pytest.mark.parametrize(
    "secret_lines",
    [
        b"Cookie: a=secret\r\nCookie: b=secret\r\n",  # two secret lines
        b"Cookie: a=secret\r\nAuthorization: Basic secret\r\n",
        b"cookie: a=secret\r\n",  # other spellings are found by name, not cut
        b"COOKIE: a=secret\r\n",
        b"Proxy-Authorization: Basic secret\r\n",
        b"X: y\r\nSet-Cookie: a=secret\r\n",
    ],
)
def test_sections_never_hold_secrets(secret_lines: bytes) -> None:
    for start, role in ((b"GET / HTTP/1.1", ph.SERVER), (b"HTTP/1.1 200 OK", ph.CLIENT)):
        data = start + b"\r\nHost: a\r\n" + secret_lines + b"X-Plain: 1\r\n\r\n"
        results = [parse_head(data, role) for _ in range(3)]
        assert results[0][0] in ("Request", "Response") and results.count(results[0]) == 3
    assert b"secret" not in _section_bytes()
    for items, _ in _readers._SECTIONS.values():
        assert not {item[1] for item in items} & _headers._SECRET_FIELDS


def test_secret_fields_are_not_analyzed() -> None:
    # The key of a head cut around a secret line leaves that line out, which
    # is right only while analyze_fields ignores every secret field.
    assert not _headers._INTERESTING & _headers._SECRET_FIELDS


@pytest.mark.parametrize(
    "bad_cookie",
    [b"Cookie: a\x00b", b"Cookie: a\rb", b"Cookie: a\x7fb", b"Cookie: a\nb"],
)
def test_a_bad_secret_line_between_known_runs_gets_the_cold_error(bad_cookie: bytes) -> None:
    good = _request(BROWSER_FIELDS % b"one")
    bad = good.replace(b"Cookie: session=one", bad_cookie)
    _clear_tables()
    cold = parse_head(bad)
    assert parse_head(good)[0] == "Request"  # the runs around the Cookie are known
    assert parse_head(bad) == cold
    assert cold[0] == "error" and cold[2] == 400


def test_limits_apply_to_known_sections() -> None:
    long_line = b"X-Long: " + b"v" * 192 + b"\r\n"
    for secret in (b"", b"Cookie: c=1\r\n"):
        data = _request(b"Host: a\r\n" + secret + long_line)
        assert parse_head(data)[0] == "Request"
        assert parse_head(data)[0] == "Request"  # found in the table ...
        # ... it still exceeds smaller limits, as it did cold.
        for limits in ({"max_line_length": 100}, {"max_header_count": 1}):
            result = parse_head(data, **limits)
            _clear_tables()
            assert parse_head(data, **limits) == result
            assert result[0] == "error" and result[2] == 431
            parse_head(data)
            parse_head(data)


def test_continuation_lines_accepted_in_a_response_are_refused_in_a_request() -> None:
    folded = b"X: a\r\n b\r\nY: c\r\n\r\n"
    response = parse_head(b"HTTP/1.1 200 OK\r\n" + folded, ph.CLIENT)
    assert response[0] == "Response"
    assert parse_head(b"HTTP/1.1 200 OK\r\n" + folded, ph.CLIENT) == response
    result = parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + folded)
    assert result[0] == "error"
    folded_request = b"GET / HTTP/1.1\r\n" + folded.replace(b"X: a", b"Host: a")
    _clear_tables()
    cold = parse_head(folded_request)
    parse_head(b"HTTP/1.1 200 OK\r\n" + folded.replace(b"X: a", b"Host: a"), ph.CLIENT)
    parse_head(b"HTTP/1.1 200 OK\r\n" + folded.replace(b"X: a", b"Host: a"), ph.CLIENT)
    assert parse_head(folded_request) == cold and cold[0] == "error"


def test_section_table_is_bounded_and_skips_long_sections() -> None:
    limit = _readers._SECTIONS_MAX
    for n in range(2 * limit + 10):
        data = _request(b"Host: h%d\r\nCookie: c=%d\r\nX: %d\r\n" % (n, n, n))
        assert parse_head(data)[0] == "Request"
        assert parse_head(data)[0] == "Request"
        assert len(_readers._SECTIONS) <= limit
    _clear_tables()
    long_fields = b"Host: a\r\n" + b"X-Pad: %s\r\n" % (b"p" * 200) * 6
    assert len(long_fields) > _readers._SECTION_MAX_LENGTH
    for _ in range(2):
        assert parse_head(_request(long_fields))[0] == "Request"
    assert not _readers._SECTIONS


# -- header validation -------------------------------------------------------------


def normalize(headers: Any) -> Any:
    try:
        result = _headers.normalize_and_validate(headers)
    except ph.LocalProtocolError as exc:
        return ("error", str(exc))
    return (result.raw_items(), vars_of(result.info))


PAIRS = st.lists(
    st.tuples(
        st.sampled_from(["Host", b"Host", "Content-Length", b"X-Ok", "Bad Name", b"", "X-\u00e9"]),
        st.sampled_from(["a", b"b", "3", b" lead", "trail ", b"x\r\ny", "\u00e9", b"1, 1"]),
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(pairs=PAIRS, warm=PAIRS)
def test_any_header_list_validates_the_same_cold_and_warm(
    pairs: list[tuple[Any, Any]], warm: list[tuple[Any, Any]]
) -> None:
    _clear_tables()
    cold = normalize(pairs)
    normalize(warm)
    for pair in pairs:
        normalize([pair])
    assert normalize(pairs) == cold
    assert normalize(tuple(pairs)) == cold


def test_pairs_are_remembered_once_valid() -> None:
    pairs = [("Content-Type", "text/plain"), (b"Server", b"x")]
    first = normalize(pairs)
    assert ("Content-Type", "text/plain") in _headers._PAIR_ITEMS
    expected = [(b"Content-Type", b"text/plain"), (b"Server", b"x")]
    assert normalize(pairs) == first == (expected, first[1])
    # an invalid list is refused every time, its valid pairs notwithstanding
    bad = [("Content-Type", "text/plain"), ("Bad Name", "x")]
    assert normalize(bad)[0] == "error"
    assert ("Bad Name", "x") not in _headers._PAIR_ITEMS
    assert normalize(bad)[0] == "error"


def test_odd_pairs_and_secrets_are_not_remembered() -> None:
    class Text(str):
        pass

    lists = [[b"X-List", b"1"]]
    assert normalize(lists)[0] == [(b"X-List", b"1")]
    assert normalize([(bytearray(b"X-Array"), b"1")])[0] == [(b"X-Array", b"1")]
    assert normalize([(Text("X-Sub"), "1")])[0] == [(b"X-Sub", b"1")]
    assert normalize(iter([("X-Iter", "1")]))[0] == [(b"X-Iter", b"1")]
    secrets = [("Authorization", "Bearer t"), ("Cookie", "c=1"), ("Set-Cookie", "c=1")]
    assert normalize(secrets)[0] == [
        (b"Authorization", b"Bearer t"),
        (b"Cookie", b"c=1"),
        (b"Set-Cookie", b"c=1"),
    ]
    assert normalize([("X-Long", "v" * 300)])[0] == [(b"X-Long", b"v" * 300)]
    kept = {item[1] for item in _headers._PAIR_ITEMS.values()}
    assert kept == set()


def test_pair_table_is_bounded() -> None:
    limit = _headers._PAIR_ITEMS_MAX
    for n in range(3 * limit // 10):
        for _ in range(2):  # the second time from the tables
            normalize([(b"X-%d-%d" % (n, k), b"v") for k in range(10)])
        assert len(_headers._PAIR_ITEMS) <= limit
        assert len(_headers._HEADERS_MEMO) <= _headers._INFO_MEMO_MAX


def test_events_built_from_remembered_pairs_are_equal() -> None:
    headers = [("Host", "example.com"), ("Content-Length", "5")]
    first = ph.Request(method="POST", target="/", headers=headers)
    second = ph.Request(method="POST", target="/", headers=headers)
    assert first == second
    assert second.headers.info.content_length == 5
    client = ph.Connection(ph.CLIENT)
    head = b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n"
    assert client.send(second) == head


# -- the framing analysis ---------------------------------------------------------


def test_a_new_framing_field_among_known_lines_is_analyzed() -> None:
    start = b"POST / HTTP/1.1\r\n" + KNOWN
    # Known lines plus a new line the analysis ignores: remembered with a gap.
    assert parse_head(start + b"X-Trace: 1\r\n\r\n")[0] == "Request"
    assert parse_head(start + b"X-Trace: 2\r\n\r\n")[3]["content_length"] is None
    assert _headers._INFO_MEMO
    # The same gap filled by a framing field must not reuse that result.
    result = parse_head(start + b"Content-Length: 5\r\n\r\n")
    assert result[0] == "Request" and result[3]["content_length"] == 5
    result = parse_head(start + b"Transfer-Encoding: chunked\r\n\r\n")
    assert result[3]["chunked"] is True
    result = parse_head(start + b"Host: b.example\r\n\r\n")
    assert result[0] == "error" and "more than one Host" in result[1]
    result = parse_head(start + b"Connection: close\r\n\r\n")
    assert result[3]["close"] is True


def test_canonicalized_heads_are_not_remembered() -> None:
    data = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"
    for _ in range(3):
        result = parse_head(data)
        assert result[0] == "Request"
        assert result[2] == [(b"Host", b"a"), (b"Content-Length", b"5")]
    pairs = [("Content-Length", "3"), ("Content-Length", "3")]
    for _ in range(3):
        assert normalize(pairs)[0] == [(b"Content-Length", b"3")]


def test_analysis_memo_is_bounded_and_per_version_and_role() -> None:
    limit = _headers._INFO_MEMO_MAX
    for n in range(2 * limit):
        line = b"X-%d: v\r\n" % n
        for _ in range(2):  # the second parse finds the line known
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n")
        assert len(_headers._INFO_MEMO) <= limit
    # The same fields mean different things in HTTP/1.0 and 1.1, and in
    # requests and responses.
    fields = b"Transfer-Encoding: chunked\r\n\r\n"
    assert parse_head(b"HTTP/1.1 200 OK\r\n" + fields, ph.CLIENT)[3]["chunked"] is True
    assert parse_head(b"HTTP/1.1 200 OK\r\n" + fields, ph.CLIENT)[3]["chunked"] is True
    result = parse_head(b"HTTP/1.0 200 OK\r\n" + fields, ph.CLIENT)
    assert result[0] == "error" and "HTTP/1.0" in result[1]
    assert parse_head(b"GET / HTTP/1.1\r\n" + fields)[0] == "error"  # no Host


# -- heads taken without the search for an earlier LF LF -------------------------------


@pytest.mark.parametrize("max_line_length", [None, 20])
def test_bare_lf_head_followed_by_crlf_head(max_line_length: Any) -> None:
    # The first head ends in LF LF; the CRLF CRLF of the next one must not
    # swallow it, whichever path the first head takes.
    limits = {} if max_line_length is None else {"max_line_length": max_line_length}
    for warm in (False, True):
        if warm:
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        conn = ph.Connection(ph.SERVER, **limits)
        conn.receive_data(b"GET /1 HTTP/1.1\nHost: a\n\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        first = conn.next_event()
        assert isinstance(first, ph.Request) and first.target == b"/1"
        assert type(conn.next_event()) is ph.EndOfMessage
        conn.send(ph.Response(status_code=200, headers=[("Content-Length", "0")]))
        conn.send(ph.EndOfMessage())
        conn.start_next_cycle()
        second = conn.next_event()
        assert isinstance(second, ph.Request) and second.target == b"/2"
        assert list(second.headers) == [(b"host", b"a")]


def test_bare_lf_response_followed_by_body_with_crlf_crlf() -> None:
    conn = ph.Connection(ph.CLIENT)
    conn.send(ph.Request(method="GET", target="/", headers=[("Host", "a")]))
    conn.send(ph.EndOfMessage())
    conn.receive_data(b"HTTP/1.1 200 OK\nContent-Length: 6\n\nab\r\n\r\n")
    response = conn.next_event()
    assert isinstance(response, ph.Response)
    data = conn.next_event()
    assert isinstance(data, ph.Data) and data.data == b"ab\r\n\r\n"


# -- leaving the tables alone when nothing repeats ---------------------------------


def test_tables_are_left_alone_after_a_run_of_new_heads_then_tried_again() -> None:
    warmth = _readers._LINE_WARMTH
    for n in range(warmth.COLD_RUN):
        assert (
            parse_head(b"GET / HTTP/1.1\r\nHost: h%d\r\nX-A: %d\r\n\r\n" % (n, n))[0] == "Request"
        )
    assert warmth.skip == warmth.SKIP_RUN
    remembered = len(_readers._LINE_ITEMS)
    for n in range(warmth.SKIP_RUN):
        result = parse_head(b"GET / HTTP/1.1\r\nHost: s%d\r\n\r\n" % n)
        assert result[0] == "Request" and result[2] == [(b"Host", b"s%d" % n)]
    assert len(_readers._LINE_ITEMS) == remembered  # neither consulted nor filled
    assert warmth.skip == 0
    # Tried again: a head seen before is found, and a known line resets the run.
    parse_head(b"GET / HTTP/1.1\r\nHost: h0\r\nX-A: 0\r\n\r\n")
    assert warmth.cold == 0
    assert b"Host: s0" not in _readers._LINE_ITEMS


def test_pair_tables_are_left_alone_after_a_run_of_new_lists() -> None:
    warmth = _headers._PAIR_WARMTH
    for n in range(warmth.COLD_RUN):
        normalize([("X-New", str(n))])
    assert warmth.skip == warmth.SKIP_RUN
    for n in range(warmth.SKIP_RUN):
        assert normalize([("X-Skipped", str(n))])[0] == [(b"X-Skipped", b"%d" % n)]
    assert ("X-Skipped", "0") not in _headers._PAIR_ITEMS
    assert warmth.skip == 0
    normalize([("X-New", "0")])
    assert warmth.cold == 0


def test_section_table_is_left_alone_after_a_run_of_new_heads_then_tried_again() -> None:
    warmth = _readers._SECTION_WARMTH
    for n in range(warmth.COLD_RUN):
        assert parse_head(_request(b"Host: h%d\r\nX-A: %d\r\n" % (n, n)))[0] == "Request"
    assert warmth.skip == warmth.SKIP_RUN > _readers._LINE_WARMTH.SKIP_RUN
    stored = dict(_readers._SECTIONS)
    for _ in range(warmth.SKIP_RUN):
        result = parse_head(_request(b"Host: h0\r\nX-A: 0\r\n"))  # known, yet not looked up
        assert result[0] == "Request"
    assert stored == _readers._SECTIONS and warmth.skip == 0
    # Tried again: a new head counts as a miss, one seen before is found.
    parse_head(_request(b"Host: new\r\n"))
    assert warmth.cold == 1
    parse_head(_request(b"Host: h1\r\nX-A: 1\r\n"))
    assert warmth.cold == 0
