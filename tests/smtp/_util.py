"""Helpers for SMTP tests: feed a machine, collect events, answer like a server."""

from __future__ import annotations

from protomata.smtp import (
    NEED_DATA,
    PAUSED,
    Auth,
    AuthContinuation,
    BadCommand,
    Bdat,
    Connection,
    ConnectionClosed,
    Data,
    DataChunk,
    Ehlo,
    EndOfData,
    Helo,
    Lhlo,
    Quit,
    Reply,
    SMTPEvent,
    StartTLS,
)

EHLO_LINES = [
    "mx.example",
    "PIPELINING",
    "SIZE 10240000",
    "8BITMIME",
    "SMTPUTF8",
    "CHUNKING",
    "STARTTLS",
    "AUTH PLAIN LOGIN",
    "DSN",
    "ENHANCEDSTATUSCODES",
]


def events_of(conn: Connection, data: bytes = b"") -> list[SMTPEvent]:
    """Feed *data* and return events until NEED_DATA or PAUSED."""
    if data:
        conn.receive_data(data)
    out = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return out
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return out


def default_reply(event: SMTPEvent, lmtp_rcpts: int = 1) -> list[Reply]:
    """What a permissive test server answers to *event* (None for body pieces)."""
    if isinstance(event, BadCommand):
        return [event.reply]
    if isinstance(event, (Ehlo, Lhlo)):
        return [Reply(250, EHLO_LINES)]
    if isinstance(event, Helo):
        return [Reply(250, "mx.example")]
    if isinstance(event, Data):
        return [Reply(354, "End data with <CR><LF>.<CR><LF>")]
    if isinstance(event, DataChunk | ConnectionClosed):
        return []
    if isinstance(event, EndOfData) or (isinstance(event, Bdat) and event.last):
        return [Reply(250, "queued", "2.0.0")] * lmtp_rcpts
    if isinstance(event, Quit):
        return [Reply(221, "bye", "2.0.0")]
    if isinstance(event, StartTLS):
        return [Reply(220, "go ahead", "2.0.0")]
    if isinstance(event, Auth):
        return [Reply(334, "")]
    if isinstance(event, AuthContinuation):
        return [Reply(235, "ok", "2.7.0")]
    return [Reply(250, "ok", "2.0.0")]


def serve(server: Connection, data: bytes, lmtp_rcpts: int = 1) -> tuple[list[SMTPEvent], bytes]:
    """Feed *data* to *server*, answer every event by default; (events, wire reply)."""
    if data:
        server.receive_data(data)
    events: list[SMTPEvent] = []
    out = []
    while True:
        event = server.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events, b"".join(out)
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events, b"".join(out)
        out += [server.send(r) for r in default_reply(event, lmtp_rcpts)]
