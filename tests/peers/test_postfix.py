"""protomata's SMTP client and servers against a real postfix on loopback.

aiosmtpd lacks PIPELINING, CHUNKING and DSN; postfix has them all, so here
every extension meets a real peer:

* our client -> postfix's server (``smtpd``), delivering to Maildirs of
  the virtual domain ``virt.test``: PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
  STARTTLS, CHUNKING (BDAT), DSN (with the notice postfix sends back),
  per-recipient refusals and AUTH PLAIN/LOGIN/CRAM-MD5 (postfix asks a
  dovecot auth service, started here, about the password); also through
  each adapter's ``SMTPClient``;
* postfix's clients -> our servers: a message handed to postfix is relayed
  to a protomata ``SMTPServer`` (verified STARTTLS, pipelined, 8BITMIME,
  SMTPUTF8, DSN, SIZE, AUTH PLAIN/LOGIN/CRAM-MD5 through Cyrus SASL) or
  delivered by postfix's LMTP client to one built with ``lmtp=True``.
  Postfix's SMTP client never sends BDAT, so CHUNKING is tested one way.

Stored messages are compared byte for byte: postfix only adds trace header
fields (``Return-Path``, ``X-Original-To``, ``Delivered-To``,
``Received``) on top, as every header field the message needs is given.
The postfix instance and its skip conditions are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import glob
import re
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protomata import CLIENT
from protomata._core._ops import Send
from protomata.smtp import Connection, Reply
from protomata.smtp._events import MailFrom, RcptTo, Rset
from protomata.smtp._operations import (
    SMTPError,
    SMTPRecipientsRefused,
    authenticate,
    mail_transaction,
    open_session,
    quit,
    read_reply,
    send_mail,
)
from protomata.smtp._server import Envelope
from protomata.sync import SMTPServer, SocketStream, Timeouts, connect_tcp, run

from .conftest import MESSAGE_SIZE_LIMIT, SASL_USER, Postfix

#: Lines that DATA must dot-stuff and the peer unstuff, a long line, CR LF only.
DOT_LINES = b".\r\n..\r\n.starts with a dot\r\n...three\r\nmiddle\r\n" + b"L" * 900 + b"\r\nend\r\n"

#: What postfix's virtual delivery puts above a message.
_TRACE_FIELDS = {"Return-Path", "X-Original-To", "Delivered-To", "Received"}

TIMEOUTS = Timeouts(15.0, connect=5.0, write=15.0)


def _token() -> str:
    return uuid.uuid4().hex


def _message(
    token: str, body: bytes, *, to: str, subject: str = "protomata meets postfix"
) -> bytes:
    """A complete message: postfix's cleanup has no header field to add."""
    head = (
        "From: Alice <alice@virt.test>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: {subject}\r\n"
        "Date: Sat, 21 Nov 2026 12:00:00 +0000\r\n"
        f"Message-ID: <{token}@protomata.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
    )
    return head.encode("utf-8") + body


def _header_names(block: bytes, separator: bytes) -> list[str]:
    lines = block.split(separator)
    return [ln.split(b":", 1)[0].decode() for ln in lines if ln and not ln[:1].isspace()]


def _assert_stored(stored: bytes, message: bytes) -> bytes:
    """*stored* (LF line ends) is *message* below trace fields only; returns those."""
    expected = message.replace(b"\r\n", b"\n")
    assert stored.endswith(expected), stored
    trace = stored[: len(stored) - len(expected)]
    assert set(_header_names(trace, b"\n")) <= _TRACE_FIELDS, trace
    return trace


