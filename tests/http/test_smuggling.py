"""Malformed and ambiguous HTTP/1.1 input: a table of cases, protomata vs h11.

Every case is raw bytes fed to a server-role connection (we parse requests)
or to a client-role connection (we parse responses, after sending a request).
The table states the outcome protomata must produce -- the events, or a
RemoteProtocolError with a given ``error_status_hint`` -- and why, citing
RFC 9112 / RFC 9110.  The same bytes go through h11 too; every case where the
two libraries disagree is listed in ``docs/http-malformed-corpus.rst``, which
is generated from this table by ``tests/http/make_malformed_corpus_rst.py``
and checked here so it cannot go stale.

The driver (:func:`drive`) answers every complete request with an empty 200
and starts the next cycle (server role), or sends another GET after every
complete response (client role), so bytes smuggled after a message are
parsed as the next message and show up in the outcome.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType
from typing import Any

import h11
import pytest

import protomata.http as ph

RST_PATH = Path(__file__).resolve().parents[2] / "docs" / "http-malformed-corpus.rst"

# -- outcomes ------------------------------------------------------------------------


class _Any:
    """Matches any value (headers or reason phrases a case does not care about)."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()

NEED = "NEED_DATA"
PAUSED = "PAUSED"


def err(hint: int) -> tuple[str, int]:
    """The terminal of an outcome that ends in RemoteProtocolError(hint)."""
    return ("error", hint)


def req(
    method: bytes = b"GET", target: bytes = b"/", version: bytes = b"1.1", headers: Any = ANY
) -> tuple[Any, ...]:
    return ("Request", method, target, version, headers)


def resp(
    status: int = 200, reason: Any = ANY, version: bytes = b"1.1", headers: Any = ANY
) -> tuple[Any, ...]:
    return ("Response", status, reason, version, headers)


def info(
    status: int = 100, reason: Any = ANY, version: bytes = b"1.1", headers: Any = ANY
) -> tuple[Any, ...]:
    return ("InformationalResponse", status, reason, version, headers)


def body(data: bytes) -> tuple[str, bytes]:
    return ("body", data)


def eom(*trailers: tuple[bytes, bytes]) -> tuple[str, list[tuple[bytes, bytes]]]:
    return ("EndOfMessage", list(trailers))


EOM = eom()
CLOSED = ("ConnectionClosed",)


def normalize(events: list[Any]) -> list[tuple[Any, ...]]:
    """Events as comparable tuples; adjacent Data of one message merged into one body."""
    out: list[tuple[Any, ...]] = []
    for event in events:
        name = type(event).__name__
        if name == "Data":
            if out and out[-1][0] == "body":
                out[-1] = ("body", out[-1][1] + bytes(event.data))
            else:
                out.append(("body", bytes(event.data)))
        elif name == "Request":
            out.append(
                (
                    name,
                    bytes(event.method),
                    bytes(event.target),
                    bytes(event.http_version),
                    [(bytes(n), bytes(v)) for n, v in event.headers],
                )
            )
        elif name in ("Response", "InformationalResponse"):
            out.append(
                (
                    name,
                    event.status_code,
                    bytes(event.reason),
                    bytes(event.http_version),
                    [(bytes(n), bytes(v)) for n, v in event.headers],
                )
            )
        elif name == "EndOfMessage":
            out.append((name, [(bytes(n), bytes(v)) for n, v in event.headers]))
        else:
            out.append((name,))
    return out


# -- the driver ------------------------------------------------------------------------


def _send_request(lib: ModuleType, conn: Any, method: bytes) -> None:
    target = b"example.com:443" if method == b"CONNECT" else b"/"
    conn.send(lib.Request(method=method, target=target, headers=[(b"Host", b"example.com")]))
    conn.send(lib.EndOfMessage())


def _finish_cycle(lib: ModuleType, conn: Any, role: str, method: bytes) -> None:
    """After the peer's message ended: answer it / start the next cycle if allowed."""
    if conn.trailing_data[1]:
        return  # the peer closed the connection: no next cycle
    if role == "server":
        if conn.our_state is lib.SEND_RESPONSE:
            conn.send(lib.Response(status_code=200, headers=[(b"Content-Length", b"0")]))
            if conn.our_state is lib.SEND_BODY:  # not after accepting a CONNECT
                conn.send(lib.EndOfMessage())
        if conn.our_state is lib.DONE and conn.their_state is lib.DONE:
            conn.start_next_cycle()
    elif conn.our_state is lib.DONE and conn.their_state is lib.DONE:
        conn.start_next_cycle()
        _send_request(lib, conn, method)


def drive(
    lib: ModuleType,
    role: str,
    chunks: list[bytes],
    *,
    eof: bool = False,
    method: bytes = b"GET",
    max_cycles: int = 4,
    **conn_kwargs: Any,
) -> tuple[Any, ...]:
    """Feed *chunks* (then EOF if *eof*) to a *role* connection of *lib* (h11 or ours).

    Returns the normalized events followed by a terminal: ``NEED_DATA``,
    ``PAUSED``, ``CLOSED`` (after a ConnectionClosed event) or
    ``("error", hint)`` for a RemoteProtocolError.  Any other exception
    propagates.
    """
    conn = lib.Connection(lib.SERVER if role == "server" else lib.CLIENT, **conn_kwargs)
    if role == "client":
        _send_request(lib, conn, method)
    pending = [chunk for chunk in chunks if chunk] + ([b""] if eof else [])
    events: list[Any] = []
    cycles = 0
    budget = 4 * sum(len(c) for c in chunks) + 64
    terminal: Any
    try:
        while True:
            budget -= 1
            assert budget > 0, "next_event makes no progress"
            event = conn.next_event()
            if event is lib.NEED_DATA:
                if not pending:
                    terminal = NEED
                    break
                conn.receive_data(pending.pop(0))
                continue
            if event is lib.PAUSED:
                terminal = PAUSED
                break
            events.append(event)
            if type(event) is lib.ConnectionClosed:
                terminal = "CLOSED"
                break
            if type(event) is lib.EndOfMessage or (
                type(event) is lib.Response and conn.their_state is not lib.SEND_BODY
            ):
                cycles += 1
                if cycles < max_cycles:
                    _finish_cycle(lib, conn, role, method)
    except lib.RemoteProtocolError as exc:
        assert conn.their_state is lib.ERROR
        terminal = err(exc.error_status_hint)
    return (*normalize(events), terminal)


# -- the corpus ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    role: str  # "server": we parse a request; "client": we parse a response
    data: bytes
    expect: tuple[Any, ...]
    why: str
    eof: bool = False
    method: bytes = b"GET"  # the request a client-role case sent first
    bug: str | None = None  # our outcome differs from ``expect``: an xfail


HOST = b"Host: a.example\r\n"
POST = b"POST / HTTP/1.1\r\n" + HOST
GET = b"GET / HTTP/1.1\r\n" + HOST
GET_NEXT = b"GET /next HTTP/1.1\r\n" + HOST + b"\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"
OK200 = b"HTTP/1.1 200 OK\r\n"

