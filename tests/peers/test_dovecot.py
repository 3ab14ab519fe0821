"""protomata's POP3, LMTP and SMTP clients against a real dovecot on loopback.

The POP3 conversation runs as the pure operations of
:mod:`protomata.pop3._client` driven by :func:`protomata.sync.run` over
:func:`protomata.sync.connect_tcp`, and through the ``POP3Client`` classes
of the blocking, asyncio and trio adapters.  LMTP delivery uses the SMTP
client machine in LMTP mode; dovecot's submission service takes our SMTP
client's AUTH and relays to protomata's own SMTP server.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from protomata._core import CLIENT
from protomata.pop3 import Connection
from protomata.pop3 import _client as pop3_ops
from protomata.pop3._client import POP3Error
from protomata.pop3._server import to_crlf
from protomata.smtp import Connection as SMTPConnection
from protomata.smtp._operations import SMTPError, SMTPRecipientsRefused, send_mail
from protomata.sync import POP3Client, SocketStream, Timeouts, connect_tcp, run

from . import conftest_dovecot
from .conftest_dovecot import Account, Dovecot

# The fixtures (not in conftest.py, which holds the postfix ones).
dovecot_server = conftest_dovecot.dovecot_server
dovecot = conftest_dovecot.dovecot
account = conftest_dovecot.account

TIMEOUT = 10.0

MSG_DOTS = (
    b"From: a@example.com\r\nSubject: dots\r\n\r\n"
    b".leading dot\r\n..two dots\r\n.\r\nline after a lone dot\r\n. space\r\n"
)
MSG_LF = b"From: b@example.com\nSubject: bare LF\n\nline 1\n.dot line\nlast\n"
MSG_PLAIN = b"Subject: three\r\n\r\nb1\r\nb2\r\nb3\r\nb4\r\n"


#: Source addresses for sessions that fail to log in: dovecot delays every
#: later login from an address that failed (its "auth penalty", 2 to 15 s),
#: so each failing session comes from an address of its own.
_FAILING_SOURCES = (f"127.0.0.{n}" for n in itertools.count(2))


def open_stream(
    dovecot: Dovecot, port: int, *, tls: bool = False, will_fail: bool = False
) -> SocketStream:
    """A connection to *port*; from an address of its own if its login *will_fail*."""
    timeouts = Timeouts(TIMEOUT, connect=TIMEOUT, write=TIMEOUT)
    if not will_fail:
        return connect_tcp(
            "127.0.0.1", port, timeouts=timeouts, tls_context=dovecot.client_context(), tls=tls
        )
    assert not tls
    sock = socket.create_connection(
        ("127.0.0.1", port), timeout=TIMEOUT, source_address=(next(_FAILING_SOURCES), 0)
    )
    return SocketStream(sock, timeouts, dovecot.client_context(), "127.0.0.1")


@contextmanager
def session(
    dovecot: Dovecot, *, tls: bool = False, will_fail: bool = False
) -> Iterator[tuple[Connection, SocketStream]]:
    """A greeted client connection to dovecot's POP3 (or POP3S) port."""
    port = dovecot.pop3s_port if tls else dovecot.pop3_port
    stream = open_stream(dovecot, port, tls=tls, will_fail=will_fail)
    try:
        conn = Connection(CLIENT)
        run(pop3_ops.greeting(conn), stream)
        yield conn, stream
    finally:
        stream.close()


def logged_in(dovecot: Dovecot, account: Account) -> POP3Client:
    client = POP3Client("127.0.0.1", dovecot.pop3_port, timeout=TIMEOUT)
    client.login(account.name, account.password)
    return client


# -- greeting, CAPA, logins -------------------------------------------------------


def test_greeting_capa_and_user_pass(dovecot: Dovecot, account: Account) -> None:
    with session(dovecot) as (conn, stream):
        assert conn.greeting_timestamp is not None  # "apop" is in auth_mechanisms
        assert conn.greeting_timestamp.startswith("<") and "@" in conn.greeting_timestamp
        caps = run(pop3_ops.capabilities(conn), stream)
        for name in ("TOP", "UIDL", "USER", "STLS", "RESP-CODES", "PIPELINING"):
            assert name in caps, caps
        assert set(caps.arguments("SASL") or ()) >= {"PLAIN", "LOGIN", "CRAM-MD5"}
        run(pop3_ops.login(conn, account.name, account.password), stream)
        assert run(pop3_ops.stat(conn), stream) == (0, 0)
        run(pop3_ops.quit(conn), stream)


