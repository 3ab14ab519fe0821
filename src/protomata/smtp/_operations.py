"""Pure SMTP client operations, run by any adapter (see ``protomata._core._ops``).

:func:`send_mail` is the whole of "deliver one message": greeting, EHLO
(falling back to HELO), optional STARTTLS, MAIL/RCPT/DATA (pipelined when
offered) and QUIT.  It yields :class:`Send`, :class:`Receive` and
:class:`StartTLS` requests; after a ``StartTLS`` the adapter performs the
handshake and resumes the generator, which then calls
``conn.start_tls_done()`` itself.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterable, Sequence

from .._core import NEED_DATA, PAUSED
from .._core._ops import Operation, Receive, Send, StartTLS
from ._connection import Connection, State
from ._events import (
    Auth,
    AuthContinuation,
    ConnectionClosed,
    Data,
    DataChunk,
    Ehlo,
    EndOfData,
    Helo,
    Lhlo,
    MailFrom,
    Quit,
    RcptTo,
    Reply,
)
from ._events import StartTLS as StartTLSCommand

__all__ = ["SMTPError", "SMTPRecipientsRefused", "authenticate", "read_reply", "send_mail"]


class SMTPError(Exception):
    """The server refused a step of the conversation; ``reply`` says why."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message if reply is None else f"{message}: {reply.code} {reply.text}")
        self.reply = reply


class SMTPRecipientsRefused(SMTPError):
    """Every recipient was refused; ``refused`` maps each address to its reply."""

    def __init__(self, refused: dict[str, Reply]) -> None:
        super().__init__("all recipients refused")
        self.refused = refused


def read_reply(conn: Connection) -> Operation[Reply]:
    """Receive until the next reply; a closed connection is an :class:`SMTPError`."""
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data((yield Receive()))
            continue
        if event is PAUSED or isinstance(event, ConnectionClosed):
            raise SMTPError("connection closed by the server")
        assert isinstance(event, Reply)
        return event


def _expect(reply: Reply, ok: Iterable[int], what: str) -> Reply:
    if reply.code not in ok:
        raise SMTPError(f"{what} failed", reply)
    return reply


def _hello(conn: Connection, local_hostname: str) -> Operation[None]:
    if conn.lmtp:
        yield Send(conn.send(Lhlo(local_hostname)))
        _expect((yield from read_reply(conn)), (250,), "LHLO")
        return
    yield Send(conn.send(Ehlo(local_hostname)))
    reply = yield from read_reply(conn)
    if reply.code != 250:
        yield Send(conn.send(Helo(local_hostname)))
        _expect((yield from read_reply(conn)), (250,), "HELO")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def authenticate(conn: Connection, username: str, password: str) -> Operation[None]:
    """AUTH with PLAIN, or LOGIN when only that is offered (RFC 4954); 235 or :class:`SMTPError`.

    Call it after EHLO (and after STARTTLS: the password is sent as is).
    """
    mechanisms = conn.extensions.auth_mechanisms
    if "PLAIN" in mechanisms:
        token = _b64(f"\0{username}\0{password}")
        yield Send(conn.send(Auth("PLAIN", token)))
        reply = yield from read_reply(conn)
    elif "LOGIN" in mechanisms:
        yield Send(conn.send(Auth("LOGIN")))
        reply = yield from read_reply(conn)
        for secret in (username, password):
            if reply.code != 334:
                break
            yield Send(conn.send(AuthContinuation(_b64(secret))))
            reply = yield from read_reply(conn)
    elif not mechanisms:
        raise SMTPError("the server does not offer AUTH")
    else:
        raise SMTPError(f"no AUTH mechanism in common (offered: {' '.join(sorted(mechanisms))})")
    if reply.code == 334:  # a further challenge we cannot answer: cancel the exchange
        yield Send(conn.send(AuthContinuation("*")))
        reply = yield from read_reply(conn)
    _expect(reply, (235,), "AUTH")


