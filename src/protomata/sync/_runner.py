"""The blocking runner of pure operations (see :mod:`protomata._core._ops`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._core._ops import Call, Close, IORequest, Operation, Receive, Send, StartTLS
from ._stream import SocketStream

__all__ = ["run"]

T = TypeVar("T")

CallHandler = Callable[[Call], Any]


def _no_calls(call: Call) -> Any:
    raise RuntimeError(f"operation asked for {call.name!r} but no call handler was given")


def run(op: Operation[T], stream: SocketStream, on_call: CallHandler = _no_calls) -> T:
    """Run *op* to completion over *stream* and return its result.

    Transport errors (timeouts, resets) and errors from *on_call* are
    thrown into the operation at the request that caused them.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request: IORequest = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value = error = None
        kind = type(request)
        try:
            if kind is Send:
                stream.send_all(request.data)  # type: ignore[attr-defined]
            elif kind is Receive:
                value = stream.receive_some(request.max_bytes, request.timeout)  # type: ignore[attr-defined]
            elif kind is Call:
                value = on_call(request)  # type: ignore[arg-type]
            elif kind is Close:
                stream.close()
            elif kind is StartTLS:
                stream.start_tls(request.server_hostname, request.server_side)  # type: ignore[attr-defined]
            else:
                raise TypeError(f"unknown I/O request {request!r}")
        except Exception as exc:
            error = exc
