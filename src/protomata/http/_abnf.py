"""Character sets and patterns from the HTTP grammar (RFC 9110, RFC 9112).

The parser validates whole header blocks with ``bytes.translate`` against
these byte sets: one C-level pass per block instead of a regex per field.
"""

from __future__ import annotations

import re

_ALL = bytes(range(256))


def _complement(allowed: bytes) -> bytes:
    return bytes(b for b in _ALL if b not in allowed)


#: tchar (RFC 9110 section 5.6.2): the characters of a token.
TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: VCHAR: visible US-ASCII.
VCHAR = bytes(range(0x21, 0x7F))
#: obs-text.
OBS_TEXT = bytes(range(0x80, 0x100))
#: Every byte that may appear in a field line apart from its CRLF:
#: field-vchar, SP and HTAB.  CTLs (CR, LF and NUL included) are excluded.
FIELD_LINE_CHARS = VCHAR + OBS_TEXT + b" \t"
#: Bytes that may appear in a Host field value, uri-host [ ":" port ]
#: (RFC 3986: unreserved, sub-delims, pct-encoded, IP-literal brackets).
HOST_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%:[]"

# Deleting the allowed bytes leaves exactly the offending ones.
NOT_TOKEN = _complement(TOKEN_CHARS)
NOT_FIELD_LINE = _complement(FIELD_LINE_CHARS)


def keeping(allowed: bytes) -> bytes:
    """A ``bytes.translate`` table that keeps *allowed* and changes the rest.

    ``data.translate(keeping(allowed)) == data`` holds exactly when every
    byte of *data* is allowed.  It is the cheaper test for short strings:
    ``translate(None, allowed)`` first builds a deletion table from
    *allowed* on every call, while a plain table is used as it is (and an
    unchanged result is the input itself, so ``==`` is an identity check).
    """
    return bytes(b if b in allowed else b ^ 1 for b in _ALL)


#: Translation tables for the ``keeping`` test.
KEEP_TOKEN = keeping(TOKEN_CHARS)
KEEP_FIELD_LINE = keeping(FIELD_LINE_CHARS)

WS = b" \t"
#: Methods known to be tokens (others are checked against TOKEN_CHARS).
COMMON_METHODS = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH")
)

TOKEN_RE = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
#: request-line = method SP request-target SP HTTP-version
REQUEST_LINE_RE = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
#: The same at the start of a head, followed by its CRLF (not matched).
REQUEST_HEAD_RE = re.compile(REQUEST_LINE_RE.pattern + rb"(?=\r\n)")
#: status-line = HTTP-version SP status-code SP [ reason-phrase ]
#: (the SP before an empty reason is tolerated when missing, see docs).
STATUS_LINE_RE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: ([\t \x21-\x7e\x80-\xff]*))?")
STATUS_HEAD_RE = re.compile(STATUS_LINE_RE.pattern + rb"(?=\r\n)")
#: A request-target must have one of the four forms of RFC 9112 section 3.2.
ABSOLUTE_FORM_RE = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*:")
AUTHORITY_FORM_RE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]+):[0-9]+")
#: chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 section 7.1), strictly:
#: no bare CR/LF, tokens and quoted strings only in extensions.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
CHUNK_EXT_RE = re.compile(
    rb"(?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED_STRING
    + rb"))?)*"
)
HEX_DIGITS = b"0123456789abcdefABCDEF"
CONTENT_LENGTH_MAX_DIGITS = 19
CHUNK_SIZE_MAX_DIGITS = 16


def target_form_ok(method: bytes, target: bytes) -> bool:
    """Whether *target* has a request-target form allowed for *method*.

    RFC 9112 section 3.2: origin-form ("/path"), absolute-form
    ("scheme:..."), authority-form ("host:port", CONNECT only) and
    asterisk-form ("*", OPTIONS only).
    """
    if method == b"CONNECT":
        return AUTHORITY_FORM_RE.fullmatch(target) is not None
    if target[:1] == b"/":
        return True
    if target == b"*":
        return method == b"OPTIONS"
    return ABSOLUTE_FORM_RE.match(target) is not None
