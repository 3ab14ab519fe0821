"""The pure SMTP/LMTP session: DSN, CRAM-MD5, XOAUTH2, LMTP replies, shutdown.

Every test drives :func:`serve_session` by hand (no sockets): the driver
feeds scripted input at each ``Receive`` (or throws an exception there),
answers ``Call`` requests from a dict and records what was sent.
"""

from __future__ import annotations

import hmac
from base64 import b64decode, b64encode
from typing import Any

import pytest

from protomata._core._ops import Call, Close, Receive, Send, ServerShutdown, StartTLS, TimeoutKind
from protomata.smtp import SERVER, Connection, Reply
from protomata.smtp._server import (
    Envelope,
    RecipientDSN,
    SessionSettings,
    serve_session,
    xtext_decode,
)

Script = list[Any]  # bytes, an exception (type) to throw, or out -> bytes


class Driver:
    """Run one session over scripted input; collect output, calls and envelopes."""

    def __init__(
        self,
        script: Script,
        settings: SessionSettings | None = None,
        *,
        lmtp: bool = False,
        answers: dict[str, Any] | None = None,
    ) -> None:
        self.script = list(script)
        self.conn = Connection(SERVER, lmtp=lmtp, max_message_size=1000, max_command_length=2048)
        self.op = serve_session(self.conn, settings or SessionSettings("mx.test"), ("192.0.2.9", 1))
        self.answers = answers or {}
        self.out = b""
        self.calls: list[tuple[Any, ...]] = []
        self.envelopes: list[Envelope] = []
        self.closed = False
        self.waits: list[str] = []

    def on_call(self, call: Call) -> Any:
        self.calls.append((call.name, *call.args))
        if call.name == "message":
            self.envelopes.append(call.args[0])
        answer = self.answers.get(call.name)
        return answer(*call.args) if callable(answer) else answer

    def run(self) -> bytes:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                request = self.op.throw(error) if error is not None else self.op.send(value)
            except StopIteration:
                return self.out
            value = error = None
            if isinstance(request, Send):
                data = request.data
                self.out += b"".join(data) if isinstance(data, list) else data
            elif isinstance(request, Receive):
                self.waits.append(request.timeout)
                item = self.script.pop(0) if self.script else b""
                if isinstance(item, type):
                    error = item()
                elif isinstance(item, BaseException):
                    error = item
                else:  # bytes, or a function making them from what was sent
                    value = item if isinstance(item, bytes) else item(self.out)
            elif isinstance(request, Call):
                try:
                    value = self.on_call(request)
                except Exception as exc:  # handed back like an adapter would
                    error = exc
            elif isinstance(request, Close):
                self.closed = True
            elif isinstance(request, StartTLS):
                raise AssertionError("no TLS in these tests")

    def replies(self) -> list[bytes]:
        """The last line of every reply after the greeting, in order."""
        return [line for line in self.out.split(b"\r\n") if line[3:4] == b" "][1:]


EHLO = b"EHLO client.test\r\n"


# -- DSN (RFC 3461) ----------------------------------------------------------