class Recorder:
    """A stream that remembers each write (to see what was pipelined)."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.writes: list[bytes] = []

    def send_all(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.stream.send_all(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _client(
    postfix: Postfix,
    operation: Callable[[Connection], Any],
    tls_context: ssl.SSLContext | None = None,
) -> tuple[Any, Recorder]:
    """Run ``operation(conn)`` on a fresh client connection to postfix."""
    stream = connect_tcp(
        "127.0.0.1",
        postfix.port,
        timeouts=TIMEOUTS,
        tls_context=tls_context,
        server_hostname="localhost",
    )
    recorder = Recorder(stream)
    try:
        result = run(operation(Connection(CLIENT)), recorder)  # type: ignore[arg-type]
    finally:
        stream.close()
    return result, recorder


def _disconnect_counts(postfix: Postfix, queue_id: str, timeout: float = 15.0) -> str:
    """The command counts postfix logged when the client that queued *queue_id* left.

    postfix logs through postlogd, so the line may come a moment after the
    client is gone: wait for it.
    """
    deadline = time.monotonic() + timeout
    while True:
        log = postfix.log_text()
        client = re.search(rf"postfix/smtpd\[(\d+)\]: {queue_id}: client=", log)
        if client is not None:
            # An smtpd process serves one session after another: take the next disconnect.
            pattern = re.compile(rf"postfix/smtpd\[{client.group(1)}\]: disconnect from \S+ (.*)")
            counts = pattern.search(log, client.end())
            if counts is not None:
                return counts.group(1)
        assert time.monotonic() < deadline, log
        time.sleep(0.05)


# -- our client -> postfix ----------------------------------------------------------


def test_postfix_starts_quickly_and_offers_every_extension(postfix: Postfix) -> None:
    assert postfix.start_seconds < 10.0

    def ehlo_only(conn: Connection) -> Any:
        reply = yield from open_session(conn, local_hostname="client.test", starttls="never")
        yield from quit(conn)
        return reply

    reply, _ = _client(postfix, ehlo_only)
    assert reply.code == 250
    for keyword in ("PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN", "STARTTLS"):
        assert re.search(rf"^{keyword}$", "\n".join(reply.lines), re.MULTILINE), reply.lines
    assert f"SIZE {MESSAGE_SIZE_LIMIT}" in reply.lines


def test_pipelined_delivery_with_dot_lines_and_a_refused_recipient(postfix: Postfix) -> None:
    token = _token()
    message = _message(token, DOT_LINES, to="bob@virt.test")
    recipients = ["bob@virt.test", "nobody@virt.test", "carol@virt.test"]

    def deliver(conn: Connection) -> Any:
        return send_mail(conn, "alice@virt.test", recipients, message, starttls="never")

    refused, recorder = _client(postfix, deliver)
    assert list(refused) == ["nobody@virt.test"]
    assert refused["nobody@virt.test"].code == 550
    assert refused["nobody@virt.test"].enhanced_status == "5.1.1"
    # MAIL, the three RCPTs and DATA went out in one write.
    [batch] = [w for w in recorder.writes if w.startswith(b"MAIL FROM:")]
    assert batch.count(b"RCPT TO:") == 3 and batch.endswith(b"DATA\r\n")
    for user in ("bob@virt.test", "carol@virt.test"):
        trace = _assert_stored(postfix.wait_for_mail(user, token.encode()), message)
        assert f"Delivered-To: {user}\n".encode() in trace
    lines = postfix.wait_until_done(f"{token}@protomata.test")
    assert "improper command pipelining" not in postfix.log_text()
    assert sum("status=sent (delivered to maildir)" in line for line in lines) == 2


def test_eight_bit_body_and_utf8_address(postfix: Postfix) -> None:
    token = _token()
    recipient = "δοκιμή@virt.test"
    body = "Grüße, ½ € — ünïcödé body\r\n".encode() + b"raw latin-1: \xe9\xe8\r\n" + DOT_LINES
    message = _message(token, body, to=recipient, subject="Grüße aus Köln")

    def deliver(conn: Connection) -> Any:
        return send_mail(conn, "alice@virt.test", [recipient], message, starttls="never")

    refused, recorder = _client(postfix, deliver)
    assert refused == {}
    [mail] = [w for w in recorder.writes if w.startswith(b"MAIL FROM:")]
    first = mail.split(b"\r\n", 1)[0]
    assert b" BODY=8BITMIME" in first and b" SMTPUTF8" in first
    trace = _assert_stored(postfix.wait_for_mail(recipient, token.encode()), message)
    assert f"Delivered-To: {recipient}\n".encode() in trace


def test_starttls_to_postfix(postfix: Postfix, tls_client_context: ssl.SSLContext) -> None:
    token = _token()
    message = _message(token, DOT_LINES, to="bob@virt.test")

    def deliver(conn: Connection) -> Any:
        return send_mail(
            conn,
            "alice@virt.test",
            ["bob@virt.test"],
            message,
            starttls="required",
            server_hostname="localhost",
        )

    refused, _ = _client(postfix, deliver, tls_client_context)
    assert refused == {}
    trace = _assert_stored(postfix.wait_for_mail("bob@virt.test", token.encode()), message)
    assert re.search(rb"\(using TLSv1\.[23] with cipher [^)]*\)", trace), trace
    assert b"with ESMTPS id" in trace
    postfix.wait_for_log(r"TLS connection established from localhost\[127\.0\.0\.1\]")


def test_starttls_refuses_an_untrusted_certificate(postfix: Postfix) -> None:
    untrusting = ssl.create_default_context(cadata=_unrelated_ca_pem())

    def deliver(conn: Connection) -> Any:
        message = _message(_token(), b"never sent\r\n", to="bob@virt.test")
        return send_mail(conn, "alice@virt.test", ["bob@virt.test"], message, starttls="required")

    with pytest.raises(ssl.SSLCertVerificationError):
        _client(postfix, deliver, untrusting)


def _unrelated_ca_pem() -> str:
    trustme = pytest.importorskip("trustme")
    return str(trustme.CA().cert_pem.bytes().decode("ascii"))


def test_size_limit_is_checked_before_mail_and_enforced_by_postfix(postfix: Postfix) -> None:
    big = _message(_token(), b"x" * MESSAGE_SIZE_LIMIT + b"\r\n", to="bob@virt.test")

    def too_big(conn: Connection) -> Any:
        return send_mail(conn, "alice@virt.test", ["bob@virt.test"], big, starttls="never")

    with pytest.raises(SMTPError, match="exceeds the server's SIZE"):
        _client(postfix, too_big)

    # A SIZE declaration over the limit is refused by postfix itself.
    small = _message(_token(), b"small\r\n", to="bob@virt.test")

    def declared_too_big(conn: Connection) -> Any:
        params = [("SIZE", str(MESSAGE_SIZE_LIMIT + 1))]
        return send_mail(
            conn, "alice@virt.test", ["bob@virt.test"], small, starttls="never", mail_params=params
        )

    with pytest.raises(SMTPError) as caught:
        _client(postfix, declared_too_big)
    assert caught.value.reply is not None
    assert caught.value.reply.code == 552 and caught.value.reply.enhanced_status == "5.3.4"


def test_every_recipient_refused(postfix: Postfix) -> None:
    message = _message(_token(), b"nobody home\r\n", to="nobody@virt.test")
    recipients = ["nobody@virt.test", "ghost@virt.test"]

    def deliver(conn: Connection) -> Any:
        return send_mail(conn, "alice@virt.test", recipients, message, starttls="never")

    with pytest.raises(SMTPRecipientsRefused) as caught:
        _client(postfix, deliver)
    assert sorted(caught.value.refused) == sorted(recipients)
    assert {r.code for r in caught.value.refused.values()} == {550}


def test_bdat_chunks(postfix: Postfix) -> None:
    token = _token()
    # BDAT carries the bytes raw: dot lines are not stuffed, and a lone "."
    # line does not end anything.
    message = _message(token, DOT_LINES + b".\r\nafter the dot line\r\n", to="bob@virt.test")

    def deliver(conn: Connection) -> Any:
        yield from open_session(conn, starttls="never")
        result = yield from mail_transaction(
            conn, "alice@virt.test", ["bob@virt.test"], message, chunking=True, chunk_size=300
        )
        yield from quit(conn)
        return result

    result, recorder = _client(postfix, deliver)
    assert list(result.accepted) == ["bob@virt.test"] and result.refused == {}
    assert result.reply.code == 250
    chunks = -(-len(message) // 300)
    assert sum(w.count(b"BDAT ") for w in recorder.writes) == chunks
    assert not any(b"DATA\r\n" in w for w in recorder.writes)
    _assert_stored(postfix.wait_for_mail("bob@virt.test", token.encode()), message)
    queue_id = postfix.queue_id(f"{token}@protomata.test")
    assert f" bdat={chunks} " in _disconnect_counts(postfix, queue_id)


def test_dsn_success_notice_carries_our_parameters(postfix: Postfix) -> None:
    token = _token()
    envid = f"env-{token}"
    message = _message(token, b"the body, not returned with RET=HDRS\r\n", to="bob@virt.test")

    def deliver(conn: Connection) -> Any:
        yield from open_session(conn, starttls="never")
        result = yield from mail_transaction(
            conn,
            "alice@virt.test",
            ["bob@virt.test"],
            message,
            ret="HDRS",
            envid=envid,
            notify="SUCCESS",
            orcpt=True,
        )
        yield from quit(conn)
        return result

    result, recorder = _client(postfix, deliver)
    assert list(result.accepted) == ["bob@virt.test"]
    [batch] = [w for w in recorder.writes if w.startswith(b"MAIL FROM:")]
    assert f" RET=HDRS ENVID={envid}".encode() in batch
    assert b"RCPT TO:<bob@virt.test> NOTIFY=SUCCESS ORCPT=rfc822;bob@virt.test\r\n" in batch
    _assert_stored(postfix.wait_for_mail("bob@virt.test", token.encode()), message)
    # Postfix confirms the delivery to the sender, quoting what we asked for.
    notice = postfix.wait_for_mail("alice@virt.test", envid.encode())
    assert f"Original-Envelope-Id: {envid}\n".encode() in notice
    assert b"Original-Recipient: rfc822;bob@virt.test\n" in notice
    assert b"Action: delivered\n" in notice
    assert b"text/rfc822-headers" in notice
    assert f"Message-ID: <{token}@protomata.test>".encode() in notice
    assert b"the body, not returned" not in notice


def test_dsn_notify_never_is_accepted_and_a_bad_notify_refused(postfix: Postfix) -> None:
    token = _token()
    message = _message(token, b"no notices please\r\n", to="carol@virt.test")

    def deliver(conn: Connection) -> Any:
        yield from open_session(conn, starttls="never")
        result = yield from mail_transaction(
            conn, "alice@virt.test", ["carol@virt.test"], message, notify="NEVER"
        )
        # A NOTIFY value RFC 3461 does not know, sent raw: postfix answers 501.
        yield Send(conn.send(MailFrom("alice@virt.test")))
        mail = yield from read_reply(conn)
        yield Send(conn.send(RcptTo("carol@virt.test", [("NOTIFY", "SOMETIMES")])))
        bad = yield from read_reply(conn)
        yield Send(conn.send(Rset()))
        rset = yield from read_reply(conn)
        yield from quit(conn)
        return result, mail, bad, rset

    (result, mail, bad, rset), recorder = _client(postfix, deliver)
    assert list(result.accepted) == ["carol@virt.test"]
    assert any(b"RCPT TO:<carol@virt.test> NOTIFY=NEVER\r\n" in w for w in recorder.writes)
    assert mail.code == 250 and rset.code == 250
    assert bad.code == 501 and bad.enhanced_status == "5.5.4", bad
    _assert_stored(postfix.wait_for_mail("carol@virt.test", token.encode()), message)


# -- the adapters' SMTPClient -> postfix ----------------------------------------------


def _client_message() -> tuple[str, bytes]:
    token = _token()
    return token, _message(token, "8-bit: ça va\r\n".encode() + DOT_LINES, to="bob@virt.test")


def _check_client_result(postfix: Postfix, result: Any, token: str, message: bytes) -> None:
    assert list(result.accepted) == ["bob@virt.test"]
    assert list(result.refused) == ["nobody@virt.test"]
    assert result.refused["nobody@virt.test"].code == 550
    trace = _assert_stored(postfix.wait_for_mail("bob@virt.test", token.encode()), message)
    assert b"with ESMTPS id" in trace
    # The clients use BDAT when offered (their default), after STARTTLS.
    counts = _disconnect_counts(postfix, postfix.queue_id(f"{token}@protomata.test"))
    assert " starttls=1 " in counts and " bdat=1 " in counts, counts


CLIENT_ARGS: dict[str, Any] = {"starttls": "required", "timeout": 15.0}


def test_sync_smtp_client(postfix: Postfix, tls_client_context: ssl.SSLContext) -> None:
    from protomata.sync import SMTPClient

    token, message = _client_message()
    with SMTPClient(
        "127.0.0.1",
        postfix.port,
        verify=tls_client_context,
        server_hostname="localhost",
        **CLIENT_ARGS,
    ) as client:
        result = client.send_message(
            message, "alice@virt.test", ["bob@virt.test", "nobody@virt.test"]
        )
    _check_client_result(postfix, result, token, message)


def test_asyncio_smtp_client(postfix: Postfix, tls_client_context: ssl.SSLContext) -> None:
    from protomata.asyncio import SMTPClient

    token, message = _client_message()

    async def main() -> Any:
        async with SMTPClient(
            "127.0.0.1",
            postfix.port,
            verify=tls_client_context,
            server_hostname="localhost",
            **CLIENT_ARGS,
        ) as client:
            return await client.send_message(
                message, "alice@virt.test", ["bob@virt.test", "nobody@virt.test"]
            )

    result = asyncio.run(asyncio.wait_for(main(), 30.0))
    _check_client_result(postfix, result, token, message)


def test_trio_smtp_client(postfix: Postfix, tls_client_context: ssl.SSLContext) -> None:
    trio = pytest.importorskip("trio")
    from protomata.trio import SMTPClient

    token, message = _client_message()

    async def main() -> Any:
        with trio.fail_after(30.0):
            async with SMTPClient(
                "127.0.0.1",
                postfix.port,
                verify=tls_client_context,
                server_hostname="localhost",
                **CLIENT_ARGS,
            ) as client:
                return await client.send_message(
                    message, "alice@virt.test", ["bob@virt.test", "nobody@virt.test"]
                )

    result = trio.run(main)
    _check_client_result(postfix, result, token, message)


# -- postfix -> our servers ---------------------------------------------------------


class Capture:
    """A handler keeping every message; refuses ``refused@`` recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, bytes]] = []
        self.arrived = threading.Event()
        self.reads: list[bytes] = []

    def rcpt_to(self, address: str, params: Any) -> Reply | None:
        if address.startswith("refused@"):
            return Reply(550, "no such mailbox here", "5.1.1")
        return None

    def message(self, envelope: Envelope, data: bytes) -> Reply | None:
        self.messages.append((envelope, data))
        self.arrived.set()
        return None

    def wait(self, timeout: float = 20.0) -> tuple[Envelope, bytes]:
        if not self.arrived.wait(timeout):
            print("what postfix sent:", *self.reads, sep="\n")
            raise AssertionError("no message reached our server")
        [delivered] = self.messages
        return delivered


