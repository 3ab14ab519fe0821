"""SASL mechanisms shared by every protocol that authenticates (SMTP, POP3, ...).

Each protocol carries SASL its own way (SMTP's ``334`` replies, POP3's
``+`` continuations, both base64); what the messages *say* is the same
everywhere, and lives here once, as pure functions on raw bytes:

* PLAIN (RFC 4616): ``authzid NUL authcid NUL password``;
* CRAM-MD5 (RFC 2195): the server sends a unique challenge, the client
  answers ``user SP hex(HMAC-MD5(password, challenge))``;
* XOAUTH2 (Google's and Microsoft's OAuth 2.0 bearer mechanism):
  ``user=U ^A auth=Bearer T ^A ^A``;
* LOGIN (no RFC): the user name, then the password, each prompted for.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = [
    "cram_md5_challenge",
    "cram_md5_digest",
    "cram_md5_response",
    "digests_match",
    "parse_cram_md5",
    "parse_plain",
    "parse_xoauth2",
    "plain_response",
    "xoauth2_response",
]

_HEX_DIGEST = re.compile(rb"[0-9a-f]{32}")


def plain_response(authcid: str, password: str, authzid: str = "") -> bytes:
    """The PLAIN message that logs *authcid* in (acting as *authzid* if given)."""
    return f"{authzid}\0{authcid}\0{password}".encode()


def parse_plain(message: bytes) -> tuple[str, str, str] | None:
    """``(authzid, authcid, password)`` of a PLAIN message; None when malformed."""
    parts = message.split(b"\0")
    if len(parts) != 3 or not parts[1]:
        return None
    try:
        authzid, authcid, password = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError:
        return None
    return authzid, authcid, password


def cram_md5_challenge(hostname: str) -> bytes:
    """A fresh, unique CRAM-MD5 challenge in RFC 2195's msg-id form."""
    return f"<{secrets.token_hex(12)}@{hostname}>".encode()


def cram_md5_digest(password: str, challenge: bytes) -> str:
    """The lower-case hex HMAC-MD5 of *challenge* keyed with *password*."""
    return hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()


def cram_md5_response(user: str, password: str, challenge: bytes) -> bytes:
    """The client's answer to a CRAM-MD5 *challenge*."""
    return f"{user} {cram_md5_digest(password, challenge)}".encode()


def parse_cram_md5(message: bytes) -> tuple[str, str] | None:
    """``(user, hex digest)`` of a CRAM-MD5 answer; None when malformed."""
    user, _, digest = message.rpartition(b" ")
    if not user or not _HEX_DIGEST.fullmatch(digest):
        return None
    try:
        return user.decode("utf-8"), digest.decode("ascii")
    except UnicodeDecodeError:
        return None


def digests_match(password: str | None, challenge: bytes, digest: str) -> bool:
    """Whether *digest* answers *challenge* for *password*, in constant time.

    An unknown user (*password* None) costs the same and never matches.
    """
    expected = cram_md5_digest(password or "", challenge)
    return hmac.compare_digest(expected.encode(), digest.encode()) and password is not None


def xoauth2_response(user: str, token: str) -> bytes:
    """The XOAUTH2 initial response for *user* with the bearer *token*."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def parse_xoauth2(message: bytes) -> tuple[str, str] | None:
    """``(user, token)`` of an XOAUTH2 initial response; None when malformed."""
    if not message.endswith(b"\x01\x01"):
        return None
    try:
        text = message[:-2].decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields: dict[str, str] = {}
    for field in text.split("\x01"):
        key, sep, value = field.partition("=")
        if not sep or key in fields:
            return None
        fields[key] = value
    user = fields.get("user")
    scheme, _, token = fields.get("auth", "").partition(" ")
    if not user or scheme.lower() != "bearer" or not token:
        return None
    return user, token