def test_dsn_is_advertised_and_parameters_are_decoded_into_the_envelope() -> None:
    driver = Driver(
        [
            EHLO,
            b"MAIL FROM:<s@x> RET=hdrs ENVID=QQ+2B+3Dx+20y\r\n",
            b"RCPT TO:<a@y> NOTIFY=success,FAILURE ORCPT=rfc822;a+2Bext@y\r\n",
            b"RCPT TO:<b@y> NOTIFY=NEVER\r\n",
            b"RCPT TO:<c@y>\r\n",
            b"DATA\r\nhi\r\n.\r\nQUIT\r\n",
        ]
    )
    out = driver.run()
    assert b"250 DSN\r\n" in out
    assert driver.replies()[1:6] == [
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"250 2.1.5 Recipient OK",
        b"250 2.1.5 Recipient OK",
        b"354 End data with <CR><LF>.<CR><LF>",
    ]
    [env] = driver.envelopes
    assert (env.dsn_ret, env.dsn_envid) == ("HDRS", "QQ+=x y")
    assert env.rcpt_dsn == [
        RecipientDSN(("SUCCESS", "FAILURE"), ("rfc822", "a+ext@y")),
        RecipientDSN(("NEVER",), None),
        RecipientDSN(None, None),
    ]
    # the handlers see the parameters exactly as sent
    assert ("rcpt_to", "b@y", (("NOTIFY", "NEVER"),)) in driver.calls
    assert ("mail_from", "s@x", (("RET", "hdrs"), ("ENVID", "QQ+2B+3Dx+20y"))) in driver.calls


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (b"RET=ALL", b"501 5.5.4 Bad RET parameter"),
        (b"RET", b"501 5.5.4 Bad RET parameter"),
        (b"ENVID=a+2", b"501 5.5.4 Bad ENVID parameter"),
        (b"ENVID=a+2b", b"501 5.5.4 Bad ENVID parameter"),  # hex must be upper case
        (b"ENVID=a+0A", b"501 5.5.4 Bad ENVID parameter"),  # decodes to a control char
        (b"ENVID=" + b"x" * 101, b"501 5.5.4 Bad ENVID parameter"),
        (b"RET=FULL RET=HDRS", b"501 5.5.4 Duplicate RET parameter"),
        (b"SIZE=1 SIZE=2", b"501 5.5.4 Duplicate SIZE parameter"),
        (b"NOTIFY=NEVER", b"555 5.5.4 Unsupported parameter NOTIFY"),
    ],
)
def test_bad_mail_dsn_parameters(params: bytes, expected: bytes) -> None:
    driver = Driver([EHLO, b"MAIL FROM:<s@x> " + params + b"\r\nQUIT\r\n"])
    driver.run()
    assert driver.replies()[1] == expected
    assert not any(call[0] == "mail_from" for call in driver.calls)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (b"NOTIFY=NEVER,SUCCESS", b"501 5.5.4 Bad NOTIFY parameter"),
        (b"NOTIFY=SUCCESS,SUCCESS", b"501 5.5.4 Bad NOTIFY parameter"),
        (b"NOTIFY=SOMETIMES", b"501 5.5.4 Bad NOTIFY parameter"),
        (b"NOTIFY", b"501 5.5.4 Bad NOTIFY parameter"),
        (b"ORCPT=a@y", b"501 5.5.4 Bad ORCPT parameter"),
        (b"ORCPT=rfc822;", b"501 5.5.4 Bad ORCPT parameter"),
        (b"ORCPT=rf(c;a@y", b"501 5.5.4 Bad ORCPT parameter"),
        (b"ORCPT=rfc822;a+ZZ@y", b"501 5.5.4 Bad ORCPT parameter"),
        (b"ORCPT=rfc822;" + b"a" * 500, b"501 5.5.4 Bad ORCPT parameter"),
        (b"NOTIFY=DELAY NOTIFY=DELAY", b"501 5.5.4 Duplicate NOTIFY parameter"),
        (b"RET=FULL", b"555 5.5.4 Unsupported parameter RET"),
    ],
)
def test_bad_rcpt_dsn_parameters(params: bytes, expected: bytes) -> None:
    driver = Driver([EHLO, b"MAIL FROM:<s@x>\r\nRCPT TO:<r@y> " + params + b"\r\nQUIT\r\n"])
    driver.run()
    assert driver.replies()[2] == expected
    assert not any(call[0] == "rcpt_to" for call in driver.calls)


def test_dsn_can_be_switched_off() -> None:
    driver = Driver(
        [EHLO, b"MAIL FROM:<s@x> RET=FULL\r\nMAIL FROM:<s@x>\r\nRCPT TO:<r@y> NOTIFY=NEVER\r\n"],
        SessionSettings("mx.test", dsn=False),
    )
    out = driver.run()
    assert b"DSN" not in out.split(b"\r\n250 ")[0]
    assert driver.replies()[1] == b"555 5.5.4 Unsupported parameter RET"
    assert driver.replies()[3] == b"555 5.5.4 Unsupported parameter NOTIFY"


def test_dsn_parameters_are_forgotten_with_the_transaction() -> None:
    driver = Driver(
        [
            EHLO,
            b"MAIL FROM:<s@x> RET=FULL ENVID=e1\r\nRSET\r\n",
            b"MAIL FROM:<s@x>\r\nRCPT TO:<r@y>\r\nDATA\r\nx\r\n.\r\n",
        ]
    )
    driver.run()
    [env] = driver.envelopes
    assert (env.dsn_ret, env.dsn_envid, env.rcpt_dsn) == (None, None, [RecipientDSN()])


