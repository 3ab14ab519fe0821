"""send_mail, the pure client operation, run against our server machine in memory."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from protomata._core._ops import Operation, Receive, Send, StartTLS
from protomata.smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Connection,
    ConnectionClosed,
    DataChunk,
    Ehlo,
    EndOfData,
    MailFrom,
    RcptTo,
    Reply,
    SMTPError,
    SMTPEvent,
    SMTPRecipientsRefused,
    State,
    send_mail,
)

from ._util import EHLO_LINES, default_reply

GREETING = Reply(220, "mx.example ESMTP")
Answer = Callable[[SMTPEvent], list[Reply]]


def run(
    operation: Operation[dict[str, Reply]],
    answer: Answer = default_reply,
    *,
    lmtp: bool = False,
    greeting: Reply = GREETING,
) -> tuple[dict[str, Reply], list[SMTPEvent], list[object]]:
    """Run *operation* against a server machine; (result, server events, requests)."""
    server = Connection(SERVER, lmtp=lmtp)
    to_client = bytearray(server.send(greeting))
    events: list[SMTPEvent] = []
    requests: list[object] = []
    value: object = None
    while True:
        try:
            request = operation.send(value)
        except StopIteration as stop:
            return stop.value, events, requests
        requests.append(request)
        value = None
        if isinstance(request, Send):
            assert isinstance(request.data, bytes)
            server.receive_data(request.data)
            while True:
                event = server.next_event()
                if event is NEED_DATA or event is PAUSED or isinstance(event, ConnectionClosed):
                    break
                events.append(event)
                for reply in answer(event):
                    to_client += server.send(reply)
        elif isinstance(request, Receive):
            value = bytes(to_client) or b""
            to_client.clear()
        elif isinstance(request, StartTLS):
            assert server.state is State.TLS_PENDING
            server.start_tls_done()  # the "handshake"


MESSAGE = b"Subject: hi\r\n\r\n.dot line\r\nbye\r\n"


def test_send_mail_pipelined_with_starttls() -> None:
    client = Connection(CLIENT)
    refused, events, requests = run(
        send_mail(client, "a@x", ["b@y", "c@y"], MESSAGE, server_hostname="mx.example")
    )
    assert refused == {}
    assert StartTLS(server_hostname="mx.example") in requests
    assert [type(e).__name__ for e in events] == [
        "Ehlo", "StartTLS", "Ehlo", "MailFrom", "RcptTo", "RcptTo", "Data",
        "DataChunk", "EndOfData", "Quit",
    ]  # fmt: skip
    assert events[3] == MailFrom("a@x", [("SIZE", str(len(MESSAGE)))])
    assert events[7] == DataChunk(MESSAGE)
    assert client.tls_active and client.state is State.CLOSED
    # MAIL, RCPT, RCPT and DATA went out in one write
    sends = [r.data for r in requests if isinstance(r, Send)]
    assert any(s.startswith(b"MAIL FROM:") and s.endswith(b"DATA\r\n") for s in sends)


def test_send_mail_without_pipelining_and_some_refused() -> None:
    def answer(event: SMTPEvent) -> list[Reply]:
        if isinstance(event, Ehlo):
            return [Reply(250, ["mx.example", "8BITMIME"])]
        if isinstance(event, RcptTo) and event.address == "nobody@y":
            return [Reply(550, "no such user", "5.1.1")]
        return default_reply(event)

    client = Connection(CLIENT)
    refused, events, _ = run(
        send_mail(client, "a@x", ["b@y", "nobody@y"], MESSAGE, starttls="never"), answer
    )
    assert refused == {"nobody@y": Reply(550, "no such user", "5.1.1")}
    assert EndOfData() in events


def test_send_mail_all_refused_and_required_tls() -> None:
    def answer(event: SMTPEvent) -> list[Reply]:
        if isinstance(event, RcptTo):
            return [Reply(550, "no", "5.1.1")]
        return default_reply(event)

    with pytest.raises(SMTPRecipientsRefused) as info:
        run(send_mail(Connection(CLIENT), "a@x", ["b@y"], MESSAGE), answer)
    assert list(info.value.refused) == ["b@y"]

    def no_tls(event: SMTPEvent) -> list[Reply]:
        if isinstance(event, Ehlo):
            return [Reply(250, "mx.example")]
        return default_reply(event)

    with pytest.raises(SMTPError):
        run(send_mail(Connection(CLIENT), "a@x", ["b@y"], MESSAGE, starttls="required"), no_tls)


def test_send_mail_helo_fallback_and_errors() -> None:
    def old_server(event: SMTPEvent) -> list[Reply]:
        if isinstance(event, Ehlo):
            return [Reply(502, "what?")]
        if isinstance(event, MailFrom):
            return [Reply(451, "try later", "4.3.0")]
        return default_reply(event)

    with pytest.raises(SMTPError) as info:
        run(send_mail(Connection(CLIENT), "a@x", ["b@y"], MESSAGE), old_server)
    assert info.value.reply == Reply(451, "try later", "4.3.0")
    with pytest.raises(SMTPError):
        run(send_mail(Connection(CLIENT), "a@x", ["b@y"], MESSAGE), greeting=Reply(554, "go away"))


def test_send_mail_lmtp_reports_per_recipient_failures() -> None:
    def answer(event: SMTPEvent) -> list[Reply]:
        if isinstance(event, EndOfData):
            return [Reply(250, "ok"), Reply(452, "full", "4.2.2")]
        return default_reply(event)

    client = Connection(CLIENT, lmtp=True)
    refused, _, _ = run(send_mail(client, "a@x", ["b@y", "c@y"], MESSAGE), answer, lmtp=True)
    assert refused == {"c@y": Reply(452, "full", "4.2.2")}
    assert EHLO_LINES  # the LHLO reply offered PIPELINING