def send_mail(
    conn: Connection,
    sender: str,
    recipients: Sequence[str],
    message: bytes,
    *,
    local_hostname: str = "localhost",
    starttls: str = "if-offered",
    server_hostname: str | None = None,
    mail_params: Iterable[tuple[str, str | None]] = (),
    quit: bool = True,
    auth: tuple[str, str] | None = None,
) -> Operation[dict[str, Reply]]:
    """Deliver *message* from *sender* to *recipients* over a fresh client *conn*.

    :param starttls: ``"never"``, ``"if-offered"`` or ``"required"`` (an
        :class:`SMTPError` if the server does not offer it).
    :param server_hostname: the name the adapter checks the certificate for.
    :param auth: ``(username, password)`` to log in with before MAIL
        (:func:`authenticate`).
    :returns: the refused recipients, each with its reply (as smtplib's
        ``sendmail`` does); refusing all raises :class:`SMTPRecipientsRefused`.
        For LMTP, per-recipient delivery failures after the data are
        included too.
    """
    if starttls not in ("never", "if-offered", "required"):
        raise ValueError(f"starttls must be never, if-offered or required, not {starttls!r}")
    _expect((yield from read_reply(conn)), (220,), "greeting")
    yield from _hello(conn, local_hostname)
    if starttls != "never" and not conn.tls_active:
        if conn.extensions.starttls:
            yield Send(conn.send(StartTLSCommand()))
            _expect((yield from read_reply(conn)), (220,), "STARTTLS")
            yield StartTLS(server_hostname=server_hostname)
            conn.start_tls_done()
            yield from _hello(conn, local_hostname)
        elif starttls == "required":
            raise SMTPError("the server does not offer STARTTLS")
    if auth is not None:
        yield from authenticate(conn, *auth)
    params = list(mail_params)
    size = conn.extensions.size
    if size and len(message) > size:
        raise SMTPError(f"message of {len(message)} bytes exceeds the server's SIZE {size}")
    if size is not None and not any(k.upper() == "SIZE" for k, _ in params):
        params.append(("SIZE", str(len(message))))

    # With PIPELINING, MAIL, every RCPT and DATA go out in one write.
    pipelining = conn.extensions.pipelining
    commands = [MailFrom(sender, params), *(RcptTo(r) for r in recipients), Data()]
    replies: list[Reply] = []
    if pipelining:
        yield Send(b"".join(conn.send(c) for c in commands))
        for _ in commands:
            reply = yield from read_reply(conn)
            replies.append(reply)
    else:
        for command in commands:
            if isinstance(command, Data) and all(r.code >= 400 for r in replies[1:]):
                break  # nobody accepted: no DATA
            yield Send(conn.send(command))
            reply = yield from read_reply(conn)
            replies.append(reply)
            if reply.code >= 400 and isinstance(command, MailFrom):
                break
    _expect(replies[0], (250,), "MAIL FROM")
    refused = {
        r: reply
        for r, reply in zip(recipients, replies[1 : 1 + len(recipients)], strict=True)
        if reply.code not in (250, 251)
    }
    if len(refused) == len(recipients):
        if conn.state is State.BODY:  # a pipelined DATA got 354 anyway
            yield Send(conn.send(EndOfData()))
            yield from read_reply(conn)
        if quit:
            yield from _quit(conn)
        raise SMTPRecipientsRefused(refused)
    _expect(replies[-1], (354,), "DATA")
    yield Send(conn.send(DataChunk(message)) + conn.send(EndOfData()))
    if conn.lmtp:
        accepted = [r for r in recipients if r not in refused]
        for recipient in accepted:
            reply = yield from read_reply(conn)
            if reply.code != 250:
                refused[recipient] = reply
    else:
        _expect((yield from read_reply(conn)), (250,), "message")
    if quit:
        yield from _quit(conn)
    return refused


def _quit(conn: Connection) -> Operation[None]:
    yield Send(conn.send(Quit()))
    # The server may close without answering; the mail is done anyway.
    with contextlib.suppress(SMTPError):
        yield from read_reply(conn)
