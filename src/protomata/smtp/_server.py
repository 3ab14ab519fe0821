"""The pure SMTP server session: one connection, every command answered.

:func:`serve_session` drives a server-side :class:`Connection` and asks
the adapter, through :class:`~protomata._core._ops.Call` requests, only
for what the application decides:

``Call("mail_from", address, params)`` and ``Call("rcpt_to", address, params)``
    return a :class:`Reply` to refuse, or None to accept (250).
``Call("message", envelope, data)``
    the application stores the message durably and returns None (250) or a
    :class:`Reply` to refuse it.  *data* is the message as received: dot-
    unstuffed, CRLF line endings.
    In LMTP (a server :class:`Connection` built with ``lmtp=True``) it may
    also answer each recipient on its own: a list with one ``Reply`` or None
    per recipient (in ``envelope.rcpt_tos`` order) or a dict from recipient
    address to ``Reply`` (missing addresses are accepted).  A single Reply
    or None answers every recipient alike (RFC 2033 4.2).
``Call("authenticate", username, password)``
    True when the credentials are good (AUTH PLAIN and LOGIN).
``Call("password", username)``
    the plaintext password of *username*, or None (AUTH CRAM-MD5).
``Call("authenticate_xoauth2", username, token)``
    True when the OAuth 2.0 bearer *token* is good for *username* (XOAUTH2).

Each AUTH mechanism is offered only when :class:`SessionSettings` says the
application can answer its call.  The MAIL and RCPT parameters reach
``mail_from`` and ``rcpt_to`` as sent (DSN values still xtext-encoded); the
:class:`Envelope` given to ``message`` carries the DSN values decoded
(RFC 3461: ``dsn_ret``, ``dsn_envid``, ``rcpt_dsn``).  The session only
records them: generating delivery status notifications is the
application's business.

Everything else -- the greeting, the EHLO/LHLO reply, replies to RSET,
NOOP, VRFY, STARTTLS and AUTH exchanges, 421 on a timeout or when the
server shuts down -- is decided here.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .._core import NEED_DATA, PAUSED, RemoteProtocolError
from .._core._ops import (
    Call,
    Close,
    Operation,
    Receive,
    Send,
    ServerShutdown,
    StartTLS,
    TimeoutKind,
)
from .._core._sasl import (
    cram_md5_challenge,
    digests_match,
    parse_cram_md5,
    parse_plain,
    parse_xoauth2,
)
from ._connection import Connection, State
from ._events import (
    Auth,
    AuthContinuation,
    BadCommand,
    Bdat,
    ConnectionClosed,
    Data,
    DataChunk,
    Ehlo,
    EndOfData,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SMTPEvent,
    Vrfy,
)
from ._events import StartTLS as StartTLSCommand
from ._syntax import write_reply

__all__ = ["Envelope", "RecipientDSN", "SessionSettings", "serve_session", "xtext_decode"]

Params = tuple[tuple[str, str | None], ...]

_USERNAME_PROMPT = "VXNlcm5hbWU6"  # base64 of "Username:"
_PASSWORD_PROMPT = "UGFzc3dvcmQ6"  # base64 of "Password:"
#: RFC 3461 4: xtext, "+XX" (upper-case hex) standing for any octet.
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_XTEXT_ESCAPE = re.compile(r"\+([0-9A-F]{2})")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_NOTIFY_WORDS = frozenset({"SUCCESS", "FAILURE", "DELAY"})
#: RFC 3461 4.4 and 4.2: the longest ENVID and ORCPT values.
_MAX_ENVID = 100
_MAX_ORCPT = 500
#: The XOAUTH2 error challenge: a JSON status, base64-encoded.
_XOAUTH2_ERROR = b64encode(b'{"status":"401","schemes":"bearer","scope":""}').decode()


def xtext_decode(value: str) -> str | None:
    """Decode an RFC 3461 xtext; None when it is malformed or not printable ASCII.

    DSN values (ENVID, ORCPT) must decode to printable US-ASCII (RFC 3461
    4.2, 4.4), so anything else is refused rather than passed on.
    """
    if not _XTEXT.fullmatch(value):
        return None
    decoded = _XTEXT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
    if any(not " " <= ch <= "~" for ch in decoded):
        return None
    return decoded


class RecipientDSN(NamedTuple):
    """The DSN parameters of one recipient (RFC 3461 4.1, 4.2), decoded.

    ``notify`` is None when NOTIFY was not given, else the upper-cased
    keywords (``("NEVER",)`` or some of SUCCESS, FAILURE, DELAY);
    ``orcpt`` is None or ``(address type, original address)``.
    """

    notify: tuple[str, ...] | None = None
    orcpt: tuple[str, str] | None = None


class SessionSettings:
    """What a server session offers.

    :param hostname: the name in the greeting, the EHLO reply and ``Received:``.
    :param tls_available: offer STARTTLS (the adapter has a TLS context).
    :param auth_available: offer AUTH PLAIN and LOGIN (users are configured).
    :param auth_requires_tls: offer AUTH only once TLS is active.
    :param cram_md5: offer AUTH CRAM-MD5 (the application answers
        ``Call("password", user)`` with plaintext passwords).
    :param xoauth2: offer AUTH XOAUTH2 (the application answers
        ``Call("authenticate_xoauth2", user, token)``).
    :param chunking: offer CHUNKING (BDAT).
    :param smtputf8: offer SMTPUTF8.
    :param dsn: offer DSN (RFC 3461): accept and record its parameters.
    :param auth_required: refuse MAIL with ``530 5.7.0`` until the client
        has authenticated (a submission server, RFC 6409).

    Whether the session speaks LMTP is the :class:`Connection`'s ``lmtp``.
    """

    __slots__ = (
        "auth_available",
        "auth_required",
        "auth_requires_tls",
        "chunking",
        "cram_md5",
        "dsn",
        "hostname",
        "smtputf8",
        "tls_available",
        "xoauth2",
    )

    def __init__(
        self,
        hostname: str = "localhost",
        *,
        tls_available: bool = False,
        auth_available: bool = False,
        auth_requires_tls: bool = True,
        cram_md5: bool = False,
        xoauth2: bool = False,
        chunking: bool = True,
        smtputf8: bool = True,
        dsn: bool = True,
        auth_required: bool = False,
    ) -> None:
        if auth_required and not auth_available:
            raise ValueError("auth_required needs auth_available")
        self.auth_required = auth_required
        self.hostname = hostname
        self.tls_available = tls_available
        self.auth_available = auth_available
        self.auth_requires_tls = auth_requires_tls
        self.cram_md5 = cram_md5
        self.xoauth2 = xoauth2
        self.chunking = chunking
        self.smtputf8 = smtputf8
        self.dsn = dsn

    @property
    def mechanisms(self) -> tuple[str, ...]:
        """The SASL mechanisms offered once AUTH may be used."""
        names: list[str] = []
        if self.auth_available:
            names += ["PLAIN", "LOGIN"]
        if self.cram_md5:
            names.append("CRAM-MD5")
        if self.xoauth2:
            names.append("XOAUTH2")
        return tuple(names)


class Envelope:
    """The mail transaction so far: sender, recipients and session facts.

    ``mail_params`` and ``rcpt_params`` are the parameters as sent;
    ``dsn_ret`` (``"FULL"``/``"HDRS"``), ``dsn_envid`` and ``rcpt_dsn`` (one
    :class:`RecipientDSN` per recipient) are the DSN ones decoded.
    ``protocol`` is the RFC 3848 / RFC 6531 ``with`` keyword (``SMTP``,
    ``ESMTPSA``, ``LMTP``, ``UTF8SMTPS`` ...) for trace headers.
    """

    __slots__ = (
        "authenticated_user",
        "dsn_envid",
        "dsn_ret",
        "esmtp",
        "helo",
        "lmtp",
        "mail_from",
        "mail_params",
        "peer",
        "rcpt_dsn",
        "rcpt_params",
        "rcpt_tos",
        "smtputf8",
        "tls",
    )

    def __init__(self, peer: tuple[str, int] = ("", 0)) -> None:
        self.peer = peer
        self.helo = ""
        self.esmtp = False
        self.lmtp = False
        self.tls = False
        self.authenticated_user: str | None = None
        self.mail_from: str | None = None
        self.mail_params: Params = ()
        self.smtputf8 = False
        self.dsn_ret: str | None = None
        self.dsn_envid: str | None = None
        self.rcpt_tos: list[str] = []
        self.rcpt_params: list[Params] = []
        self.rcpt_dsn: list[RecipientDSN] = []

    @property
    def protocol(self) -> str:
        """The ``with`` keyword of a ``Received:`` header (RFC 3848, RFC 6531)."""
        if self.lmtp:
            base = "LMTP"
        elif self.esmtp:
            base = "SMTP" if self.smtputf8 else "ESMTP"
        else:
            return "SMTP"
        suffix = ("S" if self.tls else "") + ("A" if self.authenticated_user else "")
        return ("UTF8" if self.smtputf8 else "") + base + suffix

    def copy(self) -> Envelope:
        """A snapshot, unaffected by later changes to this envelope."""
        other = Envelope(self.peer)
        other.helo, other.esmtp, other.lmtp, other.tls = self.helo, self.esmtp, self.lmtp, self.tls
        other.authenticated_user = self.authenticated_user
        other.mail_from, other.mail_params = self.mail_from, self.mail_params
        other.smtputf8, other.dsn_ret, other.dsn_envid = self.smtputf8, self.dsn_ret, self.dsn_envid
        other.rcpt_tos, other.rcpt_params = list(self.rcpt_tos), list(self.rcpt_params)
        other.rcpt_dsn = list(self.rcpt_dsn)
        return other

    def reset(self) -> None:
        """Forget the mail transaction (sender and recipients)."""
        self.mail_from = None
        self.mail_params = ()
        self.smtputf8 = False
        self.dsn_ret = self.dsn_envid = None
        self.rcpt_tos = []
        self.rcpt_params = []
        self.rcpt_dsn = []

    def __repr__(self) -> str:
        return f"Envelope(mail_from={self.mail_from!r}, rcpt_tos={self.rcpt_tos!r})"


def _ok(code: int, status: str, text: str | Iterable[str]) -> Reply:
    return Reply(code, text, status)


# The replies of every message, built once (replies are immutable).
_SENDER_OK = _ok(250, "2.1.0", "Sender OK")
_RECIPIENT_OK = _ok(250, "2.1.5", "Recipient OK")
_GO_AHEAD = Reply(354, "End data with <CR><LF>.<CR><LF>")
_ACCEPTED = _ok(250, "2.0.0", "Message accepted for delivery")


def _ehlo_lines(conn: Connection, settings: SessionSettings) -> list[str]:
    lines = [settings.hostname]
    size = conn.max_message_size
    lines.append(f"SIZE {size}" if size is not None else "SIZE")
    lines += ["8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"]
    if settings.smtputf8:
        lines.append("SMTPUTF8")
    if settings.chunking:
        lines.append("CHUNKING")
    if settings.dsn:
        lines.append("DSN")
    if settings.tls_available and not conn.tls_active:
        lines.append("STARTTLS")
    if _auth_offered(conn, settings):
        lines.append("AUTH " + " ".join(settings.mechanisms))
    return lines


def _auth_offered(conn: Connection, settings: SessionSettings) -> bool:
    if not settings.mechanisms:
        return False
    return conn.tls_active or not (settings.tls_available and settings.auth_requires_tls)


class _MailFacts(NamedTuple):
    """What the MAIL parameters say, once they are all acceptable."""

    smtputf8: bool
    ret: str | None
    envid: str | None


def _bad_param(what: str) -> Reply:
    return _ok(501, "5.5.4", f"Bad {what} parameter")


def _check_mail_params(
    conn: Connection, settings: SessionSettings, params: Params, esmtp: bool
) -> Reply | _MailFacts:
    """A refusal for unsupported or unacceptable MAIL parameters, or their facts."""
    seen: set[str] = set()
    smtputf8 = False
    ret = envid = None
    for key, value in params:
        name = key.upper()
        if not esmtp:
            return _ok(555, "5.5.4", "Parameters need EHLO")
        if name in seen:
            return _ok(501, "5.5.4", f"Duplicate {name} parameter")
        seen.add(name)
        if name == "SIZE":
            if value is None or not value.isdigit():
                return _bad_param("SIZE")
            limit = conn.max_message_size
            if limit is not None and int(value) > limit:
                return _ok(552, "5.3.4", "Message size exceeds fixed maximum")
        elif name == "BODY":
            if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                return _ok(555, "5.5.4", "Unsupported BODY type")
        elif name == "SMTPUTF8" and settings.smtputf8:
            if value is not None:
                return _ok(501, "5.5.4", "SMTPUTF8 takes no value")
            smtputf8 = True
        elif name == "RET" and settings.dsn:
            if value is None or value.upper() not in ("FULL", "HDRS"):
                return _bad_param("RET")
            ret = value.upper()
        elif name == "ENVID" and settings.dsn:
            envid = xtext_decode(value) if value is not None else None
            if envid is None or len(envid) > _MAX_ENVID:
                return _bad_param("ENVID")
        elif name == "AUTH":
            pass  # RFC 4954 5: accepted and ignored by a final destination
        else:
            return _ok(555, "5.5.4", f"Unsupported parameter {key}")
    return _MailFacts(smtputf8, ret, envid)


def _notify(value: str | None) -> tuple[str, ...] | None:
    """The NOTIFY keywords of *value*, or None when it breaks RFC 3461 4.1."""
    if value is None:
        return None
    words = tuple(value.upper().split(","))
    if words == ("NEVER",):
        return words
    if len(set(words)) != len(words) or not _NOTIFY_WORDS.issuperset(words):
        return None
    return words


#: RFC 6533 escapes of a UTF-8 address in ORCPT: ``\x{HHHH}``
_UNICODE_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
#: what an address may never contain, however it was encoded (surrogates
#: stand for bytes that were not UTF-8)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")
_XTEXT_BYTE = re.compile(rb"\+([0-9A-F]{2})")


def _orcpt_address(kind: str, encoded: str) -> str | None:
    r"""The original recipient of an ORCPT value, decoded; None when malformed.

    RFC 3461 xtext is the classic form.  With SMTPUTF8 more are met: the
    RFC 6533 ``utf-8`` type (raw UTF-8, and ``\x{HHHH}`` escapes), and
    ``+HH`` escapes spelling the bytes of a UTF-8 address (postfix relays
    that way).  ORCPT only informs a DSN, so each is accepted when it
    decodes to text without control characters.
    """
    utf8_type = kind.lower() == "utf-8"
    address = encoded
    if _XTEXT.fullmatch(encoded):  # ASCII, so encode() cannot fail
        data = _XTEXT_BYTE.sub(lambda m: bytes([int(m.group(1), 16)]), encoded.encode())
        try:
            address = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    elif not utf8_type:  # raw text (RFC 6533 unitext) only in the utf-8 type
        return None
    if utf8_type:
        try:
            address = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), address)
        except (ValueError, OverflowError):  # beyond U+10FFFF
            return None
    if not address or _CONTROL.search(address):
        return None
    return address


def _orcpt(value: str | None) -> tuple[str, str] | None:
    """``(addr-type, address)`` of an ORCPT value, or None when malformed."""
    if value is None or len(value) > _MAX_ORCPT:
        return None
    kind, sep, encoded = value.partition(";")
    if not sep or not _ATOM.fullmatch(kind):
        return None
    address = _orcpt_address(kind, encoded)
    return None if address is None else (kind, address)


def _check_rcpt_params(settings: SessionSettings, params: Params) -> Reply | RecipientDSN:
    """A refusal for unacceptable RCPT parameters, or the recipient's DSN facts."""
    seen: set[str] = set()
    notify: tuple[str, ...] | None = None
    orcpt: tuple[str, str] | None = None
    for key, value in params:
        name = key.upper()
        if not settings.dsn or name not in ("NOTIFY", "ORCPT"):
            return _ok(555, "5.5.4", f"Unsupported parameter {key}")
        if name in seen:
            return _ok(501, "5.5.4", f"Duplicate {name} parameter")
        seen.add(name)
        if name == "NOTIFY":
            notify = _notify(value)
            if notify is None:
                return _bad_param("NOTIFY")
        else:
            orcpt = _orcpt(value)
            if orcpt is None:
                return _bad_param("ORCPT")
    return RecipientDSN(notify, orcpt)