class RecordingServer(SMTPServer):
    """An SMTPServer that notes each read of its connections (to see pipelining)."""

    def __init__(self, capture: Capture, **kwargs: Any) -> None:
        super().__init__(capture, **kwargs)
        self.capture = capture

    def handle_connection(self, stream: SocketStream) -> None:
        receive = stream.receive_some

        def recording(*args: Any) -> bytes:
            data = receive(*args)
            self.capture.reads.append(data)
            return data

        stream.receive_some = recording  # type: ignore[method-assign,assignment]
        super().handle_connection(stream)


@pytest.fixture
def relay_target(
    postfix: Postfix, tls_server_context: ssl.SSLContext
) -> Iterator[tuple[Capture, RecordingServer]]:
    """A protomata SMTP server on the port postfix relays ``relay.test`` to."""
    capture = Capture()
    server = RecordingServer(
        capture,
        port=postfix.relay_port,
        tls_context=tls_server_context,
        timeouts=TIMEOUTS,
        hostname="sink.test",
        grace=2.0,
    )
    with server.running():
        yield capture, server


def _inject(postfix: Postfix, recipients: list[str], message: bytes, **dsn: Any) -> Any:
    """Hand *message* to postfix over SMTP (with our client)."""

    def deliver(conn: Connection) -> Any:
        yield from open_session(conn, starttls="never")
        result = yield from mail_transaction(conn, "alice@virt.test", recipients, message, **dsn)
        yield from quit(conn)
        return result

    result, _ = _client(postfix, deliver)
    return result


