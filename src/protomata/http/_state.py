"""The HTTP/1.1 connection state machine (the two-roles model of h11).

Theory of operation
-------------------
Each side of the connection (CLIENT, SERVER) has its own state.  Events
move the side that sent them (event-triggered transitions, the tables
below); then rules that look at both states at once fire until nothing
changes (state-triggered transitions):

* a client that finished its request while a protocol switch (CONNECT or
  Upgrade) is pending waits in MIGHT_SWITCH_PROTOCOL until the server
  accepts (SWITCHED_PROTOCOL) or declines (back to DONE);
* when keep-alive is off, a side that is DONE moves to MUST_CLOSE;
* when one side closes or errors, the other, once done, must close too.

The server also sees the client's Request: that is what moves it from
IDLE to SEND_RESPONSE.
"""

from __future__ import annotations

import enum
from typing import Final, NoReturn

from .._core import CLIENT, SERVER, LocalProtocolError, Role
from ._events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)

__all__ = [
    "CLOSED",
    "DONE",
    "ERROR",
    "IDLE",
    "MIGHT_SWITCH_PROTOCOL",
    "MUST_CLOSE",
    "SEND_BODY",
    "SEND_RESPONSE",
    "SWITCHED_PROTOCOL",
    "ConnectionState",
    "State",
    "Switch",
]


class State(enum.Enum):
    """The state of one side of an HTTP connection."""

    # Members are singletons: identity hashing is correct and runs in C
    # (Enum's own __hash__ is Python code, slow on hot dict lookups).
    __hash__ = object.__hash__

    IDLE = "IDLE"
    SEND_RESPONSE = "SEND_RESPONSE"
    SEND_BODY = "SEND_BODY"
    DONE = "DONE"
    MUST_CLOSE = "MUST_CLOSE"
    CLOSED = "CLOSED"
    ERROR = "ERROR"
    MIGHT_SWITCH_PROTOCOL = "MIGHT_SWITCH_PROTOCOL"
    SWITCHED_PROTOCOL = "SWITCHED_PROTOCOL"

    def __repr__(self) -> str:
        return self.value

    __str__ = __repr__


IDLE: Final = State.IDLE
SEND_RESPONSE: Final = State.SEND_RESPONSE
SEND_BODY: Final = State.SEND_BODY
DONE: Final = State.DONE
MUST_CLOSE: Final = State.MUST_CLOSE
CLOSED: Final = State.CLOSED
ERROR: Final = State.ERROR
MIGHT_SWITCH_PROTOCOL: Final = State.MIGHT_SWITCH_PROTOCOL
SWITCHED_PROTOCOL: Final = State.SWITCHED_PROTOCOL


class Switch(enum.Enum):
    """The two ways a client can propose leaving HTTP/1.1."""

    # Members are singletons: identity hashing is correct and runs in C
    # (Enum's own __hash__ is Python code, slow on hot dict lookups).
    __hash__ = object.__hash__

    UPGRADE = "UPGRADE"
    CONNECT = "CONNECT"


# Keys: (role, state, event type, accepted switch or None).  The server's
# entry for the client's Request uses the role CLIENT as its "switch" slot.
_EventKey = tuple[Role, State, type, object]
_TRANSITIONS: dict[_EventKey, State] = {}


def _add(role: Role, state: State, event: type, new: State, extra: object = None) -> None:
    _TRANSITIONS[(role, state, event, extra)] = new


for _state in (IDLE, DONE, MUST_CLOSE, CLOSED):
    _add(CLIENT, _state, ConnectionClosed, CLOSED)
    _add(SERVER, _state, ConnectionClosed, CLOSED)
_add(CLIENT, IDLE, Request, SEND_BODY)
_add(CLIENT, SEND_BODY, Data, SEND_BODY)
_add(CLIENT, SEND_BODY, EndOfMessage, DONE)
# A server may answer (with an error) before it has parsed a request.
_add(SERVER, IDLE, Response, SEND_BODY)
_add(SERVER, IDLE, Request, SEND_RESPONSE, CLIENT)
_add(SERVER, SEND_RESPONSE, InformationalResponse, SEND_RESPONSE)
_add(SERVER, SEND_RESPONSE, Response, SEND_BODY)
_add(SERVER, SEND_RESPONSE, InformationalResponse, SWITCHED_PROTOCOL, Switch.UPGRADE)
_add(SERVER, SEND_RESPONSE, Response, SWITCHED_PROTOCOL, Switch.CONNECT)
_add(SERVER, SEND_BODY, Data, SEND_BODY)
_add(SERVER, SEND_BODY, EndOfMessage, DONE)