def test_wrong_password_is_pop3_error(dovecot: Dovecot, account: Account) -> None:
    with session(dovecot, will_fail=True) as (conn, stream):
        with pytest.raises(POP3Error) as info:
            run(pop3_ops.login(conn, account.name, "wrong"), stream)
        assert info.value.text is not None and "[AUTH]" in info.value.text


def test_apop(dovecot: Dovecot, account: Account) -> None:
    account.deliver(MSG_PLAIN)
    with session(dovecot) as (conn, stream):
        run(pop3_ops.login(conn, account.name, account.password, apop=True), stream)
        assert run(pop3_ops.stat(conn), stream) == (1, len(MSG_PLAIN))
        run(pop3_ops.quit(conn), stream)
    with session(dovecot, will_fail=True) as (conn, stream), pytest.raises(POP3Error):
        run(pop3_ops.login(conn, account.name, "wrong", apop=True), stream)


@pytest.mark.parametrize(
    ("mechanism", "initial_response"),
    [("PLAIN", True), ("PLAIN", False), ("LOGIN", True), ("CRAM-MD5", True)],
)
def test_sasl_auth(
    dovecot: Dovecot, account: Account, mechanism: str, initial_response: bool
) -> None:
    account.deliver(MSG_PLAIN)
    with session(dovecot) as (conn, stream):
        run(
            pop3_ops.authenticate(
                conn,
                mechanism,
                account.name,
                account.password,
                initial_response=initial_response,
            ),
            stream,
        )
        assert run(pop3_ops.stat(conn), stream) == (1, len(MSG_PLAIN))
        run(pop3_ops.quit(conn), stream)
    with session(dovecot, will_fail=True) as (conn, stream), pytest.raises(POP3Error) as info:
        run(pop3_ops.authenticate(conn, mechanism, account.name, "wrong"), stream)
    assert info.value.text is not None and "[AUTH]" in info.value.text


# -- TLS --------------------------------------------------------------------------


def test_stls_then_login(dovecot: Dovecot, account: Account) -> None:
    account.deliver(MSG_DOTS)
    client = POP3Client(
        "127.0.0.1", dovecot.pop3_port, stls=True, verify=dovecot.client_context(), timeout=TIMEOUT
    )
    with client:
        assert isinstance(client.stream.socket, ssl.SSLSocket)
        client.login(account.name, account.password)
        assert client.retrieve(1) == MSG_DOTS
    (login_line,) = dovecot.log_lines(f"Login: user=<{account.name}>")
    assert ", TLS," in login_line, login_line


def test_stls_pure_and_capa_after(dovecot: Dovecot, account: Account) -> None:
    with session(dovecot) as (conn, stream):
        run(pop3_ops.start_tls(conn, "localhost"), stream)
        caps = run(pop3_ops.capabilities(conn), stream)
        assert "STLS" not in caps  # RFC 2595: not offered again
        run(pop3_ops.login(conn, account.name, account.password), stream)
        run(pop3_ops.quit(conn), stream)


def test_implicit_tls(dovecot: Dovecot, account: Account) -> None:
    account.deliver(MSG_PLAIN)
    client = POP3Client(
        "127.0.0.1", dovecot.pop3s_port, tls=True, verify=dovecot.client_context(), timeout=TIMEOUT
    )
    with client:
        client.login(account.name, account.password)
        assert client.stat() == (1, len(MSG_PLAIN))
        assert client.retrieve(1) == MSG_PLAIN


def test_tls_certificate_is_verified(dovecot: Dovecot) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        POP3Client("127.0.0.1", dovecot.pop3s_port, tls=True, verify=True, timeout=TIMEOUT)


# -- the transaction state ----------------------------------------------------------