def _decode_b64(text: str) -> bytes | None:
    if text == "=":
        return b""
    try:
        return b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _per_recipient(verdict: Any, rcpt_tos: Sequence[str]) -> list[Reply | None] | None:
    """One LMTP verdict per recipient from what ``message`` returned; None if invalid."""
    if verdict is None or isinstance(verdict, Reply):
        return [verdict] * len(rcpt_tos)
    answers: list[Any]
    if isinstance(verdict, Mapping):
        answers = [verdict.get(rcpt) for rcpt in rcpt_tos]
    elif isinstance(verdict, (list, tuple)) and len(verdict) == len(rcpt_tos):
        answers = list(verdict)
    else:
        return None
    if not all(a is None or isinstance(a, Reply) for a in answers):
        return None
    return answers


class _Session:
    """The per-connection loop; yields I/O requests for :func:`serve_session`."""

    def __init__(self, conn: Connection, settings: SessionSettings, peer: tuple[str, int]) -> None:
        self.conn = conn
        self.settings = settings
        self.envelope = Envelope(peer)
        self.envelope.lmtp = conn.lmtp
        self.envelope.tls = conn.tls_active  # implicit TLS (SMTPS): encrypted from the start
        self.data: list[bytes] = []
        # AUTH mechanism name -> the exchange that yields (user, verdict).
        self.mechanisms: dict[str, Callable[[Auth], Operation[tuple[str, bool] | Reply | None]]]
        self.mechanisms = {
            "PLAIN": self.auth_plain,
            "LOGIN": self.auth_login,
            "CRAM-MD5": self.auth_cram_md5,
            "XOAUTH2": self.auth_xoauth2,
        }

    def reply(self, reply: Reply) -> Operation[None]:
        yield Send(self.conn.send(reply))
        if self.conn.state not in (State.MAIL, State.RCPT, State.BODY, State.BDAT):
            self.envelope.reset()
            self.data = []

    def next_event(self) -> Operation[SMTPEvent]:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                waiting = (
                    TimeoutKind.READ
                    if conn.state in (State.BODY, State.BDAT)
                    else (TimeoutKind.IDLE)
                )
                conn.receive_data((yield Receive(65536, waiting)))
                continue
            if event is PAUSED:
                raise RuntimeError("the SMTP machine is paused with no reply owed")
            assert isinstance(event, SMTPEvent)
            return event

    def run(self) -> Operation[None]:
        settings = self.settings
        kind = "LMTP" if self.conn.lmtp else "ESMTP"
        yield Send(self.conn.send(Reply(220, f"{settings.hostname} {kind} protomata ready")))
        while True:
            event = yield from self.next_event()
            if isinstance(event, ConnectionClosed):
                yield Close()
                return
            if isinstance(event, Quit):
                yield from self.reply(_ok(221, "2.0.0", f"{settings.hostname} closing connection"))
                yield Close()
                return
            done = yield from self.dispatch(event)
            if done:
                yield Close()
                return

    def dispatch(self, event: SMTPEvent) -> Operation[bool]:
        """Answer one command; True when the session must end."""
        env = self.envelope
        conn = self.conn
        if isinstance(event, BadCommand):
            if conn.lmtp and conn.state is State.BODY:
                # The refusal of a whole DATA body (552): once per recipient.
                for _ in range(len(env.rcpt_tos)):
                    yield from self.reply(event.reply)
            else:
                yield from self.reply(event.reply)
        elif isinstance(event, (Ehlo, Lhlo)):
            env.helo, env.esmtp = event.domain, True
            yield from self.reply(Reply(250, _ehlo_lines(conn, self.settings)))
        elif isinstance(event, Helo):
            env.helo, env.esmtp = event.domain, False
            yield from self.reply(Reply(250, self.settings.hostname))
        elif isinstance(event, MailFrom):
            yield from self.mail_from(event)
        elif isinstance(event, RcptTo):
            yield from self.rcpt_to(event)
        elif isinstance(event, Data):
            self.data = []
            yield from self.reply(_GO_AHEAD)
        elif isinstance(event, DataChunk):
            self.data.append(event.data)
        elif isinstance(event, EndOfData):
            yield from self.deliver()
        elif isinstance(event, Bdat):
            self.data.append(event.chunk)
            if event.last:
                yield from self.deliver()
            else:
                yield from self.reply(_ok(250, "2.0.0", f"{len(event.chunk)} octets received"))
        elif isinstance(event, (Rset, Noop)):
            yield from self.reply(_ok(250, "2.0.0", "OK"))
        elif isinstance(event, Help):
            yield from self.reply(_ok(214, "2.0.0", "See RFC 5321"))
        elif isinstance(event, Vrfy):
            yield from self.reply(_ok(252, "2.1.5", "Cannot VRFY user, but will accept message"))
        elif isinstance(event, Expn):
            yield from self.reply(_ok(502, "5.5.1", "EXPN not implemented"))
        elif isinstance(event, StartTLSCommand):
            return (yield from self.start_tls())
        elif isinstance(event, Auth):
            yield from self.auth(event)
        elif isinstance(event, AuthContinuation):
            # Only reachable when a 334 was answered outside auth(): refuse.
            yield from self.reply(_ok(501, "5.5.2", "Unexpected AUTH response"))
        else:
            yield from self.reply(_ok(502, "5.5.1", "Command not implemented"))
        return False

    def mail_from(self, event: MailFrom) -> Operation[None]:
        env = self.envelope
        if self.settings.auth_required and env.authenticated_user is None:
            yield from self.reply(_ok(530, "5.7.0", "Authentication required"))
            return
        facts = _check_mail_params(self.conn, self.settings, event.params, env.esmtp)
        refusal = facts if isinstance(facts, Reply) else None
        if refusal is None:
            refusal = yield from self.ask("mail_from", event.address, event.params)
        if refusal is None:
            assert isinstance(facts, _MailFacts)
            env.mail_from, env.mail_params = event.address, event.params
            env.smtputf8, env.dsn_ret, env.dsn_envid = facts
            refusal = _SENDER_OK
        yield from self.reply(refusal)

    def rcpt_to(self, event: RcptTo) -> Operation[None]:
        env = self.envelope
        dsn = _check_rcpt_params(self.settings, event.params)
        refusal = dsn if isinstance(dsn, Reply) else None
        if refusal is None:
            refusal = yield from self.ask("rcpt_to", event.address, event.params)
        if refusal is None:
            assert isinstance(dsn, RecipientDSN)
            env.rcpt_tos.append(event.address)
            env.rcpt_params.append(event.params)
            env.rcpt_dsn.append(dsn)
            refusal = _RECIPIENT_OK
        yield from self.reply(refusal)

    def call(self, name: str, *args: object) -> Operation[Any]:
        """The application's raw answer; a :class:`_Failed` when it raised."""
        try:
            return (yield Call(name, *args))
        except Exception:
            return _FAILED

    def ask(self, name: str, *args: object) -> Operation[Reply | None]:
        """The application's verdict: None accepts; a failure is answered 451."""
        verdict = yield from self.call(name, *args)
        if verdict is not None and not isinstance(verdict, Reply):
            return _LOCAL_ERROR
        return verdict

    def deliver(self) -> Operation[None]:
        data = b"".join(self.data)
        self.data = []
        rcpt_tos = list(self.envelope.rcpt_tos)
        if not self.conn.lmtp:
            refusal = yield from self.ask("message", self.envelope.copy(), data)
            yield from self.reply(refusal or _ACCEPTED)
            return
        verdict = yield from self.call("message", self.envelope.copy(), data)
        answers = _per_recipient(verdict, rcpt_tos)
        if answers is None:
            answers = [_LOCAL_ERROR] * len(rcpt_tos)
        for rcpt, answer in zip(rcpt_tos, answers, strict=True):
            yield from self.reply(answer or _ok(250, "2.0.0", f"<{rcpt}> delivered"))

    def start_tls(self) -> Operation[bool]:
        if not self.settings.tls_available:
            yield from self.reply(_ok(502, "5.5.1", "STARTTLS not offered"))
            return False
        yield from self.reply(_ok(220, "2.0.0", "Ready to start TLS"))
        try:
            yield StartTLS(server_side=True)
        except Exception:
            return True  # the handshake failed: nothing more can be said
        self.conn.start_tls_done()
        self.envelope.tls = True
        self.envelope.helo, self.envelope.esmtp = "", False
        self.envelope.authenticated_user = None
        return False

    def challenge(self, prompt: str) -> Operation[bytes | None]:
        """Send a 334 challenge; the decoded answer or None (reply already sent)."""
        data = self.conn.send(Reply(334, prompt))
        # RFC 4954 4: "334" SP [base64]: the space stays when the challenge is empty.
        yield Send(data if prompt else b"334 \r\n")
        event = yield from self.next_event()
        if isinstance(event, BadCommand):
            yield from self.reply(event.reply)
            return None
        if not isinstance(event, AuthContinuation):
            raise RemoteProtocolError("expected an AUTH response", 501)
        if event.data == "*":
            yield from self.reply(_ok(501, "5.0.0", "Authentication cancelled"))
            return None
        decoded = _decode_b64(event.data)
        if decoded is None:
            yield from self.reply(_ok(501, "5.5.2", "Invalid base64 response"))
        return decoded

    def first_response(self, event: Auth, prompt: str = "") -> Operation[bytes | None]:
        """The client's first response: the initial one or the answer to *prompt*."""
        if event.initial_response is None:
            return (yield from self.challenge(prompt))
        decoded = _decode_b64(event.initial_response)
        if decoded is None:
            yield from self.reply(_ok(501, "5.5.2", "Invalid base64 response"))
        return decoded

    def auth(self, event: Auth) -> Operation[None]:
        settings = self.settings
        if not _auth_offered(self.conn, settings):
            if settings.mechanisms:
                yield from self.reply(_ok(530, "5.7.0", "Must issue STARTTLS first"))
            else:
                yield from self.reply(_ok(502, "5.5.1", "AUTH not offered"))
            return
        mechanism = event.mechanism.upper()
        exchange = self.mechanisms.get(mechanism)
        if exchange is None or mechanism not in settings.mechanisms:
            yield from self.reply(_ok(504, "5.5.4", "Unrecognized authentication type"))
            return
        outcome = yield from exchange(event)
        if outcome is None:
            return  # the exchange ended with its own reply
        if isinstance(outcome, Reply):
            yield from self.reply(outcome)
            return
        user, ok = outcome
        if ok:
            self.envelope.authenticated_user = user
            yield from self.reply(_ok(235, "2.7.0", "Authentication successful"))
        else:
            yield from self.reply(_AUTH_FAILED)

    def verdict(self, name: str, *args: object) -> Operation[bool | Reply]:
        """Ask the application about credentials; 454 when it failed (RFC 4954 6)."""
        answer = yield from self.call(name, *args)
        if answer is _FAILED:
            return _ok(454, "4.7.0", "Temporary authentication failure")
        return bool(answer)

    def auth_plain(self, event: Auth) -> Operation[tuple[str, bool] | Reply | None]:
        decoded = yield from self.first_response(event)
        if decoded is None:
            return None
        credentials = parse_plain(decoded)
        if credentials is None:
            return _AUTH_FAILED
        authzid, username, password = credentials
        if authzid and authzid != username:  # RFC 4616: no acting for another user
            return _AUTH_FAILED
        ok = yield from self.verdict("authenticate", username, password)
        return ok if isinstance(ok, Reply) else (username, ok)

    def auth_login(self, event: Auth) -> Operation[tuple[str, bool] | Reply | None]:
        name = yield from self.first_response(event, _USERNAME_PROMPT)
        if name is None:
            return None
        secret = yield from self.challenge(_PASSWORD_PROMPT)
        if secret is None:
            return None
        try:
            username, password = name.decode("utf-8"), secret.decode("utf-8")
        except UnicodeDecodeError:
            return _AUTH_FAILED
        ok = yield from self.verdict("authenticate", username, password)
        return ok if isinstance(ok, Reply) else (username, ok)

    def auth_cram_md5(self, event: Auth) -> Operation[tuple[str, bool] | Reply | None]:
        if event.initial_response is not None:
            return _ok(501, "5.5.2", "CRAM-MD5 takes no initial response")
        # RFC 2195: a unique msg-id-like challenge.
        challenge = cram_md5_challenge(self.settings.hostname)
        answer = yield from self.challenge(b64encode(challenge).decode())
        if answer is None:
            return None
        parsed = parse_cram_md5(answer)
        if parsed is None:
            return _AUTH_FAILED
        username, digest = parsed
        password = yield from self.call("password", username)
        if password is _FAILED:
            return _ok(454, "4.7.0", "Temporary authentication failure")
        secret = password if isinstance(password, str) else None
        return username, digests_match(secret, challenge, digest)

    def auth_xoauth2(self, event: Auth) -> Operation[tuple[str, bool] | Reply | None]:
        decoded = yield from self.first_response(event)
        if decoded is None:
            return None
        credentials = parse_xoauth2(decoded)
        ok: bool | Reply = False
        if credentials is not None:
            ok = yield from self.verdict("authenticate_xoauth2", *credentials)
            if isinstance(ok, Reply):
                return ok
            if ok:
                return credentials[0], True
        # The error travels in a 334 challenge; the client's (empty) answer
        # ends the exchange, which then fails.
        answer = yield from self.challenge(_XOAUTH2_ERROR)
        return None if answer is None else _AUTH_FAILED