def test_postfix_relays_to_our_server(
    postfix: Postfix, relay_target: tuple[Capture, RecordingServer]
) -> None:
    capture, _server = relay_target
    token = _token()
    body = "8-bit: naïve café\r\n".encode() + DOT_LINES
    message = _message(token, body, to="x@relay.test")
    recipients = ["x@relay.test", "refused@relay.test", "y@relay.test"]
    envid = f"env-{token}"
    result = _inject(
        postfix,
        recipients,
        message,
        ret="FULL",
        envid=envid,
        notify=["SUCCESS", "FAILURE"],
        orcpt=True,
    )
    assert sorted(result.accepted) == sorted(recipients)  # postfix takes them all at first

    envelope, data = capture.wait()
    # Postfix put its Received field on top and changed nothing else.
    assert data.endswith(message)
    assert _header_names(data[: len(data) - len(message)], b"\r\n") == ["Received"]
    assert envelope.mail_from == "alice@virt.test"
    assert envelope.rcpt_tos == ["x@relay.test", "y@relay.test"]
    assert envelope.tls and envelope.esmtp
    params = dict((k.upper(), v) for k, v in envelope.mail_params)
    assert params["BODY"] == "8BITMIME"
    assert int(params["SIZE"] or 0) >= len(message)
    assert envelope.dsn_ret == "FULL" and envelope.dsn_envid == envid
    assert [d.notify for d in envelope.rcpt_dsn] == [("SUCCESS", "FAILURE")] * 2
    assert [d.orcpt for d in envelope.rcpt_dsn] == [
        ("rfc822", "x@relay.test"),
        ("rfc822", "y@relay.test"),
    ]
    # Postfix pipelined MAIL and the RCPTs into one write.
    assert any(b"MAIL FROM:" in r and r.count(b"RCPT TO:") == 3 for r in capture.reads), (
        capture.reads
    )

    postfix.wait_for_log(
        rf"Verified TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:{postfix.relay_port}"
    )
    lines = postfix.wait_until_done(f"{token}@protomata.test")
    assert sum("status=sent (250 2.0.0" in line for line in lines) == 2, lines
    [bounced] = [line for line in lines if "status=bounced" in line]
    assert "to=<refused@relay.test>" in bounced
    assert "said: 550 5.1.1 no such mailbox here (in reply to RCPT TO command)" in bounced
    # The refusal comes back to the sender as a DSN quoting our ENVID.
    notice = postfix.wait_for_mail("alice@virt.test", envid.encode())
    assert b"Final-Recipient: rfc822; refused@relay.test" in notice
    assert b"Action: failed" in notice