def test_xtext_decode() -> None:
    assert xtext_decode("") == ""
    assert xtext_decode("a+2Bb+3D") == "a+b="
    assert xtext_decode("+20") == " "
    for bad in ("a=b", "a+", "a+g0", "caf\u00e9", "+7F", "a b"):
        assert xtext_decode(bad) is None, bad


def test_smtputf8_and_protocol_keywords() -> None:
    driver = Driver(
        [EHLO, b"MAIL FROM:<s@x> SMTPUTF8\r\nRCPT TO:<r@y>\r\nDATA\r\nx\r\n.\r\n"],
    )
    driver.run()
    [env] = driver.envelopes
    assert env.smtputf8 and env.protocol == "UTF8SMTP"
    env.tls, env.authenticated_user = True, "u"
    assert env.protocol == "UTF8SMTPSA"
    env.lmtp = True
    assert env.protocol == "UTF8LMTPSA"
    env.smtputf8 = False
    assert env.protocol == "LMTPSA"
    assert env.copy().protocol == "LMTPSA"


# -- AUTH: CRAM-MD5, XOAUTH2 and the offered list ------------------------------


def _b64(text: str) -> bytes:
    return b64encode(text.encode())


def _cram_answer(out: bytes, user: str, password: str) -> bytes:
    """Answer the last 334 challenge in *out* the way RFC 2195 says."""
    line = out.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1]
    assert line.startswith(b"334 ")
    challenge = b64decode(line[4:])
    digest = hmac.new(password.encode(), challenge, "md5").hexdigest()
    return _b64(f"{user} {digest}") + b"\r\n"


AUTH_SETTINGS = SessionSettings("mx.test", auth_available=True, cram_md5=True)
PASSWORDS = {"alice": "wonder land"}


def test_cram_md5_accepts_the_right_digest_only() -> None:
    driver = Driver(
        [
            EHLO,
            b"AUTH CRAM-MD5\r\n",
            lambda out: _cram_answer(out, "alice", "wrong"),
            b"AUTH CRAM-MD5\r\n",
            lambda out: _cram_answer(out, "bob", "wonder land"),
            b"AUTH CRAM-MD5\r\n",
            lambda out: _cram_answer(out, "alice", "wonder land"),
            b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nhi\r\n.\r\n",
        ],
        settings=AUTH_SETTINGS,
        answers={"password": PASSWORDS.get},
    )
    out = driver.run()
    assert b"250 AUTH PLAIN LOGIN CRAM-MD5\r\n" in out
    codes = [r[:3] for r in driver.replies()]
    assert codes[:7] == [b"250", b"334", b"535", b"334", b"535", b"334", b"235"]
    challenges = [b64decode(line[4:]) for line in out.split(b"\r\n") if line[:4] == b"334 "]
    assert len(set(challenges)) == 3  # a fresh challenge every time
    assert all(c.startswith(b"<") and c.endswith(b"@mx.test>") for c in challenges)
    assert driver.envelopes[0].authenticated_user == "alice"
    assert driver.envelopes[0].protocol == "ESMTPA"


@pytest.mark.parametrize(
    "answer",
    [
        _b64("alice"),  # no digest
        _b64("alice 0123"),  # short digest
        _b64("alice " + "A" * 32),  # upper-case hex
        b"!!!",  # not base64
    ],
)
def test_cram_md5_malformed_answers(answer: bytes) -> None:
    driver = Driver(
        [EHLO, b"AUTH CRAM-MD5\r\n", answer + b"\r\n", b"QUIT\r\n"],
        AUTH_SETTINGS,
        answers={"password": PASSWORDS.get},
    )
    driver.run()
    assert driver.replies()[2][:3] in (b"535", b"501")
    assert not any(call[0] == "password" for call in driver.calls)


