"""Pure SMTP and LMTP client operations, run by any adapter (see ``protomata._core._ops``).

Theory of operation
-------------------
A client session is a sequence of small operations over one client
:class:`~protomata.smtp.Connection`, each a generator yielding
:class:`Send`, :class:`Receive` and :class:`StartTLS` requests:

* :func:`open_session` -- the greeting, EHLO (HELO when EHLO is refused) or
  LHLO, and STARTTLS by policy (``"never"``, ``"if-offered"``,
  ``"required"``) followed by a fresh EHLO.  After a ``StartTLS`` request
  the adapter does the handshake and resumes the generator, which calls
  ``conn.start_tls_done()``; the machine has by then thrown away any
  plaintext the server sent after its 220 (STARTTLS injection).
* :func:`authenticate` -- AUTH PLAIN, LOGIN, CRAM-MD5 or XOAUTH2 (RFC 4954).
* :func:`mail_transaction` -- MAIL, RCPT and DATA (or BDAT chunks), with
  the ESMTP parameters the message needs, returning a :class:`SendResult`.
* :func:`rset`, :func:`noop`, :func:`quit`.

:func:`send_mail` strings them together for a one-shot delivery, and
:func:`prepare_message` turns an :class:`email.message.Message` or bytes
into what :func:`mail_transaction` sends; the adapters' ``SMTPClient``
classes are thin runners of these pieces.

What the transaction asks for, from the message and the server's EHLO reply:

* ``SIZE=n`` whenever SIZE is offered; a message over a declared limit is an
  :class:`SMTPError` before MAIL.
* ``BODY=8BITMIME`` when the message has a byte over 127.  Without 8BITMIME
  on the server that is an :class:`SMTPError` before MAIL: RFC 6152 forbids
  sending 8-bit data to such a server, and converting the MIME structure to
  7 bits is the application's job, not ours.
* ``SMTPUTF8`` when an envelope address is not ASCII; without SMTPUTF8 on
  the server that is an :class:`SMTPError` before MAIL (RFC 6531 3.4: the
  address cannot be delivered as is).  It is also requested, when offered,
  for a message whose header section has 8-bit bytes (UTF-8 header fields).
* DSN parameters (RFC 3461: ``RET``, ``ENVID``; ``NOTIFY``, ``ORCPT`` per
  recipient) only when the server offers DSN; otherwise they are left out
  and the server's default notifications apply.
* BDAT (RFC 3030) when the server offers CHUNKING and the caller allows it:
  the message goes raw, in chunks, without dot-stuffing.

Line endings are made canonical (each bare CR or LF becomes CRLF, and the
message ends with CRLF) before the size is counted, so DATA and BDAT carry
the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import re
from collections.abc import Iterable, Sequence
from email.message import Message
from email.utils import getaddresses
from typing import Any, cast

from .._core import NEED_DATA, PAUSED, LocalProtocolError
from .._core._ops import Operation, Receive, Send, StartTLS
from .._core._sasl import cram_md5_response, plain_response, xoauth2_response
from ._connection import Connection, State
from ._events import (
    Auth,
    AuthContinuation,
    Bdat,
    ConnectionClosed,
    Data,
    DataChunk,
    Ehlo,
    EndOfData,
    Helo,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
)
from ._events import StartTLS as StartTLSCommand

__all__ = [
    "AUTH_MECHANISMS",
    "DEFAULT_CHUNK_SIZE",
    "STARTTLS_POLICIES",
    "SMTPError",
    "SMTPRecipientsRefused",
    "SendResult",
    "authenticate",
    "hello",
    "mail_transaction",
    "noop",
    "open_session",
    "prepare_message",
    "quit",
    "read_reply",
    "rset",
    "send_mail",
    "start_tls",
]

#: The values of the ``starttls`` policy.
STARTTLS_POLICIES = ("never", "if-offered", "required")
#: The SASL mechanisms :func:`authenticate` speaks, in the order it prefers them
#: when the caller names none (XOAUTH2 only when given a token).
AUTH_MECHANISMS = ("XOAUTH2", "CRAM-MD5", "PLAIN", "LOGIN")
#: The largest BDAT chunk :func:`mail_transaction` sends by default.
DEFAULT_CHUNK_SIZE = 1024 * 1024

_EIGHT_BIT = re.compile(rb"[\x80-\xff]")
_BARE_LINE_END = re.compile(rb"\r\n|\r|\n")
_CONTROL = re.compile(r"[\r\n\x00]")
_NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})


class SMTPError(Exception):
    """The server refused a step of the conversation; ``reply`` says why.

    ``reply`` is None when the refusal is ours, decided before sending (a
    message over the server's SIZE, an extension the message needs and the
    server lacks) or when the server closed the connection.
    """

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message if reply is None else f"{message}: {reply.code} {reply.text}")
        self.reply = reply


class SMTPRecipientsRefused(SMTPError):
    """Every recipient was refused; ``refused`` maps each address to its reply.

    Raised by :func:`send_mail`; :func:`mail_transaction` returns a
    :class:`SendResult` with nothing accepted instead.
    """

    def __init__(self, refused: dict[str, Reply]) -> None:
        super().__init__("all recipients refused")
        self.refused = refused


class SendResult:
    """What became of each recipient of one mail transaction.

    ``accepted`` maps each recipient the server took responsibility for to
    the reply that said so (its RCPT reply for SMTP; for LMTP the
    per-recipient reply after the message).  ``refused`` maps the others to
    the reply that refused them.  ``reply`` is the server's answer to the end
    of the message (for LMTP the last per-recipient reply), or None when
    no message was sent because every recipient was refused.
    """

    __slots__ = ("accepted", "refused", "reply")

    def __init__(
        self, accepted: dict[str, Reply], refused: dict[str, Reply], reply: Reply | None
    ) -> None:
        self.accepted = accepted
        self.refused = refused
        self.reply = reply

    @property
    def ok(self) -> bool:
        """Whether every recipient was accepted."""
        return not self.refused

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SendResult):
            return NotImplemented
        return (self.accepted, self.refused, self.reply) == (
            other.accepted,
            other.refused,
            other.reply,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SendResult(accepted={sorted(self.accepted)!r}, "
            f"refused={ {k: v.code for k, v in self.refused.items()}!r}, reply={self.reply!r})"
        )


# -- replies ---------------------------------------------------------------------


def read_reply(conn: Connection) -> Operation[Reply]:
    """Receive until the next reply; a closed connection is an :class:`SMTPError`.

    A reply that breaks the protocol raises
    :class:`~protomata.RemoteProtocolError` from the machine.
    """
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data((yield Receive()))
            continue
        if event is PAUSED or isinstance(event, ConnectionClosed):
            raise SMTPError("connection closed by the server")
        assert isinstance(event, Reply)
        if event.code == 421 and conn.state is State.CLOSED:
            raise SMTPError("the server is closing the connection", event)
        return event


def _expect(reply: Reply, ok: Iterable[int], what: str) -> Reply:
    if reply.code not in ok:
        raise SMTPError(f"{what} failed", reply)
    return reply


def _command(conn: Connection, event: Auth | AuthContinuation | Noop | Rset) -> Operation[Reply]:
    yield Send(conn.send(event))
    return (yield from read_reply(conn))


# -- opening a session -------------------------------------------------------------


def hello(conn: Connection, local_hostname: str = "localhost") -> Operation[Reply]:
    """EHLO, or HELO when the server refuses EHLO with a 5xx; LHLO for LMTP.

    Returns the accepted reply; ``conn.extensions`` then lists what the
    server offers (nothing after HELO).
    """
    if conn.lmtp:
        yield Send(conn.send(Lhlo(local_hostname)))
        return _expect((yield from read_reply(conn)), (250,), "LHLO")
    yield Send(conn.send(Ehlo(local_hostname)))
    reply = yield from read_reply(conn)
    if reply.code == 250:
        return reply
    if reply.code < 500:
        raise SMTPError("EHLO failed", reply)
    yield Send(conn.send(Helo(local_hostname)))
    return _expect((yield from read_reply(conn)), (250,), "HELO")


def start_tls(
    conn: Connection, *, local_hostname: str = "localhost", server_hostname: str | None = None
) -> Operation[Reply]:
    """STARTTLS (RFC 3207), the handshake, and EHLO (or LHLO) again; returns its reply.

    Bytes the server sent after its 220 and before the handshake are
    discarded by the machine, never read as a reply.
    """
    yield Send(conn.send(StartTLSCommand()))
    _expect((yield from read_reply(conn)), (220,), "STARTTLS")
    yield StartTLS(server_hostname=server_hostname)
    conn.start_tls_done()
    return (yield from hello(conn, local_hostname))


def open_session(
    conn: Connection,
    *,
    local_hostname: str = "localhost",
    starttls: str = "if-offered",
    server_hostname: str | None = None,
) -> Operation[Reply]:
    """Read the greeting, say EHLO/HELO (LHLO for LMTP) and apply the STARTTLS policy.

    :param starttls: ``"never"``, ``"if-offered"`` or ``"required"`` (an
        :class:`SMTPError` when the server does not offer it).  Ignored once
        ``conn.tls_active``.
    :param server_hostname: the name the adapter checks the certificate
        against (default: the host connected to).
    :returns: the last EHLO/HELO/LHLO reply.
    """
    if starttls not in STARTTLS_POLICIES:
        raise ValueError(f"starttls must be never, if-offered or required, not {starttls!r}")
    _check_text(local_hostname, "local_hostname")
    _expect((yield from read_reply(conn)), (220,), "greeting")
    reply = yield from hello(conn, local_hostname)
    if starttls != "never" and not conn.tls_active:
        if conn.extensions.starttls:
            reply = yield from start_tls(
                conn, local_hostname=local_hostname, server_hostname=server_hostname
            )
        elif starttls == "required":
            raise SMTPError("the server does not offer STARTTLS")
    return reply


# -- AUTH --------------------------------------------------------------------------


def _b64(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def _check_text(value: str, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if _CONTROL.search(value):
        raise LocalProtocolError(f"{what} contains CR, LF or NUL")


def _choose_mechanism(offered: frozenset[str], password: str | None, token: str | None) -> str:
    if not offered:
        raise SMTPError("the server does not offer AUTH")
    usable = ("XOAUTH2",) if password is None else AUTH_MECHANISMS[1:]
    for mechanism in usable:
        if mechanism in offered:
            return mechanism
    raise SMTPError(f"no AUTH mechanism in common (offered: {' '.join(sorted(offered))})")


def _challenge(reply: Reply) -> bytes | None:
    """The decoded 334 challenge, or None when it is not base64."""
    try:
        return base64.b64decode(reply.lines[0].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def authenticate(
    conn: Connection,
    username: str,
    password: str | None = None,
    *,
    mechanism: str | None = None,
    token: str | None = None,
) -> Operation[Reply]:
    """Log in with AUTH (RFC 4954); returns the 235 reply, or raises :class:`SMTPError`.

    :param mechanism: ``"PLAIN"``, ``"LOGIN"``, ``"CRAM-MD5"`` or
        ``"XOAUTH2"``; None picks the strongest one the server offers:
        CRAM-MD5, then PLAIN, then LOGIN with a *password*, XOAUTH2 with a
        *token* (an OAuth 2.0 bearer token).
    :raises LocalProtocolError: CR, LF or NUL in a credential.

    Call it after EHLO, and after STARTTLS unless the link is private:
    PLAIN and LOGIN send the password as is.  A 334 challenge that cannot
    be answered (undecodable, or one more than the mechanism has) cancels
    the exchange with ``*``; XOAUTH2's error challenge is answered with an
    empty line, as the mechanism requires, and the final reply reported.
    """
    if (password is None) == (token is None):
        raise ValueError("give a password or a token (for XOAUTH2), not both")
    _check_text(username, "username")
    secret = password if password is not None else token
    assert secret is not None
    _check_text(secret, "password" if password is not None else "token")
    offered = conn.extensions.auth_mechanisms
    if mechanism is None:
        mechanism = _choose_mechanism(offered, password, token)
    else:
        mechanism = mechanism.upper()
        if mechanism not in AUTH_MECHANISMS:
            raise ValueError(f"unsupported AUTH mechanism {mechanism!r}")
        if mechanism not in offered:
            raise SMTPError(f"the server does not offer AUTH {mechanism}")
    if (mechanism == "XOAUTH2") != (token is not None):
        raise ValueError("XOAUTH2 takes a token; the other mechanisms a password")

    if mechanism == "PLAIN":
        reply = yield from _command(conn, Auth("PLAIN", _b64(plain_response(username, secret))))
        answers: list[str] = []
    elif mechanism == "LOGIN":
        reply = yield from _command(conn, Auth("LOGIN"))
        answers = [_b64(username), _b64(secret)]
    elif mechanism == "CRAM-MD5":
        reply = yield from _command(conn, Auth("CRAM-MD5"))
        answers = []
        if reply.code == 334:
            challenge = _challenge(reply)
            if challenge is not None:
                answer = _b64(cram_md5_response(username, secret, challenge))
                reply = yield from _command(conn, AuthContinuation(answer))
    else:  # XOAUTH2
        if "\x01" in username or "\x01" in secret:
            raise LocalProtocolError("username or token contains \\x01")
        initial = _b64(xoauth2_response(username, secret))
        reply = yield from _command(conn, Auth("XOAUTH2", initial))
        if reply.code == 334:  # an error report (JSON): acknowledge it
            reply = yield from _command(conn, AuthContinuation(""))
        answers = []
    for answer in answers:
        if reply.code != 334:
            break
        reply = yield from _command(conn, AuthContinuation(answer))
    if reply.code == 334:  # a challenge we cannot answer: cancel the exchange
        reply = yield from _command(conn, AuthContinuation("*"))
    return _expect(reply, (235,), f"AUTH {mechanism}")


# -- the message ---------------------------------------------------------------------


def _canonical(message: bytes) -> bytes:
    """*message* with CRLF line endings throughout, ending in CRLF (unless empty)."""
    crlf = message.count(b"\r\n")
    if message.count(b"\n") != crlf or message.count(b"\r") != crlf:
        message = _BARE_LINE_END.sub(b"\r\n", message)
    if message and not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message


def _envelope(message: Message) -> tuple[str, list[str]]:
    """Sender and recipients from the header fields, as smtplib's send_message does."""
    resent = message.get_all("Resent-Date")
    prefix = "Resent-" if resent else ""
    senders = message.get_all(f"{prefix}Sender") or message.get_all(f"{prefix}From") or []
    pairs = getaddresses([str(v) for v in senders])
    if len(pairs) != 1 or not pairs[0][1]:
        raise ValueError(f"the message needs exactly one {prefix}From (or Sender) address")
    fields = [
        str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(f"{prefix}{name}") or []
    ]
    return pairs[0][1], [address for _, address in getaddresses(fields) if address]


