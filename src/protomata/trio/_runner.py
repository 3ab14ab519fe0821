"""The trio runner of pure operations (see :mod:`protomata._core._ops`)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .._core._ops import Call, Close, IORequest, Operation, Receive, Send, StartTLS
from ._stream import HIGH_WATER, Stream

__all__ = ["run"]

T = TypeVar("T")

CallHandler = Callable[[Call], "Any | Awaitable[Any]"]

_isawaitable = inspect.isawaitable


def _no_calls(call: Call) -> Any:
    raise RuntimeError(f"operation asked for {call.name!r} but no call handler was given")


async def run(op: Operation[T], stream: Stream, on_call: CallHandler = _no_calls) -> T:
    """Run *op* to completion over *stream* and return its result.

    ``Send`` requests are queued and leave in one write when the operation
    next waits for anything, ends, or has queued :data:`HIGH_WATER` bytes.
    *on_call* may return a value or an awaitable.  Transport errors
    (timeouts, resets) and errors from *on_call* are thrown into the
    operation at the request that caused them; cancellation is not: it
    closes the operation and propagates.
    """
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                request: IORequest = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                await stream.flush()
                return stop.value  # type: ignore[no-any-return]
            value = error = None
            kind = type(request)
            try:
                if kind is Send:
                    stream.write(request.data)  # type: ignore[attr-defined]
                    if stream.pending_size >= HIGH_WATER:
                        await stream.flush()
                elif kind is Receive:
                    value = await stream.receive_some(request.max_bytes, request.timeout)  # type: ignore[attr-defined]
                elif kind is Call:
                    value = on_call(request)  # type: ignore[arg-type]
                    if _isawaitable(value):
                        await stream.flush()
                        value = await value
                elif kind is Close:
                    await stream.aclose()
                elif kind is StartTLS:
                    await stream.start_tls(request.server_hostname, request.server_side)  # type: ignore[attr-defined]
                else:
                    raise TypeError(f"unknown I/O request {request!r}")
            except Exception as exc:
                error = exc
    except BaseException:
        op.close()
        raise