def test_cram_md5_refuses_an_initial_response_and_cancel() -> None:
    driver = Driver(
        [EHLO, b"AUTH CRAM-MD5 " + _b64("x") + b"\r\n", b"AUTH CRAM-MD5\r\n", b"*\r\n"],
        AUTH_SETTINGS,
        answers={"password": PASSWORDS.get},
    )
    driver.run()
    assert driver.replies()[1] == b"501 5.5.2 CRAM-MD5 takes no initial response"
    assert driver.replies()[3] == b"501 5.0.0 Authentication cancelled"


def test_password_lookup_failure_answers_454() -> None:
    def broken(user: str) -> str:
        raise OSError("directory unavailable")

    driver = Driver(
        [EHLO, b"AUTH CRAM-MD5\r\n", lambda out: _cram_answer(out, "alice", "x")],
        settings=AUTH_SETTINGS,
        answers={"password": broken},
    )
    driver.run()
    assert driver.replies()[2] == b"454 4.7.0 Temporary authentication failure"


def test_mechanisms_are_offered_only_as_configured() -> None:
    plain_only = SessionSettings("mx.test", auth_available=True)
    driver = Driver([EHLO, b"AUTH CRAM-MD5\r\nAUTH XOAUTH2\r\n"], plain_only)
    out = driver.run()
    assert b"250 AUTH PLAIN LOGIN\r\n" in out
    assert driver.replies()[1:3] == [b"504 5.5.4 Unrecognized authentication type"] * 2
    xoauth_only = SessionSettings("mx.test", xoauth2=True)
    driver = Driver([EHLO, b"AUTH PLAIN " + _b64("\0a\0b") + b"\r\n"], xoauth_only)
    out = driver.run()
    assert b"250 AUTH XOAUTH2\r\n" in out
    assert driver.replies()[1] == b"504 5.5.4 Unrecognized authentication type"
    tls_first = SessionSettings("mx.test", tls_available=True, xoauth2=True)
    driver = Driver([EHLO, b"AUTH XOAUTH2\r\n"], tls_first)
    out = driver.run()
    assert b"AUTH" not in out.split(b"\r\n250 ")[0] and b"250 STARTTLS" in out
    assert driver.replies()[1] == b"530 5.7.0 Must issue STARTTLS first"


def _xoauth2(user: str, token: str) -> bytes:
    return _b64(f"user={user}\x01auth=Bearer {token}\x01\x01")


XOAUTH2_SETTINGS = SessionSettings("mx.test", xoauth2=True)


def test_xoauth2_with_initial_response_and_after_an_empty_challenge() -> None:
    def check(user: str, token: str) -> bool:
        return (user, token) == ("alice@example.org", "ya29.tok")

    driver = Driver(
        [EHLO, b"AUTH XOAUTH2 " + _xoauth2("alice@example.org", "ya29.tok") + b"\r\nRSET\r\n"],
        XOAUTH2_SETTINGS,
        answers={"authenticate_xoauth2": check},
    )
    driver.run()
    assert driver.replies()[1] == b"235 2.7.0 Authentication successful"
    assert ("authenticate_xoauth2", "alice@example.org", "ya29.tok") in driver.calls
    driver = Driver(
        [EHLO, b"AUTH XOAUTH2\r\n", _xoauth2("alice@example.org", "ya29.tok") + b"\r\n"],
        XOAUTH2_SETTINGS,
        answers={"authenticate_xoauth2": check},
    )
    driver.run()
    assert driver.replies()[1:3] == [b"334 ", b"235 2.7.0 Authentication successful"]


def test_xoauth2_failure_sends_the_json_error_then_535() -> None:
    driver = Driver(
        [EHLO, b"AUTH XOAUTH2 " + _xoauth2("alice", "bad") + b"\r\n", b"\r\n", b"NOOP\r\n"],
        XOAUTH2_SETTINGS,
        answers={"authenticate_xoauth2": False},
    )
    driver.run()
    error = driver.replies()[1]
    assert error.startswith(b"334 ") and b'"status":"401"' in b64decode(error[4:])
    assert driver.replies()[2:4] == [
        b"535 5.7.8 Authentication credentials invalid",
        b"250 2.0.0 OK",
    ]