def test_postfix_relays_smtputf8_to_our_server(
    postfix: Postfix, relay_target: tuple[Capture, RecordingServer]
) -> None:
    capture, _ = relay_target
    token = _token()
    # UTF-8 in the header section: our client asks for SMTPUTF8, postfix passes it on.
    message = _message(token, "Grüß Gott\r\n".encode(), to="z@relay.test", subject="Straße")
    result = _inject(postfix, ["z@relay.test"], message)
    assert list(result.accepted) == ["z@relay.test"]
    envelope, data = capture.wait()
    assert data.endswith(message)
    params = dict((k.upper(), v) for k, v in envelope.mail_params)
    assert "SMTPUTF8" in params and params["BODY"] == "8BITMIME"
    lines = postfix.wait_until_done(f"{token}@protomata.test")
    assert any("status=sent (250 2.0.0" in line for line in lines), lines


def test_postfix_relays_a_utf8_recipient_to_our_server(
    postfix: Postfix, relay_target: tuple[Capture, RecordingServer]
) -> None:
    capture, _ = relay_target
    token = _token()
    recipient = "jürgen@relay.test"
    message = _message(token, "Grüß Gott\r\n".encode(), to=recipient)
    result = _inject(postfix, [recipient], message)
    assert list(result.accepted) == [recipient]
    lines = postfix.wait_until_done(f"{token}@protomata.test")
    assert any("status=sent (250 2.0.0" in line for line in lines), lines
    envelope, _data = capture.wait(timeout=1.0)
    assert envelope.rcpt_tos == [recipient]
    params = dict((k.upper(), v) for k, v in envelope.mail_params)
    assert "SMTPUTF8" in params


