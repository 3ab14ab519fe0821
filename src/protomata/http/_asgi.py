"""ASGI 3 (``http`` and ``lifespan`` scopes) as pure logic.

Theory of operation
-------------------
An ASGI server adapter does three things per request: build the *scope*
dictionary, translate the messages the application sends into response
actions, and produce the messages the application receives.  All three
are pure and live here, so the asyncio and trio adapters only wire the
``receive``/``send`` callables to their I/O.

* :func:`http_scope` builds the ``http`` scope from a parsed
  :class:`~protomata.http.Request`.
* :class:`ResponseTranslator` validates the sequence of
  ``http.response.*`` messages and turns each into an action tuple:
  ``("start", status, headers)``, ``("body", data, more_body)``,
  or ``("ignore",)`` (data sent after the response ended is dropped,
  as the spec allows after a disconnect).  A start is held back until the
  first body message so that a one-piece response can be sent with a
  Content-Length in one write: the first body action then reads
  ``("response", status, headers, data, more_body)``.
* :func:`request_message` / :data:`DISCONNECT` are what ``receive`` returns.
* :class:`Lifespan` is the startup/shutdown conversation.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from ._events import Request

__all__ = [
    "ASGI_VERSION",
    "DISCONNECT",
    "ASGIProtocolError",
    "Lifespan",
    "LifespanFailure",
    "ResponseTranslator",
    "http_scope",
    "lifespan_scope",
    "request_message",
]

#: The ``asgi`` key of every scope we build.
ASGI_VERSION: dict[str, str] = {"version": "3.0", "spec_version": "2.3"}

#: What ``receive`` returns once the client is gone or the response is over.
DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}

_EMPTY_REQUEST: dict[str, Any] = {"type": "http.request", "body": b"", "more_body": False}


class ASGIProtocolError(Exception):
    """The application sent a message ASGI does not allow here."""


class LifespanFailure(Exception):
    """The application reported ``lifespan.startup.failed`` or ``shutdown.failed``."""


def _decode_path(raw_path: bytes) -> str:
    # ASGI wants the path percent-decoded and then read as UTF-8.
    if raw_path == b"/":
        return "/"
    return unquote_to_bytes(raw_path).decode("utf-8", errors="surrogateescape")


def http_scope(
    request: Request,
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    scheme: str = "http",
    *,
    root_path: str = "",
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ASGI ``http`` scope for *request*.

    *client* and *server* are (host, port) pairs (None when unknown);
    *scheme* is ``"http"`` or ``"https"``; *state* is a shallow copy of
    the lifespan state (ASGI's ``state`` key) when the server has one.
    """
    target = request.target
    raw_path, _, query = target.partition(b"?")
    if not raw_path.startswith(b"/") and b"://" in raw_path:
        # absolute-form (proxies): the path is what follows the authority
        rest = raw_path.split(b"://", 1)[1]
        slash = rest.find(b"/")
        raw_path = rest[slash:] if slash >= 0 else b"/"
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": "1.1" if request.http_version == b"1.1" else "1.0",
        "method": request.method.decode("ascii"),
        "scheme": scheme,
        "path": _decode_path(raw_path),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": [(name, value) for _, name, value in request.headers._full_items],
        "client": client,
        "server": server,
    }
    if state is not None:
        scope["state"] = dict(state)
    return scope


def request_message(body: bytes, more_body: bool) -> dict[str, Any]:
    """An ``http.request`` message carrying *body*."""
    if not body and not more_body:
        return dict(_EMPTY_REQUEST)
    return {"type": "http.request", "body": body, "more_body": more_body}


def _headers(value: Any) -> Any:
    if type(value) is list or type(value) is tuple:
        return value  # items are checked when the response head is built
    try:
        pairs = [(bytes(name), bytes(val)) for name, val in value]
    except (TypeError, ValueError):
        raise ASGIProtocolError(
            f"response headers must be an iterable of [name, value] byte pairs, not {value!r}"
        ) from None
    return pairs


