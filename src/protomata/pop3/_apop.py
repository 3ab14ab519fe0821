"""The APOP digest (RFC 1939 section 7)."""

from __future__ import annotations

import hashlib

__all__ = ["apop_digest"]


def apop_digest(timestamp: str | bytes, secret: str | bytes) -> str:
    """Return the APOP digest: lowercase hex MD5 of *timestamp* followed by *secret*.

    *timestamp* is the ``<...>`` string from the server greeting, brackets
    included (:attr:`Greeting.timestamp`); str arguments are encoded as UTF-8.
    MD5 is what the RFC specifies; APOP is weak and only worth using over TLS.
    """
    if isinstance(timestamp, str):
        timestamp = timestamp.encode("utf-8")
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    return hashlib.md5(timestamp + secret, usedforsecurity=False).hexdigest()
