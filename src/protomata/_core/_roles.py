"""Connection roles shared by every protocol machine."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["CLIENT", "SERVER", "Role"]


class Role(enum.Enum):
    """Which end of the conversation a machine plays."""

    # Members are singletons: identity hashing is correct and runs in C
    # (Enum's own __hash__ is Python code, slow on hot dict lookups).
    __hash__ = object.__hash__

    CLIENT = "CLIENT"
    SERVER = "SERVER"

    def __repr__(self) -> str:
        return self.value

    __str__ = __repr__

    @property
    def peer(self) -> Role:
        """The role at the other end."""
        return SERVER if self is CLIENT else CLIENT


CLIENT: Final = Role.CLIENT
SERVER: Final = Role.SERVER
