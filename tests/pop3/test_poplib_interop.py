"""The stdlib poplib client against our server machine, over a socket pair.

A thread runs a tiny blocking loop around ``Connection(SERVER)`` serving an
in-memory mailbox; poplib talks to it as to any POP3 server.
"""

from __future__ import annotations

import poplib
import socket
import threading
from typing import Any

import pytest

from protomata.pop3 import (
    CLOSED,
    NEED_DATA,
    PAUSED,
    SERVER,
    Apop,
    Capa,
    Capabilities,
    Connection,
    ConnectionClosed,
    Dele,
    Err,
    Greeting,
    List,
    MultilineData,
    MultilineEnd,
    MultilineStart,
    Noop,
    Ok,
    Pass,
    Quit,
    Retr,
    Rset,
    ScanListing,
    Stat,
    Top,
    Uidl,
    UidListing,
    User,
    Utf8,
    apop_digest,
)

TIMESTAMP = "<4242.1700000000@pop.example>"
MESSAGES = [
    b"From: a@example.org\r\nSubject: one\r\n\r\nHello\r\n.\r\n..two dots\r\n.lead\r\nend\r\n",
    b"From: b@example.org\r\nSubject: two\r\n\r\n" + b"x" * 2000 + b"\r\nline 2\r\nline 3\r\n",
]
UIDS = ["uid-one", "uid-two"]


class Mailbox:
    """What the server loop serves, and what it recorded."""

    def __init__(self) -> None:
        self.deleted: set[int] = set()
        self.committed: set[int] | None = None
        self.seen: list[Any] = []

    def _exists(self, msg: int) -> bool:
        return 1 <= msg <= len(MESSAGES) and msg not in self.deleted

    def answer(self, conn: Connection, event: Any) -> list[Any]:
        self.seen.append(event)
        etype = type(event)
        if etype is Capa:
            return [Capabilities(["TOP", "UIDL", "USER", "UTF8"], "Capability list follows")]
        if etype is User:
            return [Ok("send PASS")] if event.name == "alice" else [Err("unknown user")]
        if etype is Pass:
            return [Ok("maildrop locked")] if event.password == "secret" else [Err("[AUTH] no")]
        if etype is Apop:
            ok = event.digest == apop_digest(conn.greeting_timestamp or "", "secret")
            return [Ok("maildrop locked")] if ok else [Err("[AUTH] bad digest")]
        if etype is Utf8:
            return [Ok("UTF8 enabled")]
        live = [n for n in range(1, len(MESSAGES) + 1) if n not in self.deleted]
        if etype is Stat:
            return [Ok(f"{len(live)} {sum(len(MESSAGES[n - 1]) for n in live)}")]
        has_msg = etype in (List, Uidl, Retr, Top, Dele) and event.msg is not None
        if has_msg and not self._exists(event.msg):
            return [Err("no such message")]
        if etype is List:
            if event.msg is not None:
                return [Ok(f"{event.msg} {len(MESSAGES[event.msg - 1])}")]
            return [ScanListing([(n, len(MESSAGES[n - 1])) for n in live], f"{len(live)} msgs")]
        if etype is Uidl:
            if event.msg is not None:
                return [Ok(f"{event.msg} {UIDS[event.msg - 1]}")]
            return [UidListing([(n, UIDS[n - 1]) for n in live])]
        if etype is Retr:
            message = MESSAGES[event.msg - 1]
            return [
                MultilineStart(f"{len(message)} octets"),
                MultilineData(message),
                MultilineEnd(),
            ]
        if etype is Top:
            head, _, body = MESSAGES[event.msg - 1].partition(b"\r\n\r\n")
            lines = body.split(b"\r\n")[: event.lines]
            text = head + b"\r\n\r\n" + b"".join(line + b"\r\n" for line in lines)
            return [MultilineStart(), MultilineData(text), MultilineEnd()]
        if etype is Dele:
            self.deleted.add(event.msg)
            return [Ok(f"message {event.msg} deleted")]
        if etype is Rset:
            self.deleted.clear()
            return [Ok()]
        if etype is Noop:
            return [Ok()]
        if etype is Quit:
            self.committed = set(self.deleted)
            return [Ok("bye")]
        return [Err("not implemented")]