def test_stat_list_uidl_retr(dovecot: Dovecot, account: Account) -> None:
    messages = [MSG_DOTS, MSG_LF, MSG_PLAIN]
    for message in messages:
        account.deliver(message)
    wire = [to_crlf(m) for m in messages]
    with logged_in(dovecot, account) as client:
        assert client.stat() == (3, sum(map(len, wire)))
        assert client.list_messages() == [(n, len(w)) for n, w in enumerate(wire, 1)]
        first = client.uidl()
        assert [n for n, _ in first] == [1, 2, 3]
        assert len({uid for _, uid in first}) == 3
        for n, expected in enumerate(wire, 1):
            assert client.retrieve(n) == expected
    with logged_in(dovecot, account) as client:
        assert client.uidl() == first  # stable across sessions


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"Subject: no end\r\n\r\nb1\r\nlast line without CRLF", id="no-final-eol"),
        pytest.param(b"Subject: 8bit\r\n\r\n\xe4\xf6\xfc \xff\xfe\x80\r\n", id="8bit"),
        pytest.param(b"Subject: long\r\n\r\n" + b"L" * 20_000 + b"\r\n.\r\n", id="long-line"),
        pytest.param(b"Subject: empty body\r\n\r\n", id="empty-body"),
    ],
)
def test_retr_odd_messages(dovecot: Dovecot, account: Account, message: bytes) -> None:
    account.deliver(message)
    with logged_in(dovecot, account) as client:
        (_, size), *_ = client.list_messages()
        got = client.retrieve(1)
    assert got == to_crlf(message)
    # dovecot's LIST size is that of the stored message: a final line end it
    # adds on the wire is not counted (RFC 1939 allows sizes to be approximate)
    assert size == len(message)


def test_line_longer_than_the_client_limit(dovecot: Dovecot, account: Account) -> None:
    message = b"Subject: huge line\r\n\r\n" + b"H" * 100_000 + b"\r\n"
    account.deliver(message)
    with logged_in(dovecot, account) as client, pytest.raises(POP3Error):
        client.retrieve(1)  # the default limit is 64 KiB per line
    client = POP3Client("127.0.0.1", dovecot.pop3_port, timeout=TIMEOUT, max_line_length=200_000)
    with client:
        client.login(account.name, account.password)
        assert client.retrieve(1) == message


def test_top(dovecot: Dovecot, account: Account) -> None:
    account.deliver(MSG_PLAIN)
    account.deliver(MSG_DOTS)
    with session(dovecot) as (conn, stream):
        run(pop3_ops.login(conn, account.name, account.password), stream)
        assert run(pop3_ops.top(conn, 1, 2), stream) == b"Subject: three\r\n\r\nb1\r\nb2\r\n"
        assert run(pop3_ops.top(conn, 1, 0), stream) == b"Subject: three\r\n\r\n"
        assert (
            run(pop3_ops.top(conn, 2, 3), stream) == MSG_DOTS.split(b"\r\n.\r\n")[0] + b"\r\n.\r\n"
        )
        run(pop3_ops.quit(conn), stream)


def test_retr_of_a_multi_megabyte_message(dovecot: Dovecot, account: Account) -> None:
    line = b".%06d " + b"x" * 90 + b"\r\n"
    body = b"".join(line % i if i % 3 else line[1:] % i for i in range(40_000))
    message = b"Subject: big\r\n\r\n" + body
    assert len(message) > 3_000_000
    account.deliver(message)
    with logged_in(dovecot, account) as client:
        assert client.list_messages() == [(1, len(message))]
        started = time.perf_counter()
        got = client.retrieve(1)
        elapsed = time.perf_counter() - started
    assert got == message
    print(f"RETR {len(message) / 1e6:.1f} MB from dovecot: {elapsed:.3f} s")


def test_retrieve_missing_message_is_pop3_error(dovecot: Dovecot, account: Account) -> None:
    account.deliver(MSG_PLAIN)
    with logged_in(dovecot, account) as client:
        with pytest.raises(POP3Error):
            client.retrieve(2)
        assert client.retrieve(1) == MSG_PLAIN  # the session goes on


def test_dele_then_quit_removes(dovecot: Dovecot, account: Account) -> None:
    for message in (MSG_PLAIN, MSG_DOTS):
        account.deliver(message)
    with logged_in(dovecot, account) as client:
        uids = dict(client.uidl())
        client.delete(1)
        assert client.stat() == (1, len(MSG_DOTS))
        with pytest.raises(POP3Error):
            client.retrieve(1)  # marked deleted
    assert account.stored() == [MSG_DOTS]
    with logged_in(dovecot, account) as client:
        assert client.uidl() == [(1, uids[2])]


