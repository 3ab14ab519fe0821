"""The pure POP3 session and mailbox model, driven without sockets."""

from __future__ import annotations

from typing import Any

from protomata._core._ops import Call, Close, Receive, Send, StartTLS, TimeoutKind
from protomata.pop3 import SERVER, Connection, apop_digest
from protomata.pop3._server import (
    Mailbox,
    SessionSettings,
    maildir_uid,
    serve_session,
    to_crlf,
    top_of_message,
)

TS = "<42.1@test>"


class Driver:
    """Runs serve_session against scripted input, recording output and calls."""

    def __init__(self, inputs: list[bytes | type[BaseException]], **settings: Any) -> None:
        self.inputs = list(inputs)
        self.out = b""
        self.calls: list[tuple[Any, ...]] = []
        self.closed = False
        self.tls = 0
        self.op = serve_session(Connection(SERVER), SessionSettings(**settings))
        self.messages = {"u1": b"Subject: a\r\n\r\nl1\r\nl2\r\n", "u2": b"Subject: b\r\n\r\n.x\r\n"}

    def on_call(self, call: Call) -> Any:
        self.calls.append((call.name, *call.args))
        if call.name == "timestamp":
            return TS
        if call.name == "authenticate":
            return call.args == ("alice", "pw")
        if call.name == "apop_secret":
            return "pw" if call.args[0] == "alice" else None
        if call.name == "open_mailbox":
            return [(uid, len(data)) for uid, data in self.messages.items()]
        if call.name == "read_message":
            return self.messages.get(call.args[0])
        if call.name == "delete":
            return True
        if call.name == "close_mailbox":
            return None
        raise AssertionError(call)

    def run(self) -> bytes:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                req = self.op.throw(error) if error else self.op.send(value)
            except StopIteration:
                return self.out
            value = error = None
            if isinstance(req, Send):
                data = req.data
                self.out += b"".join(data) if isinstance(data, list) else data
            elif isinstance(req, Receive):
                assert req.timeout == TimeoutKind.IDLE
                item = self.inputs.pop(0) if self.inputs else b""
                if isinstance(item, bytes):
                    value = item
                else:
                    error = item()
            elif isinstance(req, Call):
                value = self.on_call(req)
            elif isinstance(req, Close):
                self.closed = True
            elif isinstance(req, StartTLS):
                assert req.server_side
                self.tls += 1
            else:
                raise AssertionError(req)


def lines(out: bytes) -> list[bytes]:
    return out.split(b"\r\n")


def test_login_stat_retr_dele_quit() -> None:
    d = Driver([b"USER alice\r\nPASS pw\r\nSTAT\r\nRETR 2\r\nDELE 1\r\nLIST\r\nQUIT\r\n"])
    out = d.run()
    assert out.startswith(b"+OK POP3 server ready <42.1@test>\r\n")
    assert b"+OK 2 40\r\n" in out
    assert b"+OK 18 octets\r\nSubject: b\r\n\r\n..x\r\n.\r\n" in out
    assert b"+OK 1 messages (18 octets)\r\n2 18\r\n.\r\n" in out
    assert ("delete", ["u1"]) in d.calls
    assert out.endswith(b"+OK bye (1 messages deleted)\r\n")
    assert d.closed
    # The mailbox is released after the deletion, before the reply to QUIT.
    assert [c[0] for c in d.calls][-2:] == ["delete", "close_mailbox"]


def test_eof_without_quit_deletes_nothing() -> None:
    d = Driver([b"USER alice\r\nPASS pw\r\nDELE 1\r\n", b""])
    d.run()
    assert not [c for c in d.calls if c[0] == "delete"]
    assert d.closed


def test_timeout_sends_autologout_and_deletes_nothing() -> None:
    d = Driver([b"USER alice\r\nPASS pw\r\nDELE 1\r\n", TimeoutError])
    out = d.run()
    assert out.endswith(b"-ERR autologout: idle for too long\r\n")
    assert not [c for c in d.calls if c[0] == "delete"]


