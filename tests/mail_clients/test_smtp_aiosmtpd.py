"""The three SMTP clients (sync, asyncio, trio) against aiosmtpd, a real SMTP/LMTP server.

Each scenario is written once as a coroutine over a client factory; the
blocking client runs inside it through a thin awaitable shim (aiosmtpd
serves from its own thread, so blocking there is harmless).  Every run is
bounded by client timeouts and an overall deadline.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
aiosmtpd_smtp = pytest.importorskip("aiosmtpd.smtp")
aiosmtpd_lmtp = pytest.importorskip("aiosmtpd.lmtp")
trio = pytest.importorskip("trio")

import protomata.asyncio  # noqa: E402
import protomata.sync  # noqa: E402
import protomata.trio  # noqa: E402
from protomata.smtp import Reply  # noqa: E402
from protomata.sync import SendResult, SMTPError  # noqa: E402

from .conftest import TLS  # noqa: E402

AuthResult = aiosmtpd_smtp.AuthResult
LoginPassword = aiosmtpd_smtp.LoginPassword
MESSAGE = b"From: a@x\r\nTo: b@y\r\nSubject: hi\r\n\r\n.dot first\r\nbody\r\n"
DEADLINE = 30.0
ADAPTERS = ["sync", "asyncio", "trio"]


# -- running one scenario on each adapter ------------------------------------------------


class SyncShim:
    """protomata.sync.SMTPClient with awaitable methods, so scenarios are written once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.client = protomata.sync.SMTPClient(*args, **kwargs)

    async def __aenter__(self) -> SyncShim:
        self.client.__enter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.__exit__(None, None, None)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


Scenario = Callable[[Callable[..., Any]], Awaitable[None]]


def run_on(adapter: str, scenario: Scenario) -> None:
    """Run *scenario* with the client class of *adapter*, within DEADLINE seconds."""
    if adapter == "sync":
        asyncio.run(asyncio.wait_for(scenario(SyncShim), DEADLINE))
    elif adapter == "asyncio":
        asyncio.run(asyncio.wait_for(scenario(protomata.asyncio.SMTPClient), DEADLINE))
    else:

        async def bounded() -> None:
            with trio.fail_after(DEADLINE):
                await scenario(protomata.trio.SMTPClient)

        trio.run(bounded)


# -- aiosmtpd servers --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """An aiosmtpd handler: refuses addresses starting with "bad", records messages."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lmtp_statuses: list[str] | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("bad"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "content": envelope.original_content,
                "mail_options": list(envelope.mail_options),
                "tls": session.ssl is not None,
                "login": getattr(session.auth_data, "login", None),
            }
        )
        if self.lmtp_statuses is not None:
            return "\r\n".join(self.lmtp_statuses[: len(envelope.rcpt_tos)])
        return "250 OK queued"


class ExtraMechanisms(Recorder):
    """Adds CRAM-MD5 and XOAUTH2 through aiosmtpd's ``auth_<MECH>`` handler hooks."""

    USERS = {"ann": "s3cret"}
    TOKENS = {"ann": "ya29.good"}

    async def auth_CRAM__MD5(self, server: Any, args: list[str]) -> Any:
        challenge = b"<1896.697170952@aiosmtpd.test>"
        response = await server.challenge_auth(challenge)
        if not isinstance(response, bytes):
            return AuthResult(success=False, handled=True)
        user, _, digest = response.decode().rpartition(" ")
        password = self.USERS.get(user, "")
        expected = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
        ok = bool(password) and hmac.compare_digest(digest, expected)
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(user.encode(), b""))

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:
        blob = base64.b64decode(args[1]) if len(args) > 1 else b""
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        user, auth = fields.get("user", ""), fields.get("auth", "")
        if auth == f"Bearer {self.TOKENS.get(user)}":
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        # RFC-less but documented XOAUTH2 behaviour: a 334 error challenge
        # that the client must acknowledge with an empty line.
        await server.challenge_auth(b'{"status":"401","schemes":"bearer"}')
        return AuthResult(success=False, handled=False)


