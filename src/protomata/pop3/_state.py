"""The states of a POP3 session (RFC 1939 section 3), one per connection."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["AUTHORIZATION", "CLOSED", "ERROR", "GREETING", "TRANSACTION", "UPDATE", "State"]


class State(enum.Enum):
    """Where a POP3 session is.  Both roles move through the same states."""

    __hash__ = object.__hash__

    #: The server has not greeted yet.
    GREETING = "GREETING"
    #: Greeted; the client must identify itself (USER/PASS, APOP, AUTH).
    AUTHORIZATION = "AUTHORIZATION"
    #: Logged in; the mailbox is locked and can be read.
    TRANSACTION = "TRANSACTION"
    #: The server received QUIT in TRANSACTION and removes deleted messages.
    UPDATE = "UPDATE"
    #: The session is over (QUIT answered, or EOF).
    CLOSED = "CLOSED"
    #: The peer broke the protocol; the connection must be closed.
    ERROR = "ERROR"

    def __repr__(self) -> str:
        return self.value

    __str__ = __repr__


GREETING: Final = State.GREETING
AUTHORIZATION: Final = State.AUTHORIZATION
TRANSACTION: Final = State.TRANSACTION
UPDATE: Final = State.UPDATE
CLOSED: Final = State.CLOSED
ERROR: Final = State.ERROR