class _Failed:
    """The marker of an application call that raised."""

    __slots__ = ()


_FAILED = _Failed()
_LOCAL_ERROR = _ok(451, "4.3.0", "Local error in processing")
_AUTH_FAILED = _ok(535, "5.7.8", "Authentication credentials invalid")


def serve_session(
    conn: Connection, settings: SessionSettings, peer: tuple[str, int] = ("", 0)
) -> Operation[None]:
    """Serve one SMTP (or, for an ``lmtp`` *conn*, LMTP) connection from greeting to close.

    See the module docs for the calls.  A timeout thrown in while waiting
    is answered with ``421 4.4.2`` and a :class:`ServerShutdown` (the server
    drains) with ``421 4.3.2``, and the connection is closed; a framing
    violation by the client is answered with its hint code (500) and the
    connection closed.
    """
    session = _Session(conn, settings, peer)
    try:
        yield from session.run()
    except (TimeoutError, ServerShutdown) as exc:
        if conn.state not in (State.CLOSED, State.ERROR):
            host = settings.hostname
            goodbye = (
                _ok(421, "4.3.2", f"{host} Service shutting down")
                if isinstance(exc, ServerShutdown)
                else _ok(421, "4.4.2", f"{host} timeout, closing")
            )
            yield Send(conn.send(goodbye))
        yield Close()
    except RemoteProtocolError as exc:
        code = exc.error_status_hint if 400 <= exc.error_status_hint < 600 else 500
        status = f"{str(code)[0]}.5.0"
        yield Send(write_reply(Reply(code, str(exc) or "Protocol error", status)))
        yield Close()
