"""Typed sentinels returned by ``next_event()``.

They are members of an :class:`enum.Enum`, so ``event is NEED_DATA`` narrows
the type of ``event`` for mypy and pyright: after the checks for both
sentinels, the remaining type is the protocol's event union.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

__all__ = ["NEED_DATA", "PAUSED", "Sentinel", "SentinelType"]


class Sentinel(enum.Enum):
    """The values ``next_event()`` returns when it has no event to give."""

    # Members are singletons: identity hashing is correct and runs in C
    # (Enum's own __hash__ is Python code, slow on hot dict lookups).
    __hash__ = object.__hash__

    #: More bytes are needed before another event can be produced.
    NEED_DATA = "NEED_DATA"
    #: The machine will not parse further until the user acts (for HTTP:
    #: ``start_next_cycle()``; for a protocol switch: take ``trailing_data``).
    PAUSED = "PAUSED"

    def __repr__(self) -> str:
        return self.value

    __str__ = __repr__


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED

#: The type of the two sentinels, for annotations: ``Event | SentinelType``.
SentinelType = Literal[Sentinel.NEED_DATA, Sentinel.PAUSED]