def serve(sock: socket.socket, mailbox: Mailbox) -> None:
    """The whole blocking server: move bytes, hand events to the mailbox."""
    conn = Connection(SERVER)
    with sock:
        sock.sendall(conn.send(Greeting(f"POP3 server ready {TIMESTAMP}")))
        while conn.state is not CLOSED:
            event = conn.next_event()
            if event is NEED_DATA or event is PAUSED:
                queued = conn.data_to_send()
                if queued:
                    sock.sendall(queued)
                if event is NEED_DATA:
                    conn.receive_data(sock.recv(65536))
                continue
            if type(event) is ConnectionClosed:
                break
            sock.sendall(b"".join(conn.send(reply) for reply in mailbox.answer(conn, event)))


class SocketPairPOP3(poplib.POP3):
    """poplib.POP3 on an already connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._given_socket = sock
        super().__init__("pop.example", timeout=10)

    def _create_socket(self, timeout: float) -> socket.socket:
        self._given_socket.settimeout(timeout)
        return self._given_socket


@pytest.fixture
def pop3() -> Any:
    client_sock, server_sock = socket.socketpair()
    mailbox = Mailbox()
    thread = threading.Thread(target=serve, args=(server_sock, mailbox), daemon=True)
    thread.start()
    client = SocketPairPOP3(client_sock)
    yield client, mailbox
    client.close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_poplib_user_pass_session(pop3: Any) -> None:
    client, mailbox = pop3
    assert client.getwelcome().startswith(b"+OK POP3 server ready")
    assert client.user("alice").startswith(b"+OK")
    assert client.pass_("secret").startswith(b"+OK")
    sizes = [len(m) for m in MESSAGES]
    assert client.stat() == (2, sum(sizes))
    resp, listing, _ = client.list()
    assert resp.startswith(b"+OK")
    assert listing == [f"{n} {size}".encode() for n, size in enumerate(sizes, 1)]
    assert client.list(2) == f"+OK 2 {sizes[1]}".encode()
    _, uids, _ = client.uidl()
    assert uids == [b"1 uid-one", b"2 uid-two"]
    assert client.uidl(1) == b"+OK 1 uid-one"
    for n, message in enumerate(MESSAGES, 1):
        _, lines, _ = client.retr(n)
        assert b"\r\n".join(lines) + b"\r\n" == message
    _, lines, _ = client.top(1, 2)
    assert lines == [b"From: a@example.org", b"Subject: one", b"", b"Hello", b"."]
    with pytest.raises(poplib.error_proto):
        client.retr(3)
    assert client.dele(1).startswith(b"+OK")
    with pytest.raises(poplib.error_proto):
        client.retr(1)  # deleted
    assert client.stat() == (1, sizes[1])
    assert client.noop().startswith(b"+OK")
    assert client.quit() == b"+OK bye"
    assert mailbox.committed == {1}


def test_poplib_apop_capa_utf8_rset(pop3: Any) -> None:
    client, mailbox = pop3
    assert client.capa() == {"TOP": [], "UIDL": [], "USER": [], "UTF8": []}
    assert client.utf8().startswith(b"+OK")
    assert client.apop("alice", "secret").startswith(b"+OK")
    assert client.dele(2).startswith(b"+OK")
    assert client.rset().startswith(b"+OK")
    assert client.quit().startswith(b"+OK")
    assert mailbox.committed == set()
    assert [type(e) for e in mailbox.seen] == [Capa, Utf8, Apop, Dele, Rset, Quit]


def test_poplib_sees_errors_for_wrong_state_and_bad_login(pop3: Any) -> None:
    client, mailbox = pop3
    with pytest.raises(poplib.error_proto, match="not allowed"):
        client.stat()  # TRANSACTION command in AUTHORIZATION, answered by the machine
    with pytest.raises(poplib.error_proto, match="not allowed"):
        client.pass_("secret")  # PASS without USER
    client.user("alice")
    with pytest.raises(poplib.error_proto, match="AUTH"):
        client.pass_("wrong")
    assert client.quit().startswith(b"+OK")
    assert [type(e) for e in mailbox.seen] == [User, Pass, Quit]