def prepare_message(
    message: bytes | bytearray | memoryview | Message,
    from_addr: str | None = None,
    to_addrs: str | Iterable[str] | None = None,
) -> tuple[bytes, str, list[str]]:
    """The wire bytes, sender and recipients for sending *message*.

    Bytes are sent as they are (line endings made CRLF).  An
    :class:`email.message.Message` is serialized with CRLF line ends and
    without its ``Bcc`` fields (the caller's object is left alone); the
    envelope parts not given come from its header fields: ``Sender`` or
    ``From``, and ``To``, ``Cc`` and ``Bcc`` (their ``Resent-`` forms when
    the message is being resent).  Non-ASCII addresses make the header
    fields go out as UTF-8 (for SMTPUTF8) rather than RFC 2047 words.
    """
    if isinstance(message, Message):
        if from_addr is None or to_addrs is None:
            sender, recipients = _envelope(message)
            from_addr = sender if from_addr is None else from_addr
            to_addrs = recipients if to_addrs is None else to_addrs
        addresses = [from_addr, *([to_addrs] if isinstance(to_addrs, str) else to_addrs)]
        if "Bcc" in message or "Resent-Bcc" in message:
            message = copy.copy(message)
            del message["Bcc"]
            del message["Resent-Bcc"]
        policy = message.policy.clone(linesep="\r\n")
        if not all(a.isascii() for a in addresses) and hasattr(policy, "utf8"):
            policy = cast(Any, policy).clone(utf8=True)
        data = message.as_bytes(policy=policy)
    elif isinstance(message, (bytes, bytearray, memoryview)):
        data = bytes(message)
    else:
        raise TypeError(f"expected bytes or an email Message, not {type(message).__name__}")
    if from_addr is None or to_addrs is None:
        raise ValueError("give from_addr and to_addrs with a message in bytes")
    recipients = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
    if not recipients:
        raise ValueError("no recipients")
    return _canonical(data), from_addr, recipients


