"""The service extensions a server lists in its EHLO reply (RFC 5321 4.1.1.1)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from ._events import Reply

__all__ = ["Extensions"]


class Extensions(Mapping[str, str]):
    """EHLO keywords (upper-cased) mapped to their parameter text.

    Build one with :meth:`from_reply` from the 250 reply to EHLO or LHLO (the
    first line, the server's greeting, is skipped).  Properties answer the
    common questions; any keyword can be looked up with ``in`` and ``[]``.
    """

    __slots__ = ("_keywords",)

    def __init__(self, keywords: Mapping[str, str] | None = None) -> None:
        self._keywords = {k.upper(): v for k, v in (keywords or {}).items()}

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> Extensions:
        """Parse keyword lines such as ``"SIZE 1000"`` or ``"AUTH PLAIN LOGIN"``."""
        keywords: dict[str, str] = {}
        for line in lines:
            keyword, _, params = line.strip().partition(" ")
            if not keyword:
                continue
            # Old servers announce "AUTH=PLAIN LOGIN" (pre-RFC 4954 syntax).
            if keyword.upper().startswith("AUTH="):
                params = f"{keyword[5:]} {params}"
                keyword = "AUTH"
            keyword = keyword.upper()
            if keyword == "AUTH" and keyword in keywords:
                # Both forms present: offer the union, in order, once each.
                mechanisms = f"{keywords[keyword]} {params}".split()
                params = " ".join(dict.fromkeys(mechanisms))
            keywords[keyword] = params.strip()
        return cls(keywords)

    @classmethod
    def from_reply(cls, reply: Reply) -> Extensions:
        """The extensions listed in an EHLO/LHLO reply (empty unless 250)."""
        if reply.code != 250:
            return cls()
        return cls.from_lines(reply.lines[1:])

    def __getitem__(self, keyword: str) -> str:
        return self._keywords[keyword.upper()]

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and keyword.upper() in self._keywords

    def __iter__(self) -> Iterator[str]:
        return iter(self._keywords)

    def __len__(self) -> int:
        return len(self._keywords)

    def __repr__(self) -> str:
        return f"Extensions({self._keywords!r})"

    def to_lines(self) -> list[str]:
        """The keyword lines, for building an EHLO reply."""
        return [f"{k} {v}" if v else k for k, v in self._keywords.items()]

    @property
    def size(self) -> int | None:
        """The SIZE limit (RFC 1870): an int, 0 for "no fixed limit", None if not offered."""
        if "SIZE" not in self:
            return None
        value = self["SIZE"].split(" ")[0]
        return int(value) if value.isdigit() else 0

    @property
    def pipelining(self) -> bool:
        """PIPELINING (RFC 2920)."""
        return "PIPELINING" in self

    @property
    def eightbitmime(self) -> bool:
        """8BITMIME (RFC 6152)."""
        return "8BITMIME" in self

    @property
    def smtputf8(self) -> bool:
        """SMTPUTF8 (RFC 6531)."""
        return "SMTPUTF8" in self

    @property
    def starttls(self) -> bool:
        """STARTTLS (RFC 3207)."""
        return "STARTTLS" in self

    @property
    def chunking(self) -> bool:
        """CHUNKING, the BDAT command (RFC 3030)."""
        return "CHUNKING" in self

    @property
    def binarymime(self) -> bool:
        """BINARYMIME (RFC 3030)."""
        return "BINARYMIME" in self

    @property
    def dsn(self) -> bool:
        """DSN (RFC 3461)."""
        return "DSN" in self

    @property
    def enhancedstatuscodes(self) -> bool:
        """ENHANCEDSTATUSCODES (RFC 2034)."""
        return "ENHANCEDSTATUSCODES" in self

    @property
    def auth_mechanisms(self) -> frozenset[str]:
        """The SASL mechanisms offered with AUTH (RFC 4954), upper-cased."""
        if "AUTH" not in self:
            return frozenset()
        return frozenset(m.upper() for m in self["AUTH"].split())