class ResponseTranslator:
    """Validates an application's ``http.response.*`` messages, in order.

    Feed each message the app sends to :meth:`feed`; it returns the action
    the adapter must perform (see the module docstring).
    """

    __slots__ = ("_headers", "_status", "complete", "started")

    def __init__(self) -> None:
        #: a start message was accepted (the head may still be held back)
        self.started = False
        #: the final body message was accepted
        self.complete = False
        self._status = 0
        self._headers: Any = ()

    @property
    def head_pending(self) -> bool:
        """A start was accepted but its head has not been handed out yet."""
        return self.started and self._status != 0

    def take_head(self) -> tuple[int, Any]:
        """Hand out a held-back head (when the app returns with no body):
        the status and the app's header pairs."""
        status, headers = self._status, self._headers
        self._status, self._headers = 0, ()
        return status, headers

    def feed(self, message: Any) -> tuple[Any, ...]:
        """The action for *message* (raises :class:`ASGIProtocolError` if invalid)."""
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise ASGIProtocolError(f"ASGI message without a type: {message!r}") from None
        if kind == "http.response.body":
            if not self.started:
                raise ASGIProtocolError("http.response.body sent before http.response.start")
            if self.complete:
                return ("ignore",)
            body = message.get("body", b"")
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise ASGIProtocolError(f"http.response.body 'body' must be bytes, not {body!r}")
            more = bool(message.get("more_body", False))
            self.complete = not more
            if self._status:
                status, headers = self.take_head()
                return ("response", status, headers, bytes(body), more)
            return ("body", bytes(body), more)
        if kind == "http.response.start":
            if self.started:
                raise ASGIProtocolError("http.response.start sent twice")
            if message.get("trailers"):
                raise ASGIProtocolError("response trailers are not supported by this server")
            status = message.get("status")
            if type(status) is not int or not 200 <= status < 600:
                if type(status) is int and 100 <= status < 200:
                    raise ASGIProtocolError("informational responses cannot be sent by ASGI apps")
                raise ASGIProtocolError(f"invalid status in http.response.start: {status!r}")
            self._headers = _headers(message.get("headers", ()))
            self._status = status
            self.started = True
            return ("ignore",)
        if kind == "http.response.trailers":
            raise ASGIProtocolError("response trailers are not supported by this server")
        raise ASGIProtocolError(f"unexpected ASGI message type {kind!r} in an http scope")


def lifespan_scope(state: dict[str, Any]) -> dict[str, Any]:
    """The ASGI ``lifespan`` scope; *state* is shared with every request scope."""
    return {"type": "lifespan", "asgi": ASGI_VERSION, "state": state}


class Lifespan:
    """The lifespan conversation: which message the app receives next and
    what its replies mean.

    The adapter runs the app with :func:`lifespan_scope`; ``receive``
    returns :meth:`next_message` (``None`` means "wait until shutdown is
    requested", after which :meth:`begin_shutdown` makes the next message
    ``lifespan.shutdown``); ``send`` calls :meth:`feed`.  ``phase`` tells
    where things stand: ``"starting"``, ``"started"``, ``"stopping"``,
    ``"stopped"`` or ``"failed"``; ``error`` holds a failure message.
    """

    __slots__ = ("_delivered", "error", "phase")

    def __init__(self) -> None:
        self.phase = "starting"
        self.error = ""
        self._delivered = False  # the message for the current phase was received

    def next_message(self) -> dict[str, Any] | None:
        """The message ``receive`` should return now, or None to wait."""
        if self.phase == "starting" and not self._delivered:
            self._delivered = True
            return {"type": "lifespan.startup"}
        if self.phase == "stopping" and not self._delivered:
            self._delivered = True
            return {"type": "lifespan.shutdown"}
        return None

    def begin_shutdown(self) -> None:
        """The server is stopping: the next message is ``lifespan.shutdown``."""
        if self.phase != "started":
            raise ASGIProtocolError(f"cannot shut down a lifespan in phase {self.phase!r}")
        self.phase = "stopping"
        self._delivered = False

    def feed(self, message: Any) -> None:
        """Take a message the app sent; raises :class:`ASGIProtocolError` if out of turn."""
        kind = message.get("type") if isinstance(message, dict) else None
        expected = {"starting": "lifespan.startup.", "stopping": "lifespan.shutdown."}.get(
            self.phase
        )
        if expected is None or not isinstance(kind, str) or not kind.startswith(expected):
            raise ASGIProtocolError(f"unexpected lifespan message {kind!r} in phase {self.phase}")
        outcome = kind[len(expected) :]
        if outcome == "complete":
            self.phase = "started" if self.phase == "starting" else "stopped"
        elif outcome == "failed":
            self.phase = "failed"
            self.error = str(message.get("message", ""))
        else:
            raise ASGIProtocolError(f"unknown lifespan message {kind!r}")