@pytest.mark.parametrize(
    "response",
    [
        "user=alice\x01auth=Bearer tok\x01",  # one ^A missing at the end
        "user=alice\x01auth=Basic tok\x01\x01",
        "auth=Bearer tok\x01\x01",
        "user=alice\x01user=bob\x01auth=Bearer tok\x01\x01",
        "user=alice\x01junk\x01auth=Bearer tok\x01\x01",
    ],
)
def test_xoauth2_malformed_responses_fail_without_asking(response: str) -> None:
    driver = Driver(
        [EHLO, b"AUTH XOAUTH2 " + _b64(response) + b"\r\n", b"\r\n"],
        XOAUTH2_SETTINGS,
        answers={"authenticate_xoauth2": True},
    )
    driver.run()
    assert driver.replies()[2] == b"535 5.7.8 Authentication credentials invalid"
    assert not any(call[0] == "authenticate_xoauth2" for call in driver.calls)


def test_xoauth2_check_that_raises_answers_454() -> None:
    def boom(user: str, token: str) -> bool:
        raise RuntimeError("token service down")

    driver = Driver(
        [EHLO, b"AUTH XOAUTH2 " + _xoauth2("a", "t") + b"\r\n"],
        XOAUTH2_SETTINGS,
        answers={"authenticate_xoauth2": boom},
    )
    driver.run()
    assert driver.replies()[1] == b"454 4.7.0 Temporary authentication failure"


# -- LMTP (RFC 2033) -----------------------------------------------------------

LHLO = b"LHLO client.test\r\n"
THREE = b"MAIL FROM:<s@x>\r\nRCPT TO:<a@y>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n"


def test_lmtp_greets_refuses_ehlo_and_helo_and_answers_lhlo() -> None:
    driver = Driver([b"EHLO a\r\nHELO a\r\n", LHLO, b"QUIT\r\n"], lmtp=True)
    out = driver.run()
    assert out.startswith(b"220 mx.test LMTP protomata ready\r\n")
    assert driver.replies()[0:2] == [b"500 5.5.1 Command unrecognized"] * 2
    assert b"250-PIPELINING\r\n" in out and b"250-ENHANCEDSTATUSCODES\r\n" in out


@pytest.mark.parametrize(
    "verdict",
    [
        [None, Reply(550, "no such user", "5.1.1"), Reply(452, "mailbox full", "4.2.2")],
        {"b@y": Reply(550, "no such user", "5.1.1"), "c@y": Reply(452, "mailbox full", "4.2.2")},
    ],
)
def test_lmtp_one_reply_per_recipient(verdict: Any) -> None:
    driver = Driver(
        [LHLO, THREE, b"DATA\r\nhello\r\n.\r\nNOOP\r\n"], lmtp=True, answers={"message": verdict}
    )
    driver.run()
    assert driver.replies()[-4:] == [
        b"250 2.0.0 <a@y> delivered",
        b"550 5.1.1 no such user",
        b"452 4.2.2 mailbox full",
        b"250 2.0.0 OK",
    ]
    [env] = driver.envelopes
    assert env.protocol == "LMTP" and env.rcpt_tos == ["a@y", "b@y", "c@y"]


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (
            None,
            [
                b"250 2.0.0 <a@y> delivered",
                b"250 2.0.0 <b@y> delivered",
                b"250 2.0.0 <c@y> delivered",
            ],
        ),
        (Reply(554, "rejected", "5.6.0"), [b"554 5.6.0 rejected"] * 3),
        ([None, None], [b"451 4.3.0 Local error in processing"] * 3),  # wrong length
        ([None, None, "yes"], [b"451 4.3.0 Local error in processing"] * 3),
        ("yes", [b"451 4.3.0 Local error in processing"] * 3),
        (RuntimeError("disk on fire"), [b"451 4.3.0 Local error in processing"] * 3),
    ],
)
def test_lmtp_single_verdicts_and_bad_ones(verdict: Any, expected: list[bytes]) -> None:
    def message(env: Envelope, data: bytes) -> Any:
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    driver = Driver(
        [LHLO, THREE, b"DATA\r\nhello\r\n.\r\nNOOP\r\n"], lmtp=True, answers={"message": message}
    )
    driver.run()
    assert driver.replies()[-4:] == [*expected, b"250 2.0.0 OK"]