def test_dele_then_drop_keeps(dovecot: Dovecot, account: Account) -> None:
    account.deliver(MSG_PLAIN)
    client = logged_in(dovecot, account)
    client.delete(1)
    assert client.stat() == (0, 0)
    client.close()  # no QUIT: RFC 1939 says nothing is removed
    deadline = time.monotonic() + TIMEOUT
    while not any(
        f" pop3({account.name})<" in line and "Disconnected" in line
        for line in dovecot.log().splitlines()
    ):
        assert time.monotonic() < deadline, "dovecot did not log the disconnect"
        time.sleep(0.05)
    assert account.stored() == [MSG_PLAIN]
    with logged_in(dovecot, account) as client:
        assert client.stat() == (1, len(MSG_PLAIN))


# -- the POP3Client classes: blocking, asyncio and trio ------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_client_capa_and_sasl(dovecot: Dovecot, account: Account, mechanism: str) -> None:
    account.deliver(MSG_PLAIN)
    with POP3Client("127.0.0.1", dovecot.pop3_port, timeout=TIMEOUT) as client:
        assert client.greeting.startswith("Dovecot")
        caps = client.capa()
        assert mechanism in (caps.arguments("SASL") or ())
        client.auth(mechanism, account.name, account.password)
        assert client.stat() == (1, len(MSG_PLAIN))


def test_client_top_sizes_rset_and_streaming(dovecot: Dovecot, account: Account) -> None:
    big = b"Subject: big\r\n\r\n" + b"".join(b".%07d\r\n" % i for i in range(300_000))
    account.deliver(MSG_PLAIN)
    account.deliver(big)
    with logged_in(dovecot, account) as client:
        assert client.top(1, 1) == b"Subject: three\r\n\r\nb1\r\n"
        assert client.message_size(2) == len(big)
        uids = dict(client.uidl())
        assert client.message_uid(2) == uids[2]
        pieces = list(client.iter_retrieve(2))
        assert len(pieces) > 1 and b"".join(pieces) == big
        for _ in client.iter_retrieve(2):
            break  # the rest is read and dropped before the next command
        assert client.retrieve(1) == MSG_PLAIN
        sink = io.BytesIO()
        assert client.retrieve_to(2, sink) == len(big)
        assert sink.getvalue() == big
        client.delete(1)
        client.rset()
        client.noop()
        assert client.stat() == (2, len(MSG_PLAIN) + len(big))
    assert len(account.stored()) == 2


async def _async_session(client_class: Any, dovecot: Dovecot, account: Account) -> list[Any]:
    results: list[Any] = []
    async with client_class(
        "127.0.0.1",
        dovecot.pop3_port,
        stls=True,
        verify=dovecot.client_context(),
        timeout=TIMEOUT,
    ) as client:
        await client.auth("PLAIN", account.name, account.password)
        results.append(await client.stat())
        results.append(await client.uidl())
        results.append(await client.top(1, 0))
        results.append(await client.retrieve(1))
        results.append(b"".join([piece async for piece in client.iter_retrieve(2)]))
        async for _ in client.iter_retrieve(2):
            break  # the rest is read and dropped before the next command
        results.append(await client.retrieve(1))
        await client.delete(1)
    return results


@pytest.mark.parametrize("adapter", ["asyncio", "trio"])
def test_async_clients(dovecot: Dovecot, account: Account, adapter: str) -> None:
    big = b"Subject: big\r\n\r\n" + b"..x\r\n" * 500_000
    account.deliver(MSG_DOTS)
    account.deliver(big)
    if adapter == "asyncio":
        from protomata.asyncio import POP3Client as AsyncioClient

        results = asyncio.run(
            asyncio.wait_for(_async_session(AsyncioClient, dovecot, account), 4 * TIMEOUT)
        )
    else:
        trio = pytest.importorskip("trio")
        from protomata.trio import POP3Client as TrioClient

        async def main() -> list[Any]:
            with trio.fail_after(4 * TIMEOUT):
                return await _async_session(TrioClient, dovecot, account)

        results = trio.run(main)
    count_size, uids, head, first, second, first_again = results
    assert count_size == (2, len(MSG_DOTS) + len(big))
    assert [n for n, _ in uids] == [1, 2]
    assert head == b"From: a@example.com\r\nSubject: dots\r\n\r\n"
    assert first == MSG_DOTS
    assert second == big
    assert first_again == MSG_DOTS
    assert account.stored() == [big]  # QUIT on leaving committed the DELE