NEXT = (req(b"GET", b"/next"), EOM)
HELLO_CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"


def S(id: str, data: bytes, expect: tuple[Any, ...], why: str, **kw: Any) -> Case:
    return Case(id, "server", data, expect, why, **kw)


def C(id: str, data: bytes, expect: tuple[Any, ...], why: str, **kw: Any) -> Case:
    return Case(id, "client", data, expect, why, **kw)


CASES: list[Case] = [
    # ---- Transfer-Encoding (RFC 9112 section 6.1) ---------------------------------
    S(
        "te-chunked",
        POST + CHUNKED + b"\r\n" + HELLO_CHUNKED,
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "the chunked coding, valid",
    ),
    S(
        "te-chunked-uppercase",
        POST + b"Transfer-Encoding: CHUNKED\r\n\r\n" + HELLO_CHUNKED,
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "transfer-coding names are case-insensitive (RFC 9112 section 7)",
    ),
    S(
        "te-leading-ows",
        POST + b"Transfer-Encoding:   \tchunked\r\n\r\n" + HELLO_CHUNKED,
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "OWS around a field value is not part of it",
    ),
    S(
        "te-trailing-ows",
        POST + b"Transfer-Encoding: chunked \t\r\n\r\n" + HELLO_CHUNKED,
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "OWS around a field value is not part of it",
    ),
    S(
        "te-xchunked",
        POST + b"Transfer-Encoding: xchunked\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "chunked is not the final coding, so the request length is unknown: 400 "
        "(RFC 9112 section 6.3 rule 4)",
    ),
    S(
        "te-chunk-abbrev",
        POST + b"Transfer-Encoding: chunk\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "final coding is not chunked: length unknown, 400 (RFC 9112 section 6.3 rule 4)",
    ),
    S(
        "te-quoted-chunked",
        POST + b'Transfer-Encoding: "chunked"\r\n\r\n' + HELLO_CHUNKED,
        (err(400),),
        "a quoted string is not the chunked coding; length unknown, 400 "
        "(RFC 9112 section 6.3 rule 4)",
    ),
    S(
        "te-chunked-param",
        POST + b"Transfer-Encoding: chunked;q=1\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "chunked takes no parameters; final coding unrecognised, 400 (RFC 9112 sections 6.3, 7)",
    ),
    S(
        "te-space-before-colon",
        POST + b"Transfer-Encoding : chunked\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "whitespace between field name and colon MUST be rejected (RFC 9112 section 5.1)",
    ),
    S(
        "te-tab-before-colon",
        POST + b"Transfer-Encoding\t: chunked\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "whitespace between field name and colon MUST be rejected (RFC 9112 section 5.1)",
    ),
    S(
        "te-vtab-value",
        POST + b"Transfer-Encoding:\x0bchunked\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "VT is a CTL, not OWS (RFC 9110 section 5.5)",
    ),
    S(
        "te-nul-value",
        POST + b"Transfer-Encoding: chunked\x00\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "NUL in a field value MUST be rejected or replaced (RFC 9110 section 5.5)",
    ),
    S(
        "te-obs-fold",
        POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "obs-fold in a request: a server MUST reject or replace it; we reject, so a "
        "folded TE cannot be read differently by two hops (RFC 9112 section 5.2)",
    ),
    S(
        "te-obs-fold-into-other",
        POST + b"X-Junk: y\r\n Transfer-Encoding: chunked\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "obs-fold in a request is rejected (RFC 9112 section 5.2); a hop that does not fold "
        "sees a TE",
    ),
    S(
        "te-leading-space-line",
        POST + b" Transfer-Encoding: chunked\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "a field line starting with whitespace is obs-fold, rejected in requests "
        "(RFC 9112 section 5.2)",
    ),
    S(
        "te-chunked-identity",
        POST + b"Transfer-Encoding: chunked, identity\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "chunked MUST be the final coding of a request (RFC 9112 section 6.1); 400 "
        "because the length cannot be determined (section 6.3 rule 4)",
    ),
    S(
        "te-identity-chunked",
        POST + b"Transfer-Encoding: identity, chunked\r\n\r\n" + HELLO_CHUNKED,
        (err(501),),
        "a transfer coding we do not implement: 501 (RFC 9112 section 6.1)",
    ),
    S(
        "te-gzip-chunked",
        POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + HELLO_CHUNKED,
        (err(501),),
        "a transfer coding we do not implement: 501 (RFC 9112 section 6.1)",
    ),
    S(
        "te-chunked-chunked",
        POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "chunked MUST NOT be applied more than once (RFC 9112 section 6.1): 400, "
        "as for two Transfer-Encoding: chunked lines",
    ),
    S(
        "te-duplicate",
        POST + CHUNKED + CHUNKED + b"\r\n" + HELLO_CHUNKED,
        (err(400),),
        "chunked MUST NOT be applied more than once (RFC 9112 section 6.1)",
    ),
    S(
        "te-duplicate-other-first",
        POST + b"Transfer-Encoding: gzip\r\n" + CHUNKED + b"\r\n" + HELLO_CHUNKED,
        (err(501),),
        "two TE lines mean the list 'gzip, chunked' (RFC 9110 section 5.3): an unimplemented "
        "coding, 501",
    ),
    S(
        "te-duplicate-other-last",
        POST + CHUNKED + b"Transfer-Encoding: x\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "the combined list 'chunked, x' does not end in chunked (RFC 9112 section 6.1)",
    ),
    S(
        "te-empty",
        POST + b"Transfer-Encoding: \r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "an empty Transfer-Encoding names no final chunked coding (RFC 9112 section 6.1)",
    ),
    S(
        "te-trailing-comma",
        POST + b"Transfer-Encoding: chunked,\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "strict: we do not guess at list syntax in a framing field (RFC 9112 "
        "section 6.1, RFC 9110 section 5.6.1 only lets recipients ignore empty elements)",
    ),
    S(
        "te-http10",
        b"POST / HTTP/1.0\r\n" + CHUNKED + b"\r\n" + HELLO_CHUNKED,
        (err(400),),
        "TE in an HTTP/1.0 message MUST be treated as faulty framing (RFC 9112 section 6.1)",
    ),
    S(
        "te-http10-with-cl",
        b"POST / HTTP/1.0\r\nContent-Length: 5\r\n" + CHUNKED + b"\r\nhello",
        (err(400),),
        "TE in an HTTP/1.0 message is faulty framing even with Content-Length "
        "(RFC 9112 section 6.1)",
    ),
    S(
        "te-name-nul",
        POST + b"Transfer-Encoding\x00: chunked\r\n\r\n" + HELLO_CHUNKED,
        (err(400),),
        "field names are tokens; a NUL may end the name early in another parser "
        "(RFC 9110 section 5.1)",
    ),
    S(
        "te-underscore-name",
        POST + b"Transfer_Encoding: chunked\r\n\r\n",
        (req(b"POST"), EOM, NEED),
        "Transfer_Encoding is a different (valid) field name; "
        "the request has no body (RFC 9112 section 6.3 rule 7)",
    ),
    # ---- Content-Length (RFC 9112 section 6.2, 6.3) -------------------------------------
    S(
        "cl-valid",
        POST + b"Content-Length: 5\r\n\r\nhello",
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "Content-Length framing, valid",
    ),
    S(
        "cl-no-space",
        POST + b"Content-Length:5\r\n\r\nhello",
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "OWS after the colon is optional",
    ),
    S(
        "cl-leading-zeros",
        POST + b"Content-Length: 005\r\n\r\nhello",
        (
            req(b"POST", headers=[(b"host", b"a.example"), (b"content-length", b"005")]),
            body(b"hello"),
            EOM,
            NEED,
        ),
        "Content-Length = 1*DIGIT allows leading zeros (RFC 9110 section 8.6)",
    ),
    S(
        "cl-duplicate-same",
        POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        (
            req(b"POST", headers=[(b"host", b"a.example"), (b"content-length", b"5")]),
            body(b"hello"),
            EOM,
            NEED,
        ),
        "identical duplicates MAY be collapsed (RFC 9110 section 8.6)",
    ),
    S(
        "cl-list-same",
        POST + b"Content-Length: 5, 5\r\n\r\nhello",
        (
            req(b"POST", headers=[(b"host", b"a.example"), (b"content-length", b"5")]),
            body(b"hello"),
            EOM,
            NEED,
        ),
        "a list of identical values MAY be collapsed (RFC 9110 section 8.6)",
    ),
    S(
        "cl-duplicate-conflict",
        POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        (err(400),),
        "conflicting lengths MUST be treated as an unrecoverable error "
        "(RFC 9112 section 6.3 rule 5)",
    ),
    S(
        "cl-zero-then-five",
        POST + b"Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
        (err(400),),
        "conflicting lengths (CL.CL) are an unrecoverable error (RFC 9112 section 6.3 rule 5)",
    ),
    S(
        "cl-list-conflict",
        POST + b"Content-Length: 5, 6\r\n\r\nhello!",
        (err(400),),
        "conflicting lengths are an unrecoverable error (RFC 9112 section 6.3 rule 5)",
    ),
    S(
        "cl-plus",
        POST + b"Content-Length: +5\r\n\r\nhello",
        (err(400),),
        "Content-Length is 1*DIGIT; a sign makes it invalid (RFC 9112 section 6.3 rule 5)",
    ),
    S(
        "cl-minus",
        POST + b"Content-Length: -1\r\n\r\n",
        (err(400),),
        "Content-Length is 1*DIGIT (RFC 9112 section 6.3 rule 5)",
    ),
    S(
        "cl-hex",
        POST + b"Content-Length: 0x5\r\n\r\nhello",
        (err(400),),
        "Content-Length is decimal 1*DIGIT (RFC 9112 section 6.3 rule 5)",
    ),
    S(
        "cl-space-inside",
        POST + b"Content-Length: 5 5\r\n\r\nhello",
        (err(400),),
        "'5 5' is not 1*DIGIT (RFC 9112 section 6.3 rule 5)",
    ),
    S(
        "cl-empty",
        POST + b"Content-Length: \r\n\r\n",
        (err(400),),
        "an empty Content-Length is invalid (RFC 9112 section 6.3 rule 5)",
    ),
    S(
        "cl-trailing-comma",
        POST + b"Content-Length: 5,\r\n\r\nhello",
        (err(400),),
        "'5,' is not a valid Content-Length (RFC 9112 section 6.3 rule 5)",
    ),
    S(
        "cl-non-ascii-digit",
        POST + "Content-Length: \u0665\r\n\r\nhello".encode(),
        (err(400),),
        "only ASCII DIGIT counts (RFC 9110 section 8.6)",
    ),
    S(
        "cl-20-digits",
        POST + b"Content-Length: 10000000000000000000\r\n\r\n",
        (err(400),),
        "a length that does not fit in 64 bits cannot be framed safely by every hop; "
        "we cap Content-Length at 19 digits (RFC 9112 section 6.3 rule 5, RFC 9110 section 8.6)",
    ),
    S(
        "cl-very-long",
        POST + b"Content-Length: " + b"9" * 40 + b"\r\n\r\n",
        (err(400),),
        "overflowing lengths are invalid (RFC 9110 section 8.6)",
    ),
    S(
        "cl-19-digits",
        POST + b"Content-Length: 9999999999999999999\r\n\r\nhello",
        (req(b"POST"), body(b"hello"), NEED),
        "19 digits is within our limit; the body is simply long",
    ),
    S(
        "cl-space-before-colon",
        POST + b"Content-Length : 5\r\n\r\nhello",
        (err(400),),
        "whitespace before the colon MUST be rejected (RFC 9112 section 5.1)",
    ),
    S(
        "cl-obs-fold",
        POST + b"Content-Length:\r\n 5\r\n\r\nhello",
        (err(400),),
        "obs-fold in a request is rejected (RFC 9112 section 5.2)",
    ),
    S(
        "cl-te",
        POST + b"Content-Length: 6\r\n" + CHUNKED + b"\r\n0\r\n\r\nX",
        (err(400),),
        "CL.TE: both framings present ought to be handled as an error; a server MUST close the "
        "connection after it anyway (RFC 9112 sections 6.1, 6.3 rule 3, 11.2)",
    ),
    S(
        "te-cl",
        POST + CHUNKED + b"Content-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
        (err(400),),
        "TE.CL: both framings present ought to be handled as an error "
        "(RFC 9112 sections 6.3 rule 3, 11.2)",
    ),
    S(
        "te-obfuscated-cl",
        POST + b"Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n5c\r\n",
        (err(400),),
        "TE that does not end in chunked: the length is unknown (RFC 9112 section 6.3 rule 4)",
    ),
    S(
        "cl-short-eof",
        POST + b"Content-Length: 10\r\n\r\nhel",
        (req(b"POST"), body(b"hel"), err(400)),
        "a body shorter than Content-Length is incomplete (RFC 9112 section 8)",
        eof=True,
    ),
    S(
        "cl-pipelined",
        POST + b"Content-Length: 3\r\n\r\nabc" + GET_NEXT,
        (req(b"POST"), body(b"abc"), EOM, *NEXT, NEED),
        "bytes after the body are the next request (RFC 9112 section 9.3.2)",
    ),
    S(
        "cl-on-get",
        b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n\r\nabc",
        (req(), body(b"abc"), EOM, NEED),
        "a GET with a body is framed by Content-Length like any "
        "request (RFC 9112 section 6.3 rule 6)",
    ),
    S(
        "no-framing-body",
        GET + b"\r\nhello",
        (req(), EOM, NEED),
        "a request without CL or TE has no body; the bytes start the next request "
        "(RFC 9112 section 6.3 rule 7)",
    ),
    S(
        "no-framing-body-eof",
        GET + b"\r\nhello",
        (req(), EOM, err(400)),
        "an incomplete next request at EOF is an error",
        eof=True,
    ),
    # ---- chunked coding (RFC 9112 section 7.1) --------------------------------------------
    S(
        "chunk-ext-valid",
        POST + CHUNKED + b'\r\n5;a=b;c;d="x y"\r\nhello\r\n0;z\r\n\r\n',
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "chunk-ext with token and quoted-string values (RFC 9112 section 7.1.1)",
    ),
    S(
        "chunk-ext-bws",
        POST + CHUNKED + b"\r\n5 ; a = b\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "BWS is allowed around ';' and '=' in chunk-ext (RFC 9112 section 7.1.1)",
    ),
    S(
        "chunk-size-trailing-ws",
        POST + CHUNKED + b"\r\n5 \t\r\nhello\r\n0 \r\n\r\n",
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "tolerated: whitespace after a chunk size cannot change the size (as h11)",
    ),
    S(
        "chunk-size-upper-hex",
        POST + CHUNKED + b"\r\nA\r\n0123456789\r\n0\r\n\r\n",
        (req(b"POST"), body(b"0123456789"), EOM, NEED),
        "HEXDIG is case-insensitive",
    ),
    S(
        "chunk-size-16-digits",
        POST + CHUNKED + b"\r\n0000000000000005\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), body(b"hello"), EOM, NEED),
        "16 hex digits (64 bits) are within our limit",
    ),
    S(
        "chunk-size-17-digits",
        POST + CHUNKED + b"\r\n00000000000000005\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "more than 16 hex digits can overflow a 64-bit size in "
        "another hop ('funky chunks'); we reject them (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-size-oversized",
        POST + CHUNKED + b"\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "a size that overflows 64 bits and may wrap to 5 in another "
        "hop MUST be rejected (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-size-huge-ok",
        POST + CHUNKED + b"\r\nffffffffffffffff\r\nhello",
        (req(b"POST"), body(b"hello"), NEED),
        "a 64-bit size is simply a long chunk",
    ),
    S(
        "chunk-size-0x",
        POST + CHUNKED + b"\r\n0x5\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "chunk-size is 1*HEXDIG with no prefix (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-size-negative",
        POST + CHUNKED + b"\r\n-5\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "chunk-size is 1*HEXDIG (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-size-leading-space",
        POST + CHUNKED + b"\r\n 5\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "chunk-size is 1*HEXDIG; no leading whitespace (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-size-underscore",
        POST + CHUNKED + b"\r\n1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "chunk-size is 1*HEXDIG; some parsers skip '_' in numbers",
    ),
    S(
        "chunk-size-missing",
        POST + CHUNKED + b"\r\n;a=b\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "chunk-size is required (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-size-bare-lf",
        POST + CHUNKED + b"\r\n5\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "a chunk-size line ends in CRLF; bare LF is a classic chunk-parser discrepancy "
        "(RFC 9112 sections 7.1, 2.2)",
    ),
    S(
        "chunk-last-bare-lf",
        POST + CHUNKED + b"\r\n5\r\nhello\r\n0\n\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "the last-chunk line ends in CRLF (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-size-bare-cr",
        POST + CHUNKED + b"\r\n5\rX\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "bare CR is not a line ending (RFC 9112 section 2.2)",
    ),
    S(
        "chunk-ext-bare-lf",
        POST + CHUNKED + b"\r\n5;a\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "a bare LF inside chunk-ext is read as a line end by some parsers ('funky chunks')",
    ),
    S(
        "chunk-ext-bare-cr",
        POST + CHUNKED + b"\r\n5;a\rb\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "bare CR in chunk-ext is not valid chunk-ext syntax and is "
        "treated as a line end by some parsers (RFC 9112 sections 2.2, 7.1.1)",
    ),
    S(
        "chunk-ext-lf-smuggle",
        POST + CHUNKED + b"\r\n2;\nxx\r\n45\r\n0\r\n\r\n" + GET_NEXT,
        (req(b"POST"), err(400)),
        "'funky chunks': a bare LF in an extension hides a chunk "
        "from parsers that end lines at LF (RFC 9112 section 7.1.1)",
    ),
    S(
        "chunk-ext-empty-name",
        POST + CHUNKED + b"\r\n5;\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "chunk-ext-name is a token, not empty (RFC 9112 section 7.1.1)",
    ),
    S(
        "chunk-ext-garbage",
        POST + CHUNKED + b"\r\n5;a b c\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "chunk-ext is ';' token ['=' token / quoted-string] (RFC 9112 section 7.1.1)",
    ),
    S(
        "chunk-ext-open-quote",
        POST + CHUNKED + b'\r\n5;a="b\r\nhello\r\n0\r\n\r\n',
        (req(b"POST"), err(400)),
        "an unterminated quoted-string is not a chunk-ext (RFC 9112 section 7.1.1)",
    ),
    S(
        "chunk-ext-nul",
        POST + CHUNKED + b"\r\n5;a=\x00\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), err(400)),
        "NUL is not allowed in chunk-ext (RFC 9112 section 7.1.1)",
    ),
    S(
        "chunk-data-too-long",
        POST + CHUNKED + b"\r\n3\r\nhello\r\n0\r\n\r\n",
        (req(b"POST"), body(b"hel"), err(400)),
        "chunk-data is followed by CRLF (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-data-lf-only",
        POST + CHUNKED + b"\r\n5\r\nhello\n0\r\n\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "a bare LF after chunk-data is the "
        "'one-byte terminator' discrepancy ('funky chunks'; RFC 9112 section 7.1)",
    ),
    S(
        "chunk-data-cr-only",
        POST + CHUNKED + b"\r\n5\r\nhello\r0\r\n\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "CRLF is required after chunk-data (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-data-any-2-bytes",
        POST + CHUNKED + b"\r\n5\r\nhelloXX0\r\n\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "parsers that skip any two bytes after "
        "chunk-data disagree with those that do not (RFC 9112 section 7.1)",
    ),
    S(
        "chunk-missing-last-eof",
        POST + CHUNKED + b"\r\n5\r\nhello\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "EOF before the last chunk: incomplete message (RFC 9112 section 8)",
        eof=True,
    ),
    S(
        "chunk-trailer",
        POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-B: two\r\n\r\n",
        (req(b"POST"), body(b"hello"), eom((b"x-sum", b"1"), (b"x-b", b"two")), NEED),
        "trailer fields (RFC 9112 section 7.1.2)",
    ),
    S(
        "chunk-trailer-bare-lf",
        POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nX: y\n\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "strict in the body: trailer lines end in CRLF (RFC 9112 section 7.1.2)",
    ),
    S(
        "chunk-trailer-cl",
        POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "framing fields MUST NOT be trailers; a "
        "recipient that merges them gets a second framing (RFC 9110 section 6.5.1)",
    ),
    S(
        "chunk-trailer-te",
        POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\n" + CHUNKED + b"\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "framing fields MUST NOT be trailers (RFC 9110 section 6.5.1)",
    ),
    S(
        "chunk-trailer-host",
        POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nHost: b.example\r\n\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "routing fields MUST NOT be trailers (RFC 9110 section 6.5.1)",
    ),
    S(
        "chunk-trailer-obs-fold",
        POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "obs-fold in a request is rejected, trailers included (RFC 9112 section 5.2)",
    ),
    S(
        "chunk-trailer-space-colon",
        POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nX : a\r\n\r\n",
        (req(b"POST"), body(b"hello"), err(400)),
        "whitespace before the colon MUST be rejected (RFC 9112 section 5.1)",
    ),
    S(
        "chunk-pipelined",
        POST + CHUNKED + b"\r\n" + HELLO_CHUNKED + GET_NEXT,
        (req(b"POST"), body(b"hello"), EOM, *NEXT, NEED),
        "a chunked body followed by the next request",
    ),
    # ---- field lines (RFC 9112 section 5, RFC 9110 section 5) -----------------------------
    S(
        "field-obs-text",
        GET + b"X: caf\xc3\xa9 \x80\xff\r\n\r\n",
        (req(headers=[(b"host", b"a.example"), (b"x", b"caf\xc3\xa9 \x80\xff")]), EOM, NEED),
        "obs-text is allowed in field values (RFC 9110 section 5.5)",
    ),
    S(
        "field-empty-value",
        GET + b"X:\r\nY: \t \r\n\r\n",
        (req(headers=[(b"host", b"a.example"), (b"x", b""), (b"y", b"")]), EOM, NEED),
        "empty field values are valid (RFC 9110 section 5.5)",
    ),
    S(
        "field-nul",
        GET + b"X: a\x00b\r\n\r\n",
        (err(400),),
        "NUL in a field value MUST be rejected or replaced (RFC 9110 section 5.5)",
    ),
    S(
        "field-ctl",
        GET + b"X: a\x01b\r\n\r\n",
        (err(400),),
        "CTLs other than HTAB are invalid in field values (RFC 9110 section 5.5); "
        "we reject rather than pass them on",
    ),
    S(
        "field-del",
        GET + b"X: a\x7fb\r\n\r\n",
        (err(400),),
        "DEL is not a field-vchar (RFC 9110 section 5.5)",
    ),
    S(
        "field-escape",
        GET + b"X: \x1b[31mred\r\n\r\n",
        (err(400),),
        "ESC is a CTL, invalid in field values (RFC 9110 section 5.5)",
    ),
    S(
        "field-bare-cr",
        GET + b"X: a\rb\r\n\r\n",
        (err(400),),
        "bare CR MUST be rejected or replaced (RFC 9112 section 2.2)",
    ),
    S(
        "field-bare-cr-line-end",
        GET + b"X: a\rTransfer-Encoding: chunked\r\n\r\n",
        (err(400),),
        "a bare CR read as a line end by another hop would reveal a hidden TE "
        "(RFC 9112 section 2.2)",
    ),
    S(
        "field-space-in-name",
        GET + b"X Y: z\r\n\r\n",
        (err(400),),
        "field names are tokens (RFC 9110 section 5.1)",
    ),
    S("field-empty-name", GET + b": z\r\n\r\n", (err(400),), "field names are non-empty tokens"),
    S(
        "field-no-colon",
        GET + b"Xyz\r\n\r\n",
        (err(400),),
        "a field line needs a colon (RFC 9112 section 5)",
    ),
    S(
        "field-name-obs-text",
        GET + b"X\xff: z\r\n\r\n",
        (err(400),),
        "field names are tokens (RFC 9110 section 5.1)",
    ),
    S(
        "field-space-before-colon",
        b"GET / HTTP/1.1\r\nHost : a.example\r\n\r\n",
        (err(400),),
        "whitespace before the colon MUST be rejected (RFC 9112 section 5.1)",
    ),
    S(
        "field-obs-fold",
        GET + b"X: a\r\n  b\r\n\r\n",
        (err(400),),
        "a server MUST reject obs-fold or replace it; we reject (RFC 9112 section 5.2)",
    ),
    S(
        "field-first-line-fold",
        b"GET / HTTP/1.1\r\n " + HOST + b"\r\n",
        (err(400),),
        "a folded line with nothing to continue is invalid (RFC 9112 section 5.2)",
    ),
    S(
        "field-too-many",
        GET + b"X: y\r\n" * 200 + b"\r\n",
        (err(431),),
        "we limit a head to 128 fields (RFC 6585 section 5: 431)",
    ),
    S(
        "field-too-long",
        GET + b"X: " + b"y" * 17000 + b"\r\n\r\n",
        (err(431),),
        "a head over 16 KiB is refused with 431 (RFC 6585 section 5)",
    ),
    # ---- Host (RFC 9110 section 7.2, RFC 9112 section 3.2) ------------------------------------
    S(
        "host-missing",
        b"GET / HTTP/1.1\r\n\r\n",
        (err(400),),
        "an HTTP/1.1 request without Host MUST get 400 (RFC 9112 section 3.2)",
    ),
    S(
        "host-missing-http10",
        b"GET / HTTP/1.0\r\n\r\n",
        (req(version=b"1.0"), EOM, NEED),
        "HTTP/1.0 requests need no Host",
    ),
    S(
        "host-duplicate",
        GET + b"Host: b.example\r\n\r\n",
        (err(400),),
        "more than one Host MUST get 400 (RFC 9112 section 3.2)",
    ),
    S(
        "host-duplicate-same",
        GET + HOST + b"\r\n",
        (err(400),),
        "more than one Host MUST get 400, even if equal (RFC 9112 section 3.2)",
    ),
    S(
        "host-empty",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        (req(), EOM, NEED),
        "an empty Host is valid when the target has no authority (RFC 9112 section 3.2)",
    ),
    S(
        "host-ipv6-port",
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        (req(), EOM, NEED),
        "uri-host may be an IP-literal with a port (RFC 9110 section 7.2)",
    ),
    S(
        "host-space",
        b"GET / HTTP/1.1\r\nHost: a.example b.example\r\n\r\n",
        (err(400),),
        "an invalid Host value MUST get 400 (RFC 9112 section 3.2)",
    ),
    S(
        "host-path",
        b"GET / HTTP/1.1\r\nHost: a.example/evil\r\n\r\n",
        (err(400),),
        "'/' is not allowed in Host = uri-host [':' port] (RFC 9112 section 3.2)",
    ),
    S(
        "host-userinfo",
        b"GET / HTTP/1.1\r\nHost: user@a.example\r\n\r\n",
        (err(400),),
        "userinfo is not part of Host (RFC 9110 section 7.2)",
    ),
    S(
        "host-obs-text",
        b"GET / HTTP/1.1\r\nHost: \xe2\x98\x83.example\r\n\r\n",
        (err(400),),
        "Host is ASCII (uri-host; RFC 9110 section 7.2)",
    ),
    # ---- request line (RFC 9112 section 3) -----------------------------------------------------
    S(
        "rl-absolute-form",
        b"GET http://a.example/x?y HTTP/1.1\r\n" + HOST + b"\r\n",
        (req(target=b"http://a.example/x?y"), EOM, NEED),
        "absolute-form (RFC 9112 section 3.2.2)",
    ),
    S(
        "rl-absolute-form-other-host",
        b"GET http://b.example/ HTTP/1.1\r\n" + HOST + b"\r\n",
        (req(target=b"http://b.example/"), EOM, NEED),
        "the target's authority overrides Host; "
        "the application must use it (RFC 9112 section 3.2.2)",
    ),
    S(
        "rl-asterisk-options",
        b"OPTIONS * HTTP/1.1\r\n" + HOST + b"\r\n",
        (req(b"OPTIONS", b"*"), EOM, NEED),
        "asterisk-form (RFC 9112 section 3.2.4)",
    ),
    S(
        "rl-asterisk-get",
        b"GET * HTTP/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "asterisk-form is only for OPTIONS (RFC 9112 section 3.2.4)",
    ),
    S(
        "rl-authority-connect",
        b"CONNECT a.example:443 HTTP/1.1\r\n" + HOST + b"\r\n",
        (req(b"CONNECT", b"a.example:443"), EOM, PAUSED),
        "authority-form for CONNECT (RFC 9112 section 3.2.3)",
    ),
    S(
        "rl-connect-origin-form",
        b"CONNECT /x HTTP/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "CONNECT takes only authority-form (RFC 9112 section 3.2.3)",
    ),
    S(
        "rl-connect-no-port",
        b"CONNECT a.example HTTP/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "authority-form requires a port (RFC 9112 section 3.2.3)",
    ),
    S(
        "rl-relative-target",
        b"GET foo HTTP/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "a target must be origin-, absolute-, authority- or asterisk-form (RFC 9112 section 3.2)",
    ),
    S(
        "rl-target-nul",
        b"GET /\x00 HTTP/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "NUL is not allowed in a request-target (RFC 9112 section 3.2)",
    ),
    S(
        "rl-target-obs-text",
        b"GET /\xff HTTP/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "a request-target is ASCII (RFC 3986; RFC 9112 section 3.2)",
    ),
    S(
        "rl-double-space",
        b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "request-line elements are separated by a single SP (RFC 9112 section 3)",
    ),
    S(
        "rl-tabs",
        b"GET\t/\tHTTP/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "we do not accept HTAB as a request-line separator (RFC 9112 section 3)",
    ),
    S(
        "rl-trailing-space",
        b"GET / HTTP/1.1 \r\n" + HOST + b"\r\n",
        (err(400),),
        "nothing may follow HTTP-version (RFC 9112 section 3)",
    ),
    S(
        "rl-lowercase-version",
        b"GET / http/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "HTTP-name is case-sensitive (RFC 9112 section 2.3)",
    ),
    S("rl-http-0.9", b"GET /\r\n\r\n", (err(400),), "HTTP/0.9 requests are not supported"),
    S(
        "rl-http2-version",
        b"GET / HTTP/2.0\r\n" + HOST + b"\r\n",
        (err(505),),
        "a major version we do not implement: 505 (RFC 9110 section 15.6.6)",
    ),
    S(
        "rl-http-1.2",
        b"GET / HTTP/1.2\r\n" + HOST + b"\r\n",
        (req(version=b"1.2"), EOM, NEED),
        "a higher minor version is handled as HTTP/1.1 (RFC 9110 section 6.2)",
    ),
    S(
        "rl-version-two-digits",
        b"GET / HTTP/1.10\r\n" + HOST + b"\r\n",
        (err(400),),
        "HTTP-version is DIGIT '.' DIGIT (RFC 9112 section 2.3)",
    ),
    S(
        "rl-leading-crlf",
        b"\r\n\r\n" + GET + b"\r\n",
        (req(), EOM, NEED),
        "a server SHOULD ignore at least one empty line before a request-line "
        "(RFC 9112 section 2.2)",
    ),
    S(
        "rl-leading-space",
        b" " + GET + b"\r\n",
        (err(400),),
        "a request-line starts with a method token (RFC 9112 section 3)",
    ),
    S(
        "rl-tls-handshake",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        (err(400),),
        "not HTTP: rejected at once instead of waiting for a line end",
    ),
    S(
        "rl-bare-lf",
        b"GET / HTTP/1.1\n" + b"Host: a.example\nX: y\r\n\n",
        (req(headers=[(b"host", b"a.example"), (b"x", b"y")]), EOM, NEED),
        "tolerated: a recipient MAY accept bare LF as a line terminator in the head "
        "(RFC 9112 section 2.2)",
    ),
    S(
        "rl-bare-cr",
        b"GET / HTTP/1.1\r" + HOST + b"\r\n",
        (err(400),),
        "bare CR is not a line terminator (RFC 9112 section 2.2)",
    ),
    S(
        "rl-method-delimiter",
        b"G(T / HTTP/1.1\r\n" + HOST + b"\r\n",
        (err(400),),
        "a method is a token (RFC 9110 section 9.1)",
    ),
    S(
        "rl-lowercase-method",
        b"get / HTTP/1.1\r\n" + HOST + b"\r\n",
        (req(b"get"), EOM, NEED),
        "methods are case-sensitive tokens: 'get' is simply another method (RFC 9110 section 9.1)",
    ),
    S(
        "rl-http10-keep-alive",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /next HTTP/1.0\r\n\r\n",
        (req(version=b"1.0"), EOM, req(b"GET", b"/next", b"1.0"), EOM, NEED),
        "HTTP/1.0 keep-alive persists the connection (RFC 9112 section 9.3)",
    ),
    S(
        "rl-connection-close-pipelined",
        GET + b"Connection: close\r\n\r\n" + GET_NEXT,
        (req(), EOM, err(400)),
        "nothing may follow a request with Connection: close (RFC 9112 section 9.6)",
    ),
    S(
        "expect-100",
        POST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
        (req(b"POST"), body(b"hi"), EOM, NEED),
        "Expect: 100-continue (RFC 9110 section 10.1.1)",
    ),
    # ---- responses (we are the client) --------------------------------------------------------
    C(
        "resp-cl",
        OK200 + b"Content-Length: 5\r\n\r\nhello",
        (resp(), body(b"hello"), EOM, NEED),
        "Content-Length framing",
    ),
    C(
        "resp-chunked-trailer",
        OK200 + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nX: y\r\n\r\n",
        (resp(), body(b"hello"), eom((b"x", b"y")), NEED),
        "chunked with a trailer",
    ),
    C(
        "resp-no-reason",
        b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
        (resp(reason=b""), EOM, NEED),
        "tolerated: some servers omit the SP before an empty reason-phrase (as h11)",
    ),
    C(
        "resp-reason-obs-text",
        b"HTTP/1.1 200 \xc3\x9c berall\r\nContent-Length: 0\r\n\r\n",
        (resp(reason=b"\xc3\x9c berall"), EOM, NEED),
        "obs-text in a reason-phrase (RFC 9112 section 4)",
    ),
    C(
        "resp-reason-ctl",
        b"HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n",
        (err(400),),
        "CTLs are not allowed in a reason-phrase (RFC 9112 section 4)",
    ),
    C(
        "resp-reason-nul",
        b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n",
        (err(400),),
        "NUL is not allowed in a reason-phrase (RFC 9112 section 4)",
    ),
    C(
        "resp-status-2-digits",
        b"HTTP/1.1 20 OK\r\n\r\n",
        (err(400),),
        "status-code is 3DIGIT (RFC 9112 section 4)",
    ),
    C(
        "resp-status-4-digits",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        (err(400),),
        "status-code is 3DIGIT (RFC 9112 section 4)",
    ),
    C(
        "resp-status-below-100",
        b"HTTP/1.1 099 Odd\r\n\r\n",
        (err(400),),
        "status codes are 100..599 (RFC 9110 section 15); below 100 is invalid",
    ),
    C(
        "resp-http2",
        b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        (err(505),),
        "a major version we do not implement (RFC 9110 section 6.2)",
    ),
    C(
        "resp-http2-short",
        b"HTTP/2 200 OK\r\n\r\n",
        (err(400),),
        "HTTP-version is DIGIT '.' DIGIT (RFC 9112 section 2.3)",
    ),
    C("resp-garbage", b"<html>\r\n\r\n", (err(400),), "not a status line"),
    C(
        "resp-leading-crlf",
        b"\r\n" + OK200 + b"Content-Length: 0\r\n\r\n",
        (resp(), EOM, NEED),
        "tolerated: empty lines before a status line are skipped as before a request line "
        "(RFC 9112 section 2.2)",
    ),
    C(
        "resp-obs-fold",
        OK200 + b"X: a\r\n \t b\r\nContent-Length: 0\r\n\r\n",
        (resp(headers=[(b"x", b"a b"), (b"content-length", b"0")]), EOM, NEED),
        "a user agent MUST replace obs-fold with SP (RFC 9112 section 5.2)",
    ),
    C(
        "resp-obs-fold-ows",
        OK200 + b"X: a \t\r\n  b\r\nContent-Length: 0\r\n\r\n",
        (resp(headers=[(b"x", b"a b"), (b"content-length", b"0")]), EOM, NEED),
        "obs-fold = OWS CRLF RWS, so the whitespace before the CRLF is part of the fold and "
        "the whole fold becomes one SP (RFC 9112 sections 5.2, 5.5)",
    ),
    C(
        "resp-obs-fold-hides-te",
        OK200 + b"X: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
        (
            resp(headers=[(b"x", b"a Transfer-Encoding: chunked"), (b"content-length", b"5")]),
            body(b"hello"),
            EOM,
            NEED,
        ),
        "a folded line is part of the previous field, never a field of its own "
        "(RFC 9112 section 5.2)",
    ),
    C(
        "resp-obs-fold-cl",
        OK200 + b"Content-Length: 5\r\n 5\r\n\r\nhello",
        (err(400),),
        "unfolded, the value is '5 5': an invalid Content-Length (RFC 9112 section 6.3 rule 5)",
    ),
    C(
        "resp-cl-te",
        OK200 + b"Content-Length: 5\r\n" + CHUNKED + b"\r\n0\r\n\r\n",
        (err(400),),
        "TE with CL ought to be handled as an error; we do so for responses too "
        "(RFC 9112 section 6.3 rule 3, response splitting: section 11.1)",
    ),
    C(
        "resp-cl-conflict",
        OK200 + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        (err(400),),
        "conflicting lengths: a user agent MUST treat it as an error (RFC 9112 section 6.3 rule 5)",
    ),
    C(
        "resp-te-gzip",
        OK200 + b"Transfer-Encoding: gzip\r\n\r\nxyz",
        (err(400),),
        "a close-delimited body with a coding we cannot decode; rejected as not ending in "
        "chunked (RFC 9112 section 6.3 rule 4)",
        eof=True,
    ),
    C(
        "resp-te-http10",
        b"HTTP/1.0 200 OK\r\n" + CHUNKED + b"\r\n" + HELLO_CHUNKED,
        (err(400),),
        "TE in an HTTP/1.0 message MUST be treated as faulty framing (RFC 9112 section 6.1)",
    ),
    C(
        "resp-close-delimited",
        OK200 + b"\r\nhello",
        (resp(), body(b"hello"), EOM, CLOSED, "CLOSED"),
        "without CL or TE, a response body ends at EOF (RFC 9112 section 6.3 rule 8)",
        eof=True,
    ),
    C(
        "resp-http10-keep-alive",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
        b"Content-Length: 2\r\n\r\nhi" + OK200 + b"Content-Length: 0\r\n\r\n",
        (resp(version=b"1.0"), body(b"hi"), EOM, resp(), EOM, NEED),
        "an HTTP/1.0 response with keep-alive persists the connection (RFC 9112 section 9.3)",
    ),
    C(
        "resp-204-cl",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        (resp(204), EOM, NEED),
        "204 has no content whatever the fields say (RFC 9112 section 6.3 rule 1)",
    ),
    C(
        "resp-304-chunked",
        b"HTTP/1.1 304 Not Modified\r\n" + CHUNKED + b"\r\n",
        (resp(304), EOM, NEED),
        "304 has no content (RFC 9112 section 6.3 rule 1)",
    ),
    C(
        "resp-head-cl",
        OK200 + b"Content-Length: 100\r\n\r\n",
        (resp(), EOM, NEED),
        "a response to HEAD has no content (RFC 9112 section 6.3 rule 1)",
        method=b"HEAD",
    ),
    C(
        "resp-100-then-200",
        b"HTTP/1.1 100 Continue\r\n\r\n" + OK200 + b"Content-Length: 0\r\n\r\n",
        (info(100), resp(), EOM, NEED),
        "1xx responses precede the final one",
    ),
    C(
        "resp-1xx-cl-ignored",
        b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\n"
        + OK200
        + b"Content-Length: 0\r\n\r\n",
        (info(103), resp(), EOM, NEED),
        "1xx responses have no content (RFC 9112 section 6.3 rule 1)",
    ),
    C(
        "resp-101-unasked",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        (err(400),),
        "101 without an Upgrade request is a protocol error (RFC 9110 section 15.2.2)",
    ),
    C(
        "resp-connect-200",
        OK200 + b"\r\nraw tunnel bytes",
        (resp(), PAUSED),
        "after 2xx to CONNECT the connection is a tunnel (RFC 9110 section 9.3.6)",
        method=b"CONNECT",
    ),
    C(
        "resp-chunk-bare-lf",
        OK200 + CHUNKED + b"\r\n5\nhello\r\n0\r\n\r\n",
        (resp(), err(400)),
        "chunk lines end in CRLF, in responses too (RFC 9112 section 7.1)",
    ),
    C(
        "resp-bare-cr",
        OK200 + b"X: a\rb\r\nContent-Length: 0\r\n\r\n",
        (err(400),),
        "bare CR MUST be rejected or replaced (RFC 9112 section 2.2)",
    ),
    C(
        "resp-field-ctl",
        OK200 + b"Set-Cookie: a=\x01\r\nContent-Length: 0\r\n\r\n",
        (err(400),),
        "CTLs are invalid in field values (RFC 9110 section 5.5)",
    ),
    C(
        "resp-eof-in-head",
        OK200 + b"Content-Len",
        (err(400),),
        "EOF inside a head: incomplete message (RFC 9112 section 8)",
        eof=True,
    ),
]


def _case_params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(reason=case.bug, strict=True)] if case.bug else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def run_ours(case: Case, chunks: list[bytes] | None = None) -> tuple[Any, ...]:
    return drive(ph, case.role, chunks or [case.data], eof=case.eof, method=case.method)


def run_h11(case: Case) -> tuple[Any, ...]:
    return drive(h11, case.role, [case.data], eof=case.eof, method=case.method)


def test_case_ids_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


def test_every_case_has_a_terminal() -> None:
    for case in CASES:
        last = case.expect[-1]
        assert last in (NEED, PAUSED, "CLOSED") or last[0] == "error", case.id


@pytest.mark.parametrize("case", _case_params())
def test_our_outcome(case: Case) -> None:
    assert run_ours(case) == case.expect


# -- documentation of the differences --------------------------------------------------------


def documented_outcome(case: Case) -> tuple[Any, ...]:
    """Our outcome as the table states it (the intended one for known bugs)."""
    return case.expect if case.bug else run_ours(case)


def differing_cases() -> list[tuple[Case, tuple[Any, ...], tuple[Any, ...]]]:
    out = []
    for case in CASES:
        ours = documented_outcome(case)
        theirs = run_h11(case)
        if ours != theirs:
            out.append((case, ours, theirs))
    return out


def _fields(fields: list[tuple[bytes, bytes]]) -> str:
    return "; ".join(f"{n.decode('latin-1')}: {v.decode('latin-1')!r}" for n, v in fields)


def _describe(outcome: tuple[Any, ...], detail: bool = False) -> str:
    """A short text for an outcome; *detail* adds field values."""
    parts: list[str] = []
    for item in outcome:
        if item == NEED:
            parts.append("waits for more")
        elif item == PAUSED:
            parts.append("paused")
        elif item == "CLOSED":
            pass  # after a ConnectionClosed event
        elif item == CLOSED:
            parts.append("closed")
        elif item[0] == "error":
            parts.append(f"error {item[1]}")
        elif item[0] == "Request":
            parts.append(f"{item[1].decode('latin-1')} {item[2].decode('latin-1')}")
            if detail:
                parts[-1] += f" ({_fields(item[4])})"
        elif item[0] in ("Response", "InformationalResponse"):
            parts.append(str(item[1]))
            if detail:
                parts[-1] += f" ({_fields(item[4])})"
        elif item[0] == "body":
            parts.append(f"body {len(item[1])} B")
        elif item[0] == "EndOfMessage":
            parts.append("end" + (f" (+{len(item[1])} trailers)" if item[1] else ""))
        else:
            parts.append(item[0])
    return ", ".join(parts) if parts else "nothing"


def _rst_literal(data: bytes, limit: int = 150) -> str:
    text = repr(data if len(data) <= limit else data[:limit])[2:-1]
    if len(data) > limit:
        text += "..."
    # An inline literal may not start or end with a space.
    if text.startswith(" "):
        text = "\\x20" + text[1:]
    if text.endswith(" "):
        text = text[:-1] + "\\x20"
    return "``" + text + "``"


def _rst_text(text: str) -> str:
    """Plain table text with inline markup characters escaped."""
    for char in "\\*`_|":
        text = text.replace(char, "\\" + char)
    return text


def render_rst() -> str:
    lines = [
        "Malformed input: protomata vs h11",
        "=================================",
        "",
        ".. This file is generated by tests/http/make_malformed_corpus_rst.py from the corpus",
        "   in tests/http/test_smuggling.py; tests/http/test_smuggling.py fails when it is stale.",
        "",
        "protomata's HTTP/1.1 machine keeps h11's API but is stricter where leniency can",
        "create ambiguity (request smuggling, response splitting), and more tolerant in a",
        "few places RFC 9112 allows.  The corpus in ``tests/http/test_smuggling.py`` feeds",
        f"{len(CASES)} malformed or borderline inputs to both libraries; the cases below are",
        "those where the outcomes differ.  *Role* says which side parses: ``server`` reads",
        "a request, ``client`` reads a response to a GET (or the method shown).",
        "Outcomes list the events produced (messages, body sizes) and how parsing ended;",
        "*error N* is a ``RemoteProtocolError`` with ``error_status_hint`` N.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 14 6 30 15 15 30",
        "",
        "   * - Case",
        "     - Role",
        "     - Input",
        "     - protomata",
        "     - h11",
        "     - Why",
    ]
    for case, ours, theirs in differing_cases():
        role = case.role if case.method == b"GET" else f"{case.role} ({case.method.decode()})"
        data = _rst_literal(case.data) + (" + EOF" if case.eof else "")
        detail = _describe(ours) == _describe(theirs)  # they differ in field values
        lines += [
            f"   * - ``{case.id}``",
            f"     - {role}",
            f"     - {data}",
            f"     - {_rst_text(_describe(ours, detail))}",
            f"     - {_rst_text(_describe(theirs, detail))}",
            f"     - {_rst_text(case.why)}",
        ]
    return "\n".join(lines) + "\n"


def test_rst_lists_every_difference() -> None:
    text = RST_PATH.read_text(encoding="utf-8")
    listed = {line.split("``")[1] for line in text.splitlines() if line.startswith("   * - ``")}
    differing = {case.id for case, _, _ in differing_cases()}
    assert listed == differing, "regenerate: python tests/http/make_malformed_corpus_rst.py"
    assert text == render_rst(), "regenerate: python tests/http/make_malformed_corpus_rst.py"


def test_rst_is_valid_restructuredtext() -> None:
    docutils_core = pytest.importorskip("docutils.core")
    errors: list[str] = []

    class Collect:
        def write(self, text: str) -> None:
            errors.append(text)

    docutils_core.publish_doctree(
        RST_PATH.read_text(encoding="utf-8"),
        settings_overrides={"warning_stream": Collect(), "report_level": 2},
    )
    assert not "".join(errors).strip()


def test_corpus_has_differences_and_agreements() -> None:
    # The table documents real differences, and most malformed cases agree.
    differing = {case.id for case, _, _ in differing_cases()}
    assert 10 < len(differing) < len(CASES)
    assert "cl-te" in differing  # h11 lets Transfer-Encoding win over Content-Length
    assert "cl-duplicate-conflict" not in differing