class LMTPCapture(Capture):
    """Keeps every message; over LMTP refuses ``full@`` after the data, alone."""

    def message(self, envelope: Envelope, data: bytes) -> dict[str, Reply]:  # type: ignore[override]
        super().message(envelope, data)
        return {
            r: Reply(552, "mailbox full", "5.2.2")
            for r in envelope.rcpt_tos
            if r.startswith("full@")
        }


def test_postfix_delivers_to_our_lmtp_server(postfix: Postfix) -> None:
    capture = LMTPCapture()
    server = RecordingServer(
        capture,
        port=postfix.lmtp_port,
        lmtp=True,
        timeouts=TIMEOUTS,
        hostname="lmtp.test",
        grace=2.0,
    )
    token = _token()
    message = _message(token, "8-bit: smørrebrød\r\n".encode() + DOT_LINES, to="a@lmtp.test")
    recipients = ["a@lmtp.test", "full@lmtp.test", "refused@lmtp.test", "b@lmtp.test"]
    with server.running():
        result = _inject(postfix, recipients, message)
        assert sorted(result.accepted) == sorted(recipients)
        envelope, data = capture.wait()
        lines = postfix.wait_until_done(f"{token}@protomata.test")
    assert envelope.lmtp
    assert sorted(envelope.rcpt_tos) == ["a@lmtp.test", "b@lmtp.test", "full@lmtp.test"]
    assert data.endswith(message)
    assert _header_names(data[: len(data) - len(message)], b"\r\n") == ["Received"]
    assert capture.reads[0].startswith(b"LHLO ")
    assert any(b"MAIL FROM:" in r and r.count(b"RCPT TO:") == 4 for r in capture.reads), (
        capture.reads
    )
    sent = sorted(
        re.findall(r"to=<([^>]+)>.*status=sent \(250 2\.0\.0 <\1> delivered\)", "\n".join(lines))
    )
    assert sent == ["a@lmtp.test", "b@lmtp.test"], lines
    [full] = [line for line in lines if "to=<full@lmtp.test>" in line]
    assert "status=bounced" in full and "said: 552 5.2.2 mailbox full" in full
    [refused] = [line for line in lines if "to=<refused@lmtp.test>" in line]
    assert "said: 550 5.1.1 no such mailbox here (in reply to RCPT TO command)" in refused