def test_apop_checks_the_digest() -> None:
    good = apop_digest(TS, "pw")
    d = Driver([f"APOP alice {'0' * 32}\r\nAPOP alice {good}\r\nQUIT\r\n".encode()])
    out = lines(d.run())
    assert out[1].startswith(b"-ERR [AUTH]")
    assert out[2].startswith(b"+OK alice has 2 messages")


def test_top_and_uidl() -> None:
    d = Driver([b"USER alice\r\nPASS pw\r\nTOP 1 1\r\nUIDL\r\nUIDL 2\r\nUIDL 3\r\nQUIT\r\n"])
    out = d.run()
    assert b"+OK top of message follows\r\nSubject: a\r\n\r\nl1\r\n.\r\n" in out
    assert b"1 u1\r\n2 u2\r\n.\r\n" in out
    assert b"+OK 2 u2\r\n" in out
    assert b"-ERR no such message\r\n" in out


def test_stls_offered_only_with_tls_and_discards_plaintext() -> None:
    d = Driver([b"CAPA\r\nSTLS\r\nUSER alice\r\n", b"PASS pw\r\nCAPA\r\nQUIT\r\n"], tls=True)
    out = d.run()
    assert d.tls == 1
    first, second = out.split(b"+OK begin TLS negotiation\r\n")
    assert b"STLS\r\n" in first and b"STLS\r\n" not in second
    assert second.startswith(b"-ERR")  # the injected USER was dropped: PASS is refused
    d = Driver([b"STLS\r\nQUIT\r\n"])
    assert b"-ERR" in d.run() and d.tls == 0


def test_sasl_plain_with_initial_response() -> None:
    d = Driver([b"AUTH PLAIN AGFsaWNlAHB3\r\nSTAT\r\nQUIT\r\n"])
    out = lines(d.run())
    assert out[1].startswith(b"+OK alice has 2 messages")
    d = Driver([b"AUTH PLAIN\r\n", b""])  # EOF in the middle of the exchange
    assert d.run().endswith(b"+ \r\n")


def test_mailbox_model() -> None:
    box = Mailbox([("a", 10), ("b", 20), ("c", 30)])
    assert box.stat() == (3, 60)
    assert box.delete(2) and not box.delete(2) and not box.delete(4) and not box.delete(0)
    assert box.get(2) is None and box.get(1) == ("a", 10)
    assert box.stat() == (2, 40)
    assert box.live() == [(1, "a", 10), (3, "c", 30)]
    assert box.deleted_uids() == ["b"]
    box.reset()
    assert box.stat() == (3, 60) and box.deleted_uids() == []


def test_maildir_uid_and_top() -> None:
    assert maildir_uid("1000.M1P2.host:2,S") == "1000.M1P2.host"
    assert maildir_uid("1000.M1P2.host") == "1000.M1P2.host"
    long = maildir_uid("x" * 80)
    assert len(long) == 40 and long == maildir_uid("x" * 80 + ":2,")
    assert len(maildir_uid("caf\u00e9")) == 40
    msg = b"H: v\r\n\r\nb1\r\nb2\r\n"
    assert top_of_message(msg, 0) == b"H: v\r\n\r\n"
    assert top_of_message(msg, 1) == b"H: v\r\n\r\nb1\r\n"
    assert top_of_message(msg, 9) == msg
    assert top_of_message(b"H: v\r\n", 3) == b"H: v\r\n"


def test_to_crlf_is_the_wire_form() -> None:
    assert to_crlf(b"a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd\r\n"
    assert to_crlf(b"") == b""
    assert to_crlf(b"x\r\n") == b"x\r\n"


def test_overlong_command_line_answers_err_and_closes() -> None:
    d = Driver([b"USER " + b"x" * 600 + b"\r\nQUIT\r\n"])
    out = lines(d.run())
    assert out[1].startswith(b"-ERR") and out[2:] == [b""]
    assert d.closed


def test_utf8_then_unsupported_commands_in_transaction() -> None:
    d = Driver([b"UTF8\r\nUSER alice\r\nPASS pw\r\nNOOP\r\nAUTH PLAIN\r\nQUIT\r\n"])
    out = lines(d.run())
    assert out[1] == b"+OK UTF8 enabled"  # RFC 6856
    assert out[4] == b"+OK" and out[5].startswith(b"-ERR")  # AUTH after login