@pytest.mark.parametrize(
    ("adapter", "options", "implicit_tls"),
    [
        ("sync", ["--stls", "--auth", "CRAM-MD5"], False),
        ("asyncio", ["--apop"], True),
        ("trio", ["--stls", "--auth", "PLAIN"], False),
    ],
    ids=["sync-stls-cram-md5", "asyncio-pop3s-apop", "trio-stls-plain"],
)
def test_fetch_mail_command(
    dovecot: Dovecot,
    account: Account,
    tmp_path: Path,
    adapter: str,
    options: list[str],
    implicit_tls: bool,
) -> None:
    """``protomata fetch-mail`` downloads and deletes; the CA is trusted via SSL_CERT_FILE."""
    if adapter == "trio":
        pytest.importorskip("trio")
    messages = [MSG_DOTS, MSG_LF, b"Subject: big\r\n\r\n" + b".xx\r\n" * 400_000]
    for message in messages:
        account.deliver(message)
    maildir = tmp_path / "fetched"
    scheme, port = ("pop3s", dovecot.pop3s_port) if implicit_tls else ("pop3", dovecot.pop3_port)
    url = f"{scheme}://{account.name}:{quote(account.password)}@127.0.0.1:{port}/"
    command = [sys.executable, "-m", "protomata", "fetch-mail", "--maildir", str(maildir)]
    command += ["--delete", "--io", adapter, "--timeout", str(TIMEOUT), *options, url]
    result = subprocess.run(
        command,
        env={**os.environ, "SSL_CERT_FILE": str(dovecot.ca_file)},
        capture_output=True,
        text=True,
        timeout=6 * TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fetched = sorted(p.read_bytes() for p in (maildir / "new").iterdir())
    assert fetched == sorted(to_crlf(m).replace(b"\r\n", b"\n") for m in messages)
    assert account.stored() == []


# -- LMTP -----------------------------------------------------------------------------


def lmtp_stream(dovecot: Dovecot) -> SocketStream:
    return connect_tcp(
        "127.0.0.1",
        dovecot.lmtp_port,
        timeouts=Timeouts(TIMEOUT, connect=TIMEOUT, write=TIMEOUT),
    )


def test_lmtp_per_recipient_replies(dovecot: Dovecot, account: Account) -> None:
    message = b"From: s@example.com\r\nSubject: via lmtp\r\n\r\n.dot\r\nbody\r\n"
    stream = lmtp_stream(dovecot)
    try:
        conn = SMTPConnection(CLIENT, lmtp=True)
        refused = run(
            send_mail(
                conn, "s@example.com", [account.name, "nosuchuser"], message, starttls="never"
            ),
            stream,
        )
    finally:
        stream.close()
    assert list(refused) == ["nosuchuser"]
    assert refused["nosuchuser"].code == 550
    (stored,) = account.stored()
    # dovecot prepends Return-Path and Delivered-To and stores LF line ends
    assert stored.endswith(message.replace(b"\r\n", b"\n"))
    assert b"Return-Path: <s@example.com>" in stored


@pytest.mark.parametrize("chunking", [False, True], ids=["DATA", "BDAT"])
def test_lmtp_multi_megabyte_message(dovecot: Dovecot, account: Account, chunking: bool) -> None:
    line = b".%06d " + b"z" * 90 + b"\r\n"
    message = b"Subject: big\r\n\r\n" + b"".join(line % i for i in range(30_000))
    stream = lmtp_stream(dovecot)
    try:
        conn = SMTPConnection(CLIENT, lmtp=True)
        refused = run(
            send_mail(
                conn, "s@example.com", [account.name], message, starttls="never", chunking=chunking
            ),
            stream,
        )
    finally:
        stream.close()
    assert refused == {}
    assert conn.extensions.chunking  # dovecot offers CHUNKING over LMTP
    (stored,) = account.stored()
    assert stored.endswith(message.replace(b"\r\n", b"\n"))


def test_lmtp_several_local_recipients(dovecot: Dovecot) -> None:
    first, second = dovecot.add_account(), dovecot.add_account()
    stream = lmtp_stream(dovecot)
    try:
        refused = run(
            send_mail(
                SMTPConnection(CLIENT, lmtp=True),
                "s@example.com",
                [first.name, second.name],
                MSG_PLAIN,
                starttls="never",
            ),
            stream,
        )
    finally:
        stream.close()
    assert refused == {}
    for user in (first, second):
        (stored,) = user.stored()
        assert stored.endswith(MSG_PLAIN.replace(b"\r\n", b"\n"))


def test_lmtp_refusal_after_data(dovecot: Dovecot, account: Account) -> None:
    """One recipient accepted at RCPT is over quota: LMTP refuses it after DATA only."""
    small = dovecot.small_quota_account()
    message = b"Subject: too big for one\r\n\r\n" + (b"w" * 78 + b"\r\n") * 100
    stream = lmtp_stream(dovecot)
    try:
        refused = run(
            send_mail(
                SMTPConnection(CLIENT, lmtp=True),
                "s@example.com",
                [account.name, small.name],
                message,
                starttls="never",
            ),
            stream,
        )
    finally:
        stream.close()
    assert list(refused) == [small.name]
    assert refused[small.name].code == 552, refused
    assert refused[small.name].enhanced_status == "5.2.2"
    assert small.stored() == []
    (stored,) = account.stored()
    assert stored.endswith(message.replace(b"\r\n", b"\n"))


def test_lmtp_all_refused(dovecot: Dovecot) -> None:
    stream = lmtp_stream(dovecot)
    try:
        with pytest.raises(SMTPRecipientsRefused) as info:
            run(
                send_mail(
                    SMTPConnection(CLIENT, lmtp=True),
                    "s@example.com",
                    ["nobody1", "nobody2"],
                    MSG_PLAIN,
                    starttls="never",
                ),
                stream,
            )
    finally:
        stream.close()
    assert sorted(info.value.refused) == ["nobody1", "nobody2"]
    assert {reply.code for reply in info.value.refused.values()} == {550}


def test_startup_time(dovecot: Dovecot) -> None:
    assert 0 < dovecot.startup_seconds < 15
    print(f"dovecot listening after {dovecot.startup_seconds * 1000:.0f} ms")


# -- submission (AUTH), relayed to protomata's SMTP server ------------------------------


def submit(
    dovecot: Dovecot, recipients: list[str], message: bytes, will_fail: bool = False, **options: Any
) -> Any:
    if not dovecot.has_submission:
        pytest.skip("dovecot's submission service is not installed (Debian: dovecot-submissiond)")
    stream = open_stream(dovecot, dovecot.submission_port, will_fail=will_fail)
    try:
        conn = SMTPConnection(CLIENT)
        refused = run(send_mail(conn, "s@example.com", recipients, message, **options), stream)
    finally:
        stream.close()
    return conn, refused


@pytest.mark.parametrize("starttls", ["never", "required"])
def test_submission_auth_and_relay(dovecot: Dovecot, account: Account, starttls: str) -> None:
    message = b"From: s@example.com\r\nSubject: submitted\r\n\r\n.dot\r\n..two\r\nbody\r\n"
    before = len(dovecot.relayed)
    conn, refused = submit(
        dovecot,
        ["rcpt1@example.org", "rcpt2@example.org"],
        message,
        starttls=starttls,
        auth=(account.name, account.password),
    )
    assert refused == {}
    assert conn.extensions.auth_mechanisms >= {"PLAIN", "LOGIN"}
    (envelope, data), *_ = dovecot.relayed[before:]
    assert len(dovecot.relayed) == before + 1
    assert envelope.mail_from == "s@example.com"
    assert list(envelope.rcpt_tos) == ["rcpt1@example.org", "rcpt2@example.org"]
    # dovecot relays the message as submitted, under a Received: header of its own
    assert data.startswith(b"Received: ") and data.endswith(b"\r\n" + message)


def test_submission_passes_on_a_refusal_of_the_relay(dovecot: Dovecot, account: Account) -> None:
    """Our SMTP server refuses one recipient; dovecot hands the 550 back to our client."""
    before = len(dovecot.relayed)
    _, refused = submit(
        dovecot,
        ["refuse-me@example.org", "ok@example.org"],
        MSG_PLAIN,
        auth=(account.name, account.password),
    )
    assert list(refused) == ["refuse-me@example.org"]
    assert refused["refuse-me@example.org"].code == 550
    assert "no such mailbox here" in refused["refuse-me@example.org"].text
    ((envelope, data),) = dovecot.relayed[before:]
    assert list(envelope.rcpt_tos) == ["ok@example.org"]
    assert data.endswith(b"\r\n" + MSG_PLAIN)


def test_submission_8bit(dovecot: Dovecot, account: Account) -> None:
    message = "Subject: Grüße\r\n\r\nÄrger über Öl\r\n".encode()
    before = len(dovecot.relayed)
    _, refused = submit(
        dovecot,
        ["r@example.org"],
        message,
        auth=(account.name, account.password),
        mail_params=[("BODY", "8BITMIME")],
    )
    assert refused == {}
    ((envelope, data),) = dovecot.relayed[before:]
    assert data.endswith(b"\r\n" + message)
    assert ("BODY", "8BITMIME") in list(envelope.mail_params)


def test_submission_wrong_password(dovecot: Dovecot, account: Account) -> None:
    before = len(dovecot.relayed)
    with pytest.raises(SMTPError) as info:
        submit(dovecot, ["r@example.org"], MSG_PLAIN, will_fail=True, auth=(account.name, "wrong"))
    assert info.value.reply is not None and info.value.reply.code == 535
    assert len(dovecot.relayed) == before


@pytest.mark.parametrize("chunking", [False, True], ids=["DATA", "BDAT"])
def test_submission_multi_megabyte_message(
    dovecot: Dovecot, account: Account, chunking: bool
) -> None:
    line = b".%06d " + b"s" * 90 + b"\r\n"
    message = b"Subject: big\r\n\r\n" + b"".join(line % i for i in range(30_000))
    before = len(dovecot.relayed)
    conn, refused = submit(
        dovecot,
        ["r@example.org"],
        message,
        starttls="required",
        auth=(account.name, account.password),
        chunking=chunking,
    )
    assert refused == {}
    assert conn.extensions.chunking
    ((_, data),) = dovecot.relayed[before:]
    assert data.endswith(b"\r\n" + message)


# -- the protomata send-mail command ---------------------------------------------------


def send_mail_command(dovecot: Dovecot, *arguments: str, message: bytes) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "protomata", "send-mail", "--timeout", str(TIMEOUT), *arguments],
        input=message,
        env={**os.environ, "SSL_CERT_FILE": str(dovecot.ca_file)},
        capture_output=True,
        timeout=6 * TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize(
    ("adapter", "mechanism"), [("sync", "CRAM-MD5"), ("asyncio", "LOGIN"), ("trio", "PLAIN")]
)
def test_send_mail_command_submission(
    dovecot: Dovecot, account: Account, adapter: str, mechanism: str
) -> None:
    if adapter == "trio":
        pytest.importorskip("trio")
    if not dovecot.has_submission:
        pytest.skip("dovecot's submission service is not installed (Debian: dovecot-submissiond)")
    message = b"Subject: by the command\r\n\r\n.dot\r\nbody\r\n"
    before = len(dovecot.relayed)
    result = send_mail_command(
        dovecot,
        *("--server", f"127.0.0.1:{dovecot.submission_port}", "--starttls"),
        *("--user", account.name, "--password", account.password, "--auth", mechanism),
        *("--from", "s@example.com", "--to", "r@example.org", "--io", adapter),
        message=message,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ((envelope, data),) = dovecot.relayed[before:]
    assert envelope.rcpt_tos == ["r@example.org"]
    assert data.endswith(b"\r\n" + message)
    (login_line,) = dovecot.log_lines(f"Login: user=<{account.name}>")
    assert f"method={mechanism}," in login_line and ", TLS," in login_line, login_line


@pytest.mark.parametrize("adapter", ["sync", "asyncio", "trio"])
def test_send_mail_command_lmtp(dovecot: Dovecot, account: Account, adapter: str) -> None:
    if adapter == "trio":
        pytest.importorskip("trio")
    result = send_mail_command(
        dovecot,
        *("--server", f"127.0.0.1:{dovecot.lmtp_port}", "--lmtp", "--io", adapter),
        *("--from", "s@example.com", "--to", account.name, "--to", "nosuchuser"),
        message=MSG_LF,
    )
    assert result.returncode == 1, result.stdout + result.stderr  # one recipient refused
    assert b"nosuchuser" in result.stdout + result.stderr
    (stored,) = account.stored()
    assert stored.endswith(MSG_LF)