def _cyrus_sasl_plugin(mechanism: str) -> bool:
    """Whether the Cyrus SASL client plugin postfix needs for *mechanism* is installed."""
    name = {"PLAIN": "libplain", "LOGIN": "liblogin", "CRAM-MD5": "libcrammd5"}[mechanism]
    patterns = ("/usr/lib/*/sasl2", "/usr/lib/sasl2", "/usr/lib64/sasl2")
    return any(glob.glob(f"{directory}/{name}.so*") for directory in patterns)


@pytest.mark.parametrize(
    ("domain", "mechanism"),
    [("auth-plain.test", "PLAIN"), ("auth-login.test", "LOGIN"), ("auth.test", "CRAM-MD5")],
)
def test_postfix_logs_in_to_our_server(
    postfix: Postfix, tls_server_context: ssl.SSLContext, domain: str, mechanism: str
) -> None:
    if not _cyrus_sasl_plugin(mechanism):
        pytest.skip(f"no Cyrus SASL {mechanism} plugin (Debian: apt-get install libsasl2-modules)")
    capture = Capture()
    server = RecordingServer(
        capture,
        port=postfix.auth_port,
        tls_context=tls_server_context,
        users=dict([SASL_USER]),
        timeouts=TIMEOUTS,
        hostname="sink.test",
        grace=2.0,
    )
    token = _token()
    recipient = f"someone@{domain}"
    message = _message(token, DOT_LINES, to=recipient)
    with server.running():
        _inject(postfix, [recipient], message)
        envelope, data = capture.wait()
        lines = postfix.wait_until_done(f"{token}@protomata.test")
    assert data.endswith(message)
    assert envelope.authenticated_user == SASL_USER[0]
    assert envelope.tls and envelope.protocol == "ESMTPSA"
    [auth] = [r for r in capture.reads if r.startswith(b"AUTH ")]
    assert auth.split()[1].decode() == mechanism
    assert any("status=sent (250 2.0.0" in line for line in lines), lines


def test_postfix_respects_our_size_limit(
    postfix: Postfix, tls_server_context: ssl.SSLContext
) -> None:
    capture = Capture()
    server = RecordingServer(
        capture,
        port=postfix.relay_port,
        tls_context=tls_server_context,
        max_message_size=300,
        timeouts=TIMEOUTS,
        hostname="sink.test",
        grace=2.0,
    )
    token = _token()
    message = _message(token, DOT_LINES, to="big@relay.test")
    with server.running():
        _inject(postfix, ["big@relay.test"], message)
        lines = postfix.wait_until_done(f"{token}@protomata.test")
    # Postfix read SIZE 300 in our EHLO reply and gave up before MAIL.
    assert capture.messages == []
    assert capture.reads and not any(b"MAIL FROM:" in r for r in capture.reads)
    [bounced] = [line for line in lines if "to=<big@relay.test>" in line]
    assert "status=bounced" in bounced
    assert re.search(r"message size \d+ exceeds size limit 300 of server 127\.0\.0\.1", bounced)