def test_lmtp_bdat_and_oversized_data_answer_per_recipient() -> None:
    driver = Driver(
        [
            LHLO,
            b"MAIL FROM:<s@x>\r\nRCPT TO:<a@y>\r\nRCPT TO:<b@y>\r\nBDAT 5 LAST\r\nhello",
            b"MAIL FROM:<s@x>\r\nRCPT TO:<a@y>\r\nRCPT TO:<b@y>\r\nDATA\r\n",
            b"x" * 900 + b"\r\n" + b"y" * 900 + b"\r\n.\r\nNOOP\r\n",
        ],
        lmtp=True,
        answers={"message": {"b@y": Reply(550, "unknown", "5.1.1")}},
    )
    driver.run()
    replies = driver.replies()
    assert replies[4:6] == [b"250 2.0.0 <a@y> delivered", b"550 5.1.1 unknown"]
    assert replies[-3:] == [b"552 5.3.4 Message size exceeds fixed maximum"] * 2 + [b"250 2.0.0 OK"]
    assert len(driver.envelopes) == 1


def test_smtp_session_refuses_per_recipient_verdicts() -> None:
    driver = Driver(
        [EHLO, b"MAIL FROM:<s@x>\r\nRCPT TO:<a@y>\r\nDATA\r\nx\r\n.\r\n"],
        answers={"message": [None]},
    )
    driver.run()
    assert driver.replies()[-1] == b"451 4.3.0 Local error in processing"


# -- graceful shutdown ---------------------------------------------------------


@pytest.mark.parametrize(
    "before",
    [
        [],  # right after the greeting
        [EHLO],
        [EHLO, b"MAIL FROM:<s@x>\r\nRCPT TO:<r@y>\r\n"],  # inside a transaction
        [EHLO, b"AUTH LOGIN\r\n"],  # waiting for an AUTH answer
    ],
)
def test_shutdown_at_an_idle_wait_answers_421_and_closes(before: Script) -> None:
    settings = SessionSettings("mx.test", auth_available=True)
    driver = Driver([*before, ServerShutdown], settings)
    out = driver.run()
    assert out.endswith(b"421 4.3.2 mx.test Service shutting down\r\n")
    assert driver.closed and driver.waits[-1] == TimeoutKind.IDLE
    assert not driver.envelopes


def test_shutdown_in_lmtp_and_timeout_keeps_its_own_reply() -> None:
    driver = Driver([LHLO, ServerShutdown()], lmtp=True)
    assert driver.run().endswith(b"421 4.3.2 mx.test Service shutting down\r\n")
    driver = Driver([EHLO, TimeoutError])
    assert driver.run().endswith(b"421 4.4.2 mx.test timeout, closing\r\n")
    assert driver.closed


def test_body_waits_are_not_idle() -> None:
    """Shutdown is thrown only at IDLE waits: a body being read is READ."""
    driver = Driver([EHLO, b"MAIL FROM:<s@x>\r\nRCPT TO:<r@y>\r\nDATA\r\n", b"part", b"\r\n.\r\n"])
    driver.run()
    assert driver.waits[2:4] == [TimeoutKind.READ, TimeoutKind.READ]
    assert len(driver.envelopes) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("rfc822;a+2Bb@example.com", ("rfc822", "a+b@example.com")),
        # xtext escapes spelling UTF-8 bytes, as postfix relays SMTPUTF8 mail
        ("rfc822;j+C3+BCrgen@example.com", ("rfc822", "jürgen@example.com")),
        # RFC 6533: the utf-8 type, raw or with \x{HHHH} escapes
        ("utf-8;jürgen@example.com", ("utf-8", "jürgen@example.com")),
        ("UTF-8;j\\x{FC}rgen@example.com", ("UTF-8", "jürgen@example.com")),
        # \x{...} means nothing in other address types
        ("rfc822;j\\x{FC}@example.com", ("rfc822", "j\\x{FC}@example.com")),
        ("rfc822;", None),
        ("no-type", None),
        ("rfc822;a+0Db@example.com", None),  # a control character
        ("rfc822;+FF+FE@example.com", None),  # not UTF-8
        ("utf-8;\\x{110000}@example.com", None),  # beyond Unicode
        ("utf-8;\\x{7F}@example.com", None),
    ],
)
def test_orcpt_forms(value: str, expected: tuple[str, str] | None) -> None:
    from protomata.smtp._server import _orcpt

    assert _orcpt(value) == expected