def _xtext(value: str) -> str:
    """RFC 3461 4: xtext; non-ASCII characters as RFC 6533 ``\\x{HEX}``."""
    out = []
    for char in value:
        code = ord(char)
        if code > 0x7E:
            out.append(f"\\x{{{code:X}}}")
        elif code < 0x21 or char in "+=\\":
            out.append(f"+{code:02X}")
        else:
            out.append(char)
    return "".join(out)


def _notify_value(notify: str | Iterable[str]) -> str:
    values = [notify] if isinstance(notify, str) else list(notify)
    upper = [v.upper() for v in values]
    if upper == ["NEVER"] or (upper and set(upper) <= _NOTIFY_VALUES):
        return ",".join(upper)
    raise ValueError(f"NOTIFY is NEVER or some of SUCCESS, FAILURE, DELAY, not {values!r}")


def _has_key(params: list[tuple[str, str | None]], key: str) -> bool:
    return any(k.upper() == key for k, _ in params)


def _mail_params(
    conn: Connection,
    sender: str,
    recipients: Sequence[str],
    message: bytes,
    *,
    mail_params: Iterable[tuple[str, str | None]],
    ret: str | None,
    envid: str | None,
) -> list[tuple[str, str | None]]:
    """The MAIL parameters *message* needs, or an :class:`SMTPError` when it cannot go."""
    ext = conn.extensions
    params = list(mail_params)
    if not all(a.isascii() for a in (sender, *recipients)):
        if not ext.smtputf8:
            raise SMTPError("an address is not ASCII and the server does not offer SMTPUTF8")
        if not _has_key(params, "SMTPUTF8"):
            params.append(("SMTPUTF8", None))
    eight_bit = _EIGHT_BIT.search(message)
    if eight_bit is not None:
        if not ext.eightbitmime:
            raise SMTPError("the message has 8-bit data and the server does not offer 8BITMIME")
        if not _has_key(params, "BODY"):
            params.append(("BODY", "8BITMIME"))
        head_end = message.find(b"\r\n\r\n")
        in_head = head_end == -1 or eight_bit.start() < head_end
        if in_head and ext.smtputf8 and not _has_key(params, "SMTPUTF8"):
            params.append(("SMTPUTF8", None))
    size = ext.size
    if size and len(message) > size:
        raise SMTPError(f"the message ({len(message)} bytes) exceeds the server's SIZE {size}")
    if size is not None and not _has_key(params, "SIZE"):
        params.append(("SIZE", str(len(message))))
    if ext.dsn:
        if ret is not None:
            params.append(("RET", ret.upper()))
        if envid is not None:
            params.append(("ENVID", _xtext(envid)))
    return params


