"""Exceptions shared by every protocol machine.

The two concrete classes say *who* broke the protocol:

* :class:`LocalProtocolError` -- our own user asked the machine to send
  something invalid, or to act in a state where that is not allowed.
* :class:`RemoteProtocolError` -- the peer sent bytes that violate the
  protocol.  After one, the machine is in its ``ERROR`` state.

Both carry ``error_status_hint``: the reply the peer should get, in the
protocol's own terms (an HTTP status code, an SMTP reply code, ...).
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(Exception):
    """Base class of :class:`LocalProtocolError` and :class:`RemoteProtocolError`.

    Never raised itself; catch it to handle both.
    """

    error_status_hint: int

    def __init__(self, msg: str, error_status_hint: int = 400) -> None:
        if type(self) is ProtocolError:
            raise TypeError("ProtocolError is abstract; raise a subclass")
        super().__init__(msg)
        self.error_status_hint = error_status_hint


class LocalProtocolError(ProtocolError):
    """We (the user of the machine) tried to do something the protocol forbids."""

    def _reraise_as_remote_protocol_error(self) -> NoReturn:
        # A parser helper found the peer's bytes invalid while validating them
        # with the same code that checks what we send.  Re-label the error
        # without losing the original traceback.
        self.__class__ = RemoteProtocolError  # type: ignore[assignment]
        raise self


class RemoteProtocolError(ProtocolError):
    """The peer violated the protocol."""