def password_authenticator(server: Any, session: Any, envelope: Any, mech: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"ann", b"s3cret")
    # handled=False: aiosmtpd itself answers 535 on failure
    return AuthResult(success=ok, handled=False, auth_data=data)


class LMTPController(aiosmtpd_controller.Controller):  # type: ignore[misc]
    def factory(self) -> Any:
        return aiosmtpd_lmtp.LMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def aiosmtpd_server(handler: Recorder, *, lmtp: bool = False, **kwargs: Any) -> Iterator[int]:
    controller_class = LMTPController if lmtp else aiosmtpd_controller.Controller
    port = free_port()
    controller = controller_class(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


# -- the scenarios -----------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_plain_send_several_messages_and_refusals(adapter: str) -> None:
    handler = Recorder()
    with aiosmtpd_server(handler) as port:

        async def scenario(client_class: Callable[..., Any]) -> None:
            async with client_class("127.0.0.1", port, timeout=5) as client:
                first = await client.send_message(MESSAGE, "a@x", ["b@y", "bad@y", "c@z"])
                assert isinstance(first, SendResult)
                assert sorted(first.accepted) == ["b@y", "c@z"]
                assert list(first.refused) == ["bad@y"]
                assert first.refused["bad@y"].code == 550
                assert first.refused["bad@y"].enhanced_status == "5.1.1"
                assert first.reply is not None and first.reply.code == 250
                assert not first.ok
                second = await client.send_message(b"Subject: two\n\nline\n", "a@x", "d@y")
                assert second.ok and list(second.accepted) == ["d@y"]
                none = await client.send_message(MESSAGE, "a@x", ["bad1@y", "bad2@y"])
                assert none.accepted == {} and none.reply is None
                assert sorted(none.refused) == ["bad1@y", "bad2@y"]
                assert (await client.noop()).code == 250
                assert (await client.rset()).code == 250
                third = await client.send_message(MESSAGE, "a@x", "e@y")
                assert third.ok
                assert (await client.quit()).code == 221

        run_on(adapter, scenario)
    assert [m["to"] for m in handler.messages] == [["b@y", "c@z"], ["d@y"], ["e@y"]]
    assert handler.messages[0]["content"] == MESSAGE
    # bare LF line ends went out as CRLF
    assert handler.messages[1]["content"] == b"Subject: two\r\n\r\nline\r\n"
    assert handler.messages[0]["mail_options"] == [f"SIZE={len(MESSAGE)}"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_size_limit(adapter: str) -> None:
    handler = Recorder()
    with aiosmtpd_server(handler, data_size_limit=200) as port:

        async def scenario(client_class: Callable[..., Any]) -> None:
            async with client_class("127.0.0.1", port, timeout=5) as client:
                assert client.extensions.size == 200
                with pytest.raises(SMTPError, match="exceeds the server's SIZE 200"):
                    await client.send_message(b"x" * 300 + b"\r\n", "a@x", "b@y")
                # the session is still usable
                assert (await client.send_message(b"small\r\n", "a@x", "b@y")).ok

        run_on(adapter, scenario)
    assert [m["content"] for m in handler.messages] == [b"small\r\n"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_8bitmime_and_smtputf8(adapter: str) -> None:
    handler = Recorder()
    body = "Subject: caf\u00e9\r\n\r\nna\u00efve \u2603\r\n".encode()
    with aiosmtpd_server(handler, enable_SMTPUTF8=True) as port:

        async def scenario(client_class: Callable[..., Any]) -> None:
            async with client_class("127.0.0.1", port, timeout=5) as client:
                assert client.extensions.eightbitmime and client.extensions.smtputf8
                latin = b"Subject: plain\r\n\r\ncaf\xc3\xa9\r\n"
                assert (await client.send_message(latin, "a@x", "b@y")).ok
                result = await client.send_message(
                    body, "j\u00f6rg@x", "\u00e9l\u00e8ve@\u00e9cole.fr"
                )
                assert list(result.accepted) == ["\u00e9l\u00e8ve@\u00e9cole.fr"]

        run_on(adapter, scenario)
    first, second = handler.messages
    assert "BODY=8BITMIME" in first["mail_options"] and "SMTPUTF8" not in first["mail_options"]
    assert first["content"] == b"Subject: plain\r\n\r\ncaf\xc3\xa9\r\n"
    assert second["from"] == "j\u00f6rg@x"
    assert second["to"] == ["\u00e9l\u00e8ve@\u00e9cole.fr"]
    assert {"SMTPUTF8", "BODY=8BITMIME"} <= set(second["mail_options"])
    assert second["content"] == body


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_non_ascii_address_without_smtputf8_fails_before_mail(adapter: str) -> None:
    handler = Recorder()
    with aiosmtpd_server(handler, enable_SMTPUTF8=False) as port:

        async def scenario(client_class: Callable[..., Any]) -> None:
            async with client_class("127.0.0.1", port, timeout=5) as client:
                assert not client.extensions.smtputf8
                with pytest.raises(SMTPError, match="SMTPUTF8"):
                    await client.send_message(MESSAGE, "a@x", "\u00e9l\u00e8ve@x")
                assert (await client.send_message(MESSAGE, "a@x", "b@y")).ok

        run_on(adapter, scenario)
    assert [m["to"] for m in handler.messages] == [["b@y"]]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_starttls_required_by_server(adapter: str, tls: TLS) -> None:
    handler = Recorder()
    with aiosmtpd_server(handler, tls_context=tls.server, require_starttls=True) as port:

        async def scenario(client_class: Callable[..., Any]) -> None:
            async with client_class(
                "127.0.0.1", port, starttls="required", verify=tls.client, timeout=5
            ) as client:
                assert client.connection.tls_active
                assert "STARTTLS" not in client.extensions  # EHLO was repeated after TLS
                assert (await client.send_message(MESSAGE, "a@x", "b@y")).ok
            # without STARTTLS the server refuses the transaction
            async with client_class("127.0.0.1", port, timeout=5) as plain:
                with pytest.raises(SMTPError) as info:
                    await plain.send_message(MESSAGE, "a@x", "b@y")
                assert info.value.reply is not None and info.value.reply.code == 530
            # and an untrusted certificate fails the handshake
            untrusted = client_class("127.0.0.1", port, starttls="required", timeout=5)
            with pytest.raises(ssl.SSLCertVerificationError):
                await untrusted.connect()

        run_on(adapter, scenario)
    assert [m["tls"] for m in handler.messages] == [True]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_implicit_tls(adapter: str, tls: TLS) -> None:
    handler = Recorder()
    with aiosmtpd_server(handler, ssl_context=tls.server) as port:

        async def scenario(client_class: Callable[..., Any]) -> None:
            async with client_class(
                "127.0.0.1", port, tls=True, verify=tls.client, timeout=5
            ) as client:
                assert (await client.send_message(MESSAGE, "a@x", ["b@y", "c@y"])).ok

        run_on(adapter, scenario)
    assert [m["to"] for m in handler.messages] == [["b@y", "c@y"]]


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", None])
def test_auth_plain_and_login_after_starttls(adapter: str, mechanism: str | None, tls: TLS) -> None:
    handler = Recorder()
    with aiosmtpd_server(
        handler,
        tls_context=tls.server,
        authenticator=password_authenticator,
        auth_required=True,
        auth_require_tls=True,
    ) as port:

        async def scenario(client_class: Callable[..., Any]) -> None:
            options = {"starttls": "required", "verify": tls.client, "timeout": 5}
            async with client_class("127.0.0.1", port, **options) as client:
                assert {"PLAIN", "LOGIN"} <= client.extensions.auth_mechanisms
                reply = await client.login("ann", "s3cret", mechanism=mechanism)
                assert reply.code == 235
                assert client.connection.authenticated
                assert (await client.send_message(MESSAGE, "a@x", "b@y")).ok
            async with client_class("127.0.0.1", port, **options) as client:
                with pytest.raises(SMTPError, match="535"):
                    await client.login("ann", "wrong", mechanism=mechanism)
                with pytest.raises(SMTPError, match="530"):  # auth_required
                    await client.send_message(MESSAGE, "a@x", "b@y")
            # credentials in the constructor log in on connect
            async with client_class(
                "127.0.0.1", port, username="ann", password="s3cret", **options
            ) as client:
                assert client.connection.authenticated
                assert (await client.send_message(MESSAGE, "a@x", "c@y")).ok

        run_on(adapter, scenario)
    assert [m["login"] for m in handler.messages] == [b"ann", b"ann"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_auth_cram_md5_and_xoauth2(adapter: str) -> None:
    handler = ExtraMechanisms()
    with aiosmtpd_server(
        handler,
        authenticator=password_authenticator,
        auth_require_tls=False,
        auth_exclude_mechanism=["PLAIN", "LOGIN"],
    ) as port:

        async def scenario(client_class: Callable[..., Any]) -> None:
            async with client_class("127.0.0.1", port, timeout=5) as client:
                assert client.extensions.auth_mechanisms == {"CRAM-MD5", "XOAUTH2"}
                # mechanism=None with a password picks CRAM-MD5
                assert (await client.login("ann", "s3cret")).code == 235
                assert (await client.send_message(MESSAGE, "a@x", "b@y")).ok
            async with client_class("127.0.0.1", port, timeout=5) as client:
                with pytest.raises(SMTPError, match="535"):
                    await client.login("ann", "wrong", mechanism="CRAM-MD5")
            async with client_class("127.0.0.1", port, timeout=5) as client:
                # a token picks XOAUTH2
                assert (await client.login("ann", token="ya29.good")).code == 235
                assert (await client.send_message(MESSAGE, "a@x", "c@y")).ok
            async with client_class("127.0.0.1", port, timeout=5) as client:
                # the 334 error challenge is acknowledged, then 535 reported
                with pytest.raises(SMTPError, match="535"):
                    await client.login("ann", token="expired")
                assert (await client.noop()).code == 250  # the session goes on

        run_on(adapter, scenario)
    assert [m["to"] for m in handler.messages] == [["b@y"], ["c@y"]]
    assert [m["login"] for m in handler.messages] == [b"ann", b"ann"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_lmtp_per_recipient_results(adapter: str) -> None:
    handler = Recorder()
    handler.lmtp_statuses = ["250 2.0.0 delivered to b", "452 4.2.2 Mailbox full", "250 ok"]
    with aiosmtpd_server(handler, lmtp=True) as port:

        async def scenario(client_class: Callable[..., Any]) -> None:
            async with client_class("127.0.0.1", port, lmtp=True, timeout=5) as client:
                result = await client.send_message(MESSAGE, "a@x", ["b@y", "bad@y", "c@y", "d@y"])
                assert sorted(result.accepted) == ["b@y", "d@y"]
                assert result.accepted["b@y"] == Reply(250, "delivered to b", "2.0.0")
                assert result.refused["bad@y"].code == 550  # at RCPT
                assert result.refused["c@y"] == Reply(452, "Mailbox full", "4.2.2")  # after DATA
                assert result.reply == Reply(250, "ok")
                again = await client.send_message(MESSAGE, "a@x", "e@y")
                assert list(again.accepted) == ["e@y"]

        run_on(adapter, scenario)
    assert [m["to"] for m in handler.messages] == [["b@y", "c@y", "d@y"], ["e@y"]]
