"""The pure session operation and Maildir helpers, driven without sockets."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protomata._core._ops import Call, Close, Receive, Send, StartTLS
from protomata.smtp import SERVER, Connection, Reply
from protomata.smtp._maildir import maildir_content, maildir_name, received_header, to_lf
from protomata.smtp._server import Envelope, SessionSettings, serve_session


def _drive(settings: SessionSettings, incoming: list[bytes], answers: dict[str, Any]) -> bytes:
    """Run a session feeding *incoming* pieces; return everything it sent."""
    op = serve_session(Connection(SERVER, max_message_size=100), settings, ("192.0.2.1", 25))
    sent: list[bytes] = []
    value: Any = None
    error: Exception | None = None
    feed = list(incoming)
    while True:
        try:
            request = op.throw(error) if error is not None else op.send(value)
        except StopIteration:
            return b"".join(sent)
        value = error = None
        if isinstance(request, Send):
            assert isinstance(request.data, bytes)
            sent.append(request.data)
        elif isinstance(request, Receive):
            value = feed.pop(0) if feed else b""
        elif isinstance(request, Call):
            try:
                value = answers[request.name](*request.args)
            except Exception as exc:
                error = exc
        elif isinstance(request, StartTLS):
            assert request.server_side
        elif isinstance(request, Close):
            pass


def test_ehlo_offers_starttls_not_auth_before_tls() -> None:
    settings = SessionSettings("mx.test", tls_available=True, auth_available=True)
    out = _drive(settings, [b"EHLO a\r\n", b"STARTTLS\r\n", b"EHLO a\r\nQUIT\r\n"], {})
    first, _, rest = out.partition(b"250 ")
    assert b"250-STARTTLS" not in out.split(b"220 2.0.0")[1]
    assert b"STARTTLS" in out.split(b"220 2.0.0")[0]
    assert b"AUTH" not in out.split(b"220 2.0.0")[0]
    assert b"250 AUTH PLAIN LOGIN" in out.split(b"220 2.0.0")[1]
    assert b"SIZE 100" in out and first.startswith(b"220 mx.test")
    assert rest


def test_message_call_gets_envelope_and_data() -> None:
    seen: list[tuple[str | None, list[str], bytes, str]] = []

    def message(env: Envelope, data: bytes) -> Reply | None:
        seen.append((env.mail_from, list(env.rcpt_tos), data, env.protocol))
        return Reply(554, "no thanks", "5.6.0")

    out = _drive(
        SessionSettings(),
        [b"EHLO a\r\nMAIL FROM:<s@x> BODY=8BITMIME\r\nRCPT TO:<r@y>\r\nDATA\r\n", b"hi\r\n.\r\n"],
        {"mail_from": lambda *a: None, "rcpt_to": lambda *a: None, "message": message},
    )
    assert seen == [("s@x", ["r@y"], b"hi\r\n", "ESMTP")]
    assert b"554 5.6.0 no thanks\r\n" in out


def test_unsupported_parameters_and_eof() -> None:
    out = _drive(
        SessionSettings(),
        [b"EHLO a\r\nMAIL FROM:<s@x> FOO=1\r\nMAIL FROM:<s@x> BODY=BINARYMIME\r\n"],
        {},
    )
    assert out.count(b"555 5.5.4") == 2


def test_application_error_answers_451() -> None:
    def boom(env: Envelope, data: bytes) -> None:
        raise RuntimeError("disk full")

    answers = {"mail_from": lambda *a: None, "rcpt_to": lambda *a: None, "message": boom}
    out = _drive(
        SessionSettings(), [b"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<r@y>\r\nDATA\r\n.\r\n"], answers
    )
    assert b"451 4.3.0" in out


def test_protocol_violation_answers_500_and_closes() -> None:
    out = _drive(SessionSettings(), [b"X" * 20000 + b"\r\n"], {})
    assert out.splitlines()[-1].startswith(b"500 5.5.0")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"x", b".", b"\r\r\n\n"]), max_size=40))
def test_to_lf_turns_only_crlf_into_lf(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    # the reference: one CRLF becomes one LF; bare CR and bare LF stay
    assert to_lf(data) == data.replace(b"\r\n", b"\n")


def test_maildir_helpers() -> None:
    assert maildir_name(1700000000, 42, 7, "a/b:c") == "1700000000.42_7.a\\057b\\072c"
    assert to_lf(b"a\r\nb\rc\n") == b"a\nb\rc\n"
    env = Envelope(("192.0.2.1", 1234))
    env.helo, env.esmtp, env.tls = "client", True, True
    env.mail_from, env.rcpt_tos = "s@x", ["r@y"]
    header = received_header(env, "mx", "Mon, 1 Jan 2024 00:00:00 +0000")
    assert header == (
        "Received: from client ([192.0.2.1])\n\tby mx (protomata) with ESMTPS\n"
        "\tfor <r@y>;\n\tMon, 1 Jan 2024 00:00:00 +0000\n"
    )
    content = maildir_content(env, b"A: b\r\n\r\nbody\r\n", "mx", "D")
    assert content.startswith(b"Return-Path: <s@x>\nReceived: from client")
    assert content.endswith(b";\n\tD\nA: b\n\nbody\n")
