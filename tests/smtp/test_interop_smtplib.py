"""Differential test: the stdlib smtplib client against our server machine.

The socket pair and the thread live in this test only; the machine under
test stays pure.  Deliberate difference: none observed for these commands.
"""

from __future__ import annotations

import email.message
import email.policy
import smtplib
import socket
import threading

import pytest

from protomata.smtp import (
    NEED_DATA,
    PAUSED,
    SERVER,
    BadCommand,
    Connection,
    ConnectionClosed,
    DataChunk,
    EndOfData,
    MailFrom,
    RcptTo,
    Reply,
    SMTPEvent,
    State,
)

from ._util import default_reply


def run_server(sock: socket.socket, events: list[SMTPEvent], errors: list[BaseException]) -> None:
    conn = Connection(SERVER)
    try:
        sock.sendall(conn.send(Reply(220, "test.example ESMTP protomata")))
        while conn.state is not State.CLOSED:
            event = conn.next_event()
            if event is NEED_DATA:
                conn.receive_data(sock.recv(65536))
                continue
            if event is PAUSED or isinstance(event, ConnectionClosed):
                break
            events.append(event)
            replies = default_reply(event)
            if isinstance(event, RcptTo) and event.address.startswith("nobody"):
                replies = [Reply(550, "no such user", "5.1.1")]
            sock.sendall(b"".join(conn.send(r) for r in replies))
    except BaseException as exc:  # reported by the test
        errors.append(exc)
    finally:
        sock.close()


@pytest.fixture
def smtp_pair() -> object:
    ours, theirs = socket.socketpair()
    ours.settimeout(10)
    theirs.settimeout(10)
    events: list[SMTPEvent] = []
    errors: list[BaseException] = []
    thread = threading.Thread(target=run_server, args=(ours, events, errors), daemon=True)
    thread.start()
    client = smtplib.SMTP()
    client.sock = theirs
    client.file = None
    code, _ = client.getreply()
    assert code == 220
    yield client, events, errors
    client.close()
    thread.join(10)
    assert not thread.is_alive()
    assert not errors


Pair = tuple[smtplib.SMTP, list[SMTPEvent], list[BaseException]]


def body_of(events: list[SMTPEvent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, DataChunk))


def test_smtplib_basic_commands(
    smtp_pair: Pair,
) -> None:
    client, events, _ = smtp_pair
    code, _ = client.ehlo("client.example")
    assert code == 250
    assert client.has_extn("pipelining") and client.has_extn("size")
    assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    assert client.mail("alice@example.org", ["SIZE=10"])[0] == 250
    assert client.rcpt("bob@example.net")[0] == 250
    assert client.rcpt("nobody@example.net") == (550, b"5.1.1 no such user")
    code, _ = client.data(b"Subject: test\r\n\r\n.starts with a dot\r\nend\r\n")
    assert code == 250
    assert client.noop()[0] == 250
    assert client.rset()[0] == 250
    assert client.docmd("FOO")[0] == 500
    assert client.quit()[0] == 221
    assert events[1] == MailFrom("alice@example.org", (("SIZE", "10"),))
    assert events[2] == RcptTo("bob@example.net")
    assert body_of(events) == b"Subject: test\r\n\r\n.starts with a dot\r\nend\r\n"
    assert EndOfData() in events
    assert any(isinstance(e, BadCommand) and e.line == b"FOO" for e in events)


def test_smtplib_send_message(
    smtp_pair: Pair,
) -> None:
    client, events, _ = smtp_pair
    message = email.message.EmailMessage()
    message["From"] = "alice@example.org"
    message["To"] = "bob@example.net, carol@example.net"
    message["Subject"] = "Grüße"
    message.set_content("Hello\n.\nA line with only a dot above.\n" + "long " * 300 + "\n")
    refused = client.send_message(message)
    assert refused == {}
    client.quit()
    mail = [e for e in events if isinstance(e, MailFrom)]
    assert mail[0].address == "alice@example.org"
    assert [e.address for e in events if isinstance(e, RcptTo)] == [
        "bob@example.net",
        "carol@example.net",
    ]
    received = body_of(events)
    parsed = email.message_from_bytes(received, policy=email.policy.default)
    assert parsed["Subject"] == "Grüße"
    assert parsed.get_content().replace("\r\n", "\n") == message.get_content()