# -- our client's AUTH -> postfix (passwords checked by a dovecot auth service) -----

#: The account our client logs in to postfix's ``sasl_port`` with.
LOGIN = ("pf-user", "pass word ü")

_DOVECOT_AUTH_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login cram-md5
passdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}}
service auth {{
  unix_listener {socket} {{
    mode = 0666
  }}
}}
"""


@pytest.fixture(scope="module")
def dovecot_auth(postfix_instance: Postfix) -> Iterator[Path]:
    """A dovecot running only its auth service, on postfix's ``sasl_socket``."""
    dovecot = shutil.which("dovecot", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if dovecot is None:
        pytest.skip("dovecot is not installed (Debian: apt-get install dovecot-core)")
    root = postfix_instance.root / "dovecot"
    root.mkdir()
    (root / "users").write_text(f"{LOGIN[0]}:{{PLAIN}}{LOGIN[1]}\n", "utf-8")
    conf = root / "dovecot.conf"
    conf.write_text(_DOVECOT_AUTH_CONF.format(root=root, socket=postfix_instance.sasl_socket))
    process = subprocess.Popen(
        [dovecot, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10.0
        while not postfix_instance.sasl_socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                _out, err = process.communicate(timeout=5.0)
                pytest.fail(f"dovecot's auth service did not start: {err.decode(errors='replace')}")
            time.sleep(0.05)
        yield root
    finally:
        process.terminate()
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)


def _login_and_send(
    postfix: Postfix, tls: ssl.SSLContext, mechanism: str, password: str, message: bytes
) -> Any:
    def session(conn: Connection) -> Any:
        yield from open_session(conn, starttls="required", server_hostname="localhost")
        reply = yield from authenticate(conn, LOGIN[0], password, mechanism=mechanism)
        result = yield from mail_transaction(conn, "alice@virt.test", ["bob@virt.test"], message)
        yield from quit(conn)
        return reply, result

    stream = connect_tcp(
        "127.0.0.1",
        postfix.sasl_port,
        timeouts=TIMEOUTS,
        tls_context=tls,
        server_hostname="localhost",
    )
    try:
        return run(session(Connection(CLIENT)), stream)
    finally:
        stream.close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_to_postfix(
    postfix: Postfix, dovecot_auth: Path, tls_client_context: ssl.SSLContext, mechanism: str
) -> None:
    token = _token()
    message = _message(token, DOT_LINES, to="bob@virt.test")
    reply, result = _login_and_send(postfix, tls_client_context, mechanism, LOGIN[1], message)
    assert reply.code == 235 and reply.enhanced_status == "2.7.0"
    assert list(result.accepted) == ["bob@virt.test"]
    trace = _assert_stored(postfix.wait_for_mail("bob@virt.test", token.encode()), message)
    assert b"with ESMTPSA id" in trace
    queue_id = postfix.queue_id(f"{token}@protomata.test")
    postfix.wait_for_log(
        rf"{queue_id}: client=localhost\[127\.0\.0\.1\], "
        rf"sasl_method={re.escape(mechanism)}, sasl_username={re.escape(LOGIN[0])}$"
    )


def test_auth_to_postfix_refused(
    postfix: Postfix, dovecot_auth: Path, tls_client_context: ssl.SSLContext
) -> None:
    message = _message(_token(), b"never sent\r\n", to="bob@virt.test")
    with pytest.raises(SMTPError) as caught:
        _login_and_send(postfix, tls_client_context, "PLAIN", "wrong", message)
    assert caught.value.reply is not None
    assert caught.value.reply.code == 535 and caught.value.reply.enhanced_status == "5.7.8"


def test_postfix_offers_auth_only_after_starttls(postfix: Postfix, dovecot_auth: Path) -> None:
    def session(conn: Connection) -> Any:
        yield from open_session(conn, starttls="never")
        offered = conn.extensions.auth_mechanisms
        yield from quit(conn)
        return offered

    stream = connect_tcp("127.0.0.1", postfix.sasl_port, timeouts=TIMEOUTS)
    try:
        offered = run(session(Connection(CLIENT)), stream)
    finally:
        stream.close()
    assert not offered
