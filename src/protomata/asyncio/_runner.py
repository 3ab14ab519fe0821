"""The asyncio runner of pure operations (see :mod:`protomata._core._ops`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any, TypeVar

from .._core._ops import Call, Close, IORequest, Operation, Receive, Send, StartTLS
from ._stream import _HEAD, Stream

__all__ = ["run"]

T = TypeVar("T")

CallHandler = Callable[[Call], "Any | Awaitable[Any]"]


def _isawaitable(value: Any) -> bool:
    # Cheaper than inspect.isawaitable (an ABC check) for the common cases.
    if type(value) is CoroutineType:
        return True
    if value is None or type(value) is bytes:
        return False
    return hasattr(value, "__await__")


def _no_calls(call: Call) -> Any:
    raise RuntimeError(f"operation asked for {call.name!r} but no call handler was given")


async def run(op: Operation[T], stream: Stream, on_call: CallHandler = _no_calls) -> T:
    """Run *op* to completion over *stream* and return its result.

    ``Send`` requests are queued and leave in one write when the operation
    next waits for anything (or ends), so a response head and its body go
    out together.  *on_call* may return a value or an awaitable.  Transport
    errors (timeouts, resets) and errors from *on_call* are thrown into the
    operation at the request that caused them.
    """
    value: Any = None
    error: BaseException | None = None
    write = stream.write
    while True:
        try:
            request: IORequest = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            if stream.flush_nowait():
                await stream.drain()
            return stop.value  # type: ignore[no-any-return]
        value = error = None
        kind = type(request)
        try:
            if kind is Send:
                write(request.data)  # type: ignore[attr-defined]
            elif kind is Receive:
                value = stream.receive_nowait(request.max_bytes)  # type: ignore[attr-defined]
                if request.timeout != _HEAD:  # type: ignore[attr-defined]
                    stream.head_deadline = None  # a head is not being read
                if value is None:
                    value = await stream.receive_some(request.max_bytes, request.timeout)  # type: ignore[attr-defined]
            elif kind is Call:
                value = on_call(request)  # type: ignore[arg-type]
                if _isawaitable(value):
                    if stream.flush_nowait():
                        await stream.drain()
                    value = await value
            elif kind is Close:
                stream.close()
            elif kind is StartTLS:
                await stream.start_tls(request.server_hostname, request.server_side)  # type: ignore[attr-defined]
            else:
                raise TypeError(f"unknown I/O request {request!r}")
        except Exception as exc:
            error = stream.last_error = exc