def _rcpt_params(
    conn: Connection, recipient: str, notify: str | None, orcpt: bool
) -> list[tuple[str, str | None]]:
    if not conn.extensions.dsn:
        return []
    params: list[tuple[str, str | None]] = []
    if notify is not None:
        params.append(("NOTIFY", notify))
    if orcpt:
        kind = "rfc822" if recipient.isascii() else "utf-8"
        params.append(("ORCPT", f"{kind};{_xtext(recipient)}"))
    return params


def _abort(conn: Connection) -> Operation[None]:
    """RSET a transaction left half open by a failure, so the session can go on."""
    if conn.state in (State.MAIL, State.RCPT, State.BDAT):
        with contextlib.suppress(SMTPError):
            yield from _command(conn, Rset())


def mail_transaction(
    conn: Connection,
    sender: str,
    recipients: Sequence[str],
    message: bytes,
    *,
    mail_params: Iterable[tuple[str, str | None]] = (),
    ret: str | None = None,
    envid: str | None = None,
    notify: str | Iterable[str] | None = None,
    orcpt: bool = False,
    chunking: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Operation[SendResult]:
    """Send *message* from *sender* to *recipients* in one mail transaction.

    MAIL, the RCPTs and DATA go out in one write when the server offers
    PIPELINING; the message goes in BDAT chunks of at most *chunk_size*
    bytes when it offers CHUNKING and *chunking* is true.  The MAIL
    parameters are chosen as the module documentation says; *mail_params*
    adds to them (a key given there is not added again).

    :param ret: DSN ``RET``: ``"FULL"`` or ``"HDRS"``.
    :param envid: DSN ``ENVID`` (xtext-encoded here).
    :param notify: DSN ``NOTIFY`` for every recipient: ``"NEVER"`` or some of
        ``"SUCCESS"``, ``"FAILURE"``, ``"DELAY"``.
    :param orcpt: send DSN ``ORCPT`` (the address as given) with each RCPT.
    :returns: a :class:`SendResult`; refused recipients do not raise.
    :raises SMTPError: MAIL refused, the message refused (SMTP) or
        impossible to send as is; the session stays usable (a half-open
        transaction is reset).
    """
    if not recipients:
        raise ValueError("no recipients")
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    message = _canonical(bytes(message))
    notify_value = None if notify is None else _notify_value(notify)
    if ret is not None and ret.upper() not in ("FULL", "HDRS"):
        raise ValueError(f"RET is FULL or HDRS, not {ret!r}")
    if envid is not None:
        _check_text(envid, "envid")
    params = _mail_params(
        conn, sender, recipients, message, mail_params=mail_params, ret=ret, envid=envid
    )
    commands: list[MailFrom | RcptTo | Data] = [MailFrom(sender, params)]
    commands += [RcptTo(r, _rcpt_params(conn, r, notify_value, orcpt)) for r in recipients]
    bdat = chunking and conn.extensions.chunking
    if not bdat:
        commands.append(Data())

    replies: list[Reply] = []
    if conn.extensions.pipelining:
        yield Send(b"".join([conn.send(c) for c in commands]))
        for _ in commands:
            replies.append((yield from read_reply(conn)))  # noqa: PERF401 - a generator
    else:
        for command in commands:
            if isinstance(command, Data) and all(r.code >= 400 for r in replies[1:]):
                break  # nobody accepted: no DATA
            yield Send(conn.send(command))
            replies.append((yield from read_reply(conn)))
            if replies[0].code >= 400:
                break
    mail_reply = replies[0]
    rcpt_replies = replies[1 : 1 + len(recipients)]
    if mail_reply.code >= 400:
        if conn.state is State.BODY:  # a pipelined DATA got 354 anyway
            yield Send(conn.send(EndOfData()))
            yield from read_reply(conn)
        yield from _abort(conn)
        raise SMTPError("MAIL FROM failed", mail_reply)
    accepted: dict[str, Reply] = {}
    refused: dict[str, Reply] = {}
    for recipient, reply in zip(recipients, rcpt_replies, strict=True):
        if reply.code in (250, 251):
            accepted[recipient] = reply
        else:
            refused[recipient] = reply
    if not accepted:
        if conn.state is State.BODY:  # a pipelined DATA got 354 anyway
            yield Send(conn.send(EndOfData()))
            yield from read_reply(conn)
        yield from _abort(conn)
        return SendResult({}, refused, None)

    if bdat:
        final = yield from _send_chunks(conn, message, chunk_size)
    else:
        data_reply = replies[-1]
        if data_reply.code != 354:
            yield from _abort(conn)
            raise SMTPError("DATA failed", data_reply)
        yield Send(conn.send(DataChunk(message)) + conn.send(EndOfData()))
        final = yield from read_reply(conn)
    if conn.lmtp:
        # RFC 2033 4.2: one reply per accepted recipient, in RCPT order.
        for i, recipient in enumerate(list(accepted)):
            if i:
                final = yield from read_reply(conn)
            if final.code == 250:
                accepted[recipient] = final
            else:
                del accepted[recipient]
                refused[recipient] = final
        return SendResult(accepted, refused, final)
    if final.code != 250:
        raise SMTPError("message refused", final)
    return SendResult(accepted, refused, final)


def _send_chunks(conn: Connection, message: bytes, chunk_size: int) -> Operation[Reply]:
    """BDAT the message (RFC 3030); returns the reply to the last chunk.

    With PIPELINING every chunk goes out at once and the replies are read
    afterwards; otherwise each chunk waits for its reply.  A refused chunk
    ends the transaction with an :class:`SMTPError`.
    """
    view = memoryview(message)
    pieces = [bytes(view[i : i + chunk_size]) for i in range(0, len(message), chunk_size)] or [b""]
    last = len(pieces) - 1
    if conn.extensions.pipelining:
        yield Send(b"".join([conn.send(Bdat(p, last=i == last)) for i, p in enumerate(pieces)]))
        replies = []
        for _ in pieces:
            replies.append((yield from read_reply(conn)))  # noqa: PERF401 - a generator
        for reply in replies[:-1]:
            if reply.code != 250:
                raise SMTPError("BDAT failed", reply)
        return replies[-1]
    for i, piece in enumerate(pieces):
        yield Send(conn.send(Bdat(piece, last=i == last)))
        reply = yield from read_reply(conn)
        if i < last and reply.code != 250:
            yield from _abort(conn)
            raise SMTPError("BDAT failed", reply)
    return reply


# -- the rest of a session -------------------------------------------------------------


def rset(conn: Connection) -> Operation[Reply]:
    """RSET: abandon the current transaction; returns the 250 reply."""
    return _expect((yield from _command(conn, Rset())), (250,), "RSET")


def noop(conn: Connection) -> Operation[Reply]:
    """NOOP: check that the session is alive; returns the 250 reply."""
    return _expect((yield from _command(conn, Noop())), (250,), "NOOP")


def quit(conn: Connection) -> Operation[Reply | None]:
    """QUIT; returns the server's reply, or None if it closed without one."""
    if conn.state in (State.CLOSED, State.ERROR):
        return None
    yield Send(conn.send(Quit()))
    try:
        return (yield from read_reply(conn))
    except SMTPError:
        return None


_quit = quit  # send_mail's keyword argument hides the operation


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
    chunking: bool = False,
) -> Operation[dict[str, Reply]]:
    """Deliver *message* from *sender* to *recipients* over a fresh client *conn*.

    :func:`open_session`, :func:`authenticate` when *auth* is
    ``(username, password)``, :func:`mail_transaction` (DATA unless
    *chunking*) and :func:`quit` unless *quit* is false.

    :returns: the refused recipients, each with its reply (as smtplib's
        ``sendmail`` does); refusing all raises :class:`SMTPRecipientsRefused`.
        For LMTP, per-recipient delivery failures after the data are
        included too.
    """
    yield from open_session(
        conn, local_hostname=local_hostname, starttls=starttls, server_hostname=server_hostname
    )
    if auth is not None:
        yield from authenticate(conn, *auth)
    result = yield from mail_transaction(
        conn, sender, recipients, message, mail_params=mail_params, chunking=chunking
    )
    if quit:
        yield from _quit(conn)
    if not result.accepted:
        raise SMTPRecipientsRefused(result.refused)
    return result.refused