# (client state, server state) -> {role: new state}
_JOINT: dict[tuple[State, State], tuple[Role, State]] = {
    (MIGHT_SWITCH_PROTOCOL, SWITCHED_PROTOCOL): (CLIENT, SWITCHED_PROTOCOL),
    (CLOSED, DONE): (SERVER, MUST_CLOSE),
    (CLOSED, IDLE): (SERVER, MUST_CLOSE),
    (ERROR, DONE): (SERVER, MUST_CLOSE),
    (DONE, CLOSED): (CLIENT, MUST_CLOSE),
    (IDLE, CLOSED): (CLIENT, MUST_CLOSE),
    (DONE, ERROR): (CLIENT, MUST_CLOSE),
}


_NO_PROPOSALS: frozenset[Switch] = frozenset()


class ConnectionState:
    """Both sides' states, keep-alive, and pending protocol-switch proposals."""

    __slots__ = ("client", "keep_alive", "pending_switch_proposals", "server")

    def __init__(self) -> None:
        self.client = IDLE
        self.server = IDLE
        self.keep_alive = True
        # Proposals are rare: an empty frozenset, replaced when one arrives.
        self.pending_switch_proposals: frozenset[Switch] = _NO_PROPOSALS

    @property
    def states(self) -> dict[Role, State]:
        return {CLIENT: self.client, SERVER: self.server}

    def get(self, role: Role) -> State:
        return self.client if role is CLIENT else self.server

    def _set(self, role: Role, state: State) -> None:
        if role is CLIENT:
            self.client = state
        else:
            self.server = state

    def process_error(self, role: Role) -> None:
        self._set(role, ERROR)
        self._fire_state_triggered_transitions()

    def process_keep_alive_disabled(self) -> None:
        self.keep_alive = False
        self._fire_state_triggered_transitions()

    def process_client_switch_proposal(self, switch: Switch) -> None:
        self.pending_switch_proposals = self.pending_switch_proposals | {switch}
        self._fire_state_triggered_transitions()

    def process_event(self, role: Role, event_type: type, server_switch: Switch | None) -> None:
        if server_switch is not None:
            if server_switch not in self.pending_switch_proposals:
                raise LocalProtocolError(
                    f"Received server {server_switch} without a pending proposal"
                )
        elif event_type is Response:
            self.pending_switch_proposals = _NO_PROPOSALS
        if role is CLIENT:
            new = _TRANSITIONS.get((CLIENT, self.client, event_type, None))
            if new is None:
                self._refuse(role, self.client, event_type)
            self.client = new
            if event_type is Request:
                # The server sees the request too; that starts its response.
                server_new = _TRANSITIONS.get((SERVER, self.server, Request, CLIENT))
                if server_new is None:
                    self._refuse(SERVER, self.server, Request)
                self.server = server_new
        else:
            new = _TRANSITIONS.get((SERVER, self.server, event_type, server_switch))
            if new is None:
                self._refuse(role, self.server, event_type)
            self.server = new
        self._fire_state_triggered_transitions()

    @staticmethod
    def _refuse(role: Role, state: State, event_type: type) -> NoReturn:
        raise LocalProtocolError(
            f"can't handle event type {event_type.__name__} when role={role!r} and state={state!r}"
        )

    def _fire_state_triggered_transitions(self) -> None:
        if (
            self.keep_alive
            and not self.pending_switch_proposals
            and self.client is not MIGHT_SWITCH_PROTOCOL
            and (self.client, self.server) not in _JOINT
        ):
            return  # the common case: nothing follows from the new states
        while True:
            client, server = start = (self.client, self.server)
            if self.pending_switch_proposals:
                if client is DONE:
                    client = MIGHT_SWITCH_PROTOCOL
            elif client is MIGHT_SWITCH_PROTOCOL:
                client = DONE
            if not self.keep_alive:
                if client is DONE:
                    client = MUST_CLOSE
                if server is DONE:
                    server = MUST_CLOSE
            joint = _JOINT.get((client, server))
            if joint is not None:
                if joint[0] is CLIENT:
                    client = joint[1]
                else:
                    server = joint[1]
            if (client, server) == start:
                return
            self.client = client
            self.server = server

    def start_next_cycle(self) -> None:
        if self.client is not DONE or self.server is not DONE:
            raise LocalProtocolError(f"not in a reusable state. self.states={self.states}")
        # DONE on both sides implies keep-alive and no pending switch.
        self.client = IDLE
        self.server = IDLE
