"""Shared helpers for the POP3 tests: drive a client and a server in memory."""

from __future__ import annotations

from typing import Any

from protomata.pop3 import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Capabilities,
    Connection,
    Err,
    Greeting,
    MultilineData,
    MultilineEnd,
    Ok,
    ScanListing,
    UidListing,
)

FINAL_REPLIES = (Ok, Err, Greeting, ScanListing, UidListing, Capabilities, MultilineEnd)


def greeted_pair(
    text: str = "POP3 ready <1896.697170952@dbc.mtview.ca.us>",
) -> tuple[Connection, Connection]:
    """A client and a server that have exchanged the greeting."""
    client = Connection(CLIENT)
    server = Connection(SERVER)
    client.receive_data(server.send(Greeting(text)))
    assert client.next_event() == Greeting(text)
    return client, server


def drain(conn: Connection) -> list[Any]:
    """Every event until NEED_DATA or PAUSED, with MultilineData merged."""
    events: list[Any] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return merge(events)
        events.append(event)


def merge(events: list[Any]) -> list[Any]:
    """Join adjacent MultilineData events (their split is arbitrary)."""
    out: list[Any] = []
    for event in events:
        if type(event) is MultilineData and out and type(out[-1]) is MultilineData:
            out[-1] = MultilineData(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def exchange(client: Connection, server: Connection, command: Any, *replies: Any) -> list[Any]:
    """Send *command*, check the server sees it, answer with *replies*; client events."""
    server.receive_data(client.send(command))
    assert server.next_event() == command
    wire = b"".join(server.send(reply) for reply in replies)
    client.receive_data(wire)
    return drain(client)
