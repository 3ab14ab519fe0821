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
``Call("authenticate", username, password)``
    True when the credentials are good (only asked when AUTH is offered).

Everything else -- the greeting, the EHLO reply, replies to RSET, NOOP,
VRFY, STARTTLS and AUTH exchanges, 421 on a timeout -- is decided here.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Iterable

from .._core import NEED_DATA, PAUSED, RemoteProtocolError
from .._core._ops import Call, Close, Operation, Receive, Send, StartTLS, TimeoutKind
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

__all__ = ["Envelope", "SessionSettings", "serve_session"]

Params = tuple[tuple[str, str | None], ...]

_MECHANISMS = ("PLAIN", "LOGIN")
_USERNAME_PROMPT = "VXNlcm5hbWU6"  # base64 of "Username:"
_PASSWORD_PROMPT = "UGFzc3dvcmQ6"  # base64 of "Password:"


class SessionSettings:
    """What a server session offers.

    :param hostname: the name in the greeting, the EHLO reply and ``Received:``.
    :param tls_available: offer STARTTLS (the adapter has a TLS context).
    :param auth_available: offer AUTH PLAIN and LOGIN (users are configured).
    :param auth_requires_tls: offer AUTH only once TLS is active.
    :param chunking: offer CHUNKING (BDAT).
    :param smtputf8: offer SMTPUTF8.
    """

    __slots__ = (
        "auth_available",
        "auth_requires_tls",
        "chunking",
        "hostname",
        "smtputf8",
        "tls_available",
    )

    def __init__(
        self,
        hostname: str = "localhost",
        *,
        tls_available: bool = False,
        auth_available: bool = False,
        auth_requires_tls: bool = True,
        chunking: bool = True,
        smtputf8: bool = True,
    ) -> None:
        self.hostname = hostname
        self.tls_available = tls_available
        self.auth_available = auth_available
        self.auth_requires_tls = auth_requires_tls
        self.chunking = chunking
        self.smtputf8 = smtputf8


class Envelope:
    """The mail transaction so far: sender, recipients and session facts.

    ``protocol`` is the RFC 3848 ``with`` keyword (``SMTP``, ``ESMTP``,
    ``ESMTPS``, ``ESMTPA``, ``ESMTPSA``) for trace headers.
    """

    __slots__ = (
        "authenticated_user",
        "esmtp",
        "helo",
        "mail_from",
        "mail_params",
        "peer",
        "rcpt_params",
        "rcpt_tos",
        "tls",
    )

    def __init__(self, peer: tuple[str, int] = ("", 0)) -> None:
        self.peer = peer
        self.helo = ""
        self.esmtp = False
        self.tls = False
        self.authenticated_user: str | None = None
        self.mail_from: str | None = None
        self.mail_params: Params = ()
        self.rcpt_tos: list[str] = []
        self.rcpt_params: list[Params] = []

    @property
    def protocol(self) -> str:
        """The ``with`` keyword of a ``Received:`` header (RFC 3848)."""
        if not self.esmtp:
            return "SMTP"
        suffix = ("S" if self.tls else "") + ("A" if self.authenticated_user else "")
        return "ESMTP" + suffix

    def copy(self) -> Envelope:
        """A snapshot, unaffected by later changes to this envelope."""
        other = Envelope(self.peer)
        other.helo, other.esmtp, other.tls = self.helo, self.esmtp, self.tls
        other.authenticated_user = self.authenticated_user
        other.mail_from, other.mail_params = self.mail_from, self.mail_params
        other.rcpt_tos, other.rcpt_params = list(self.rcpt_tos), list(self.rcpt_params)
        return other

    def reset(self) -> None:
        """Forget the mail transaction (sender and recipients)."""
        self.mail_from = None
        self.mail_params = ()
        self.rcpt_tos = []
        self.rcpt_params = []

    def __repr__(self) -> str:
        return f"Envelope(mail_from={self.mail_from!r}, rcpt_tos={self.rcpt_tos!r})"


def _ok(code: int, status: str, text: str | Iterable[str]) -> Reply:
    return Reply(code, text, status)


def _ehlo_lines(conn: Connection, settings: SessionSettings) -> list[str]:
    lines = [settings.hostname]
    size = conn.max_message_size
    lines.append(f"SIZE {size}" if size is not None else "SIZE")
    lines += ["8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"]
    if settings.smtputf8:
        lines.append("SMTPUTF8")
    if settings.chunking:
        lines.append("CHUNKING")
    if settings.tls_available and not conn.tls_active:
        lines.append("STARTTLS")
    if _auth_offered(conn, settings):
        lines.append("AUTH " + " ".join(_MECHANISMS))
    return lines


def _auth_offered(conn: Connection, settings: SessionSettings) -> bool:
    if not settings.auth_available:
        return False
    return conn.tls_active or not (settings.tls_available and settings.auth_requires_tls)


def _check_mail_params(
    conn: Connection, settings: SessionSettings, params: Params, esmtp: bool
) -> Reply | None:
    """A refusal for unsupported or unacceptable MAIL parameters, or None."""
    for key, value in params:
        name = key.upper()
        if not esmtp:
            return _ok(555, "5.5.4", "Parameters need EHLO")
        if name == "SIZE":
            if value is None or not value.isdigit():
                return _ok(501, "5.5.4", "Bad SIZE parameter")
            limit = conn.max_message_size
            if limit is not None and int(value) > limit:
                return _ok(552, "5.3.4", "Message size exceeds fixed maximum")
        elif name == "BODY":
            if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                return _ok(555, "5.5.4", "Unsupported BODY type")
        elif name == "SMTPUTF8" and settings.smtputf8:
            if value is not None:
                return _ok(501, "5.5.4", "SMTPUTF8 takes no value")
        elif name == "AUTH":
            pass  # RFC 4954 5: accepted and ignored by a final destination
        else:
            return _ok(555, "5.5.4", f"Unsupported parameter {key}")
    return None


def _decode_b64(text: str) -> str | None:
    if text == "=":
        return ""
    try:
        return b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _plain_credentials(decoded: str) -> tuple[str, str] | None:
    parts = decoded.split("\0")
    if len(parts) != 3:
        return None
    _authzid, username, password = parts
    return username, password


class _Session:
    """The per-connection loop; yields I/O requests for :func:`serve_session`."""

    def __init__(self, conn: Connection, settings: SessionSettings, peer: tuple[str, int]) -> None:
        self.conn = conn
        self.settings = settings
        self.envelope = Envelope(peer)
        self.data: list[bytes] = []

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
        yield Send(self.conn.send(Reply(220, f"{settings.hostname} ESMTP protomata ready")))
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
            yield from self.reply(event.reply)
        elif isinstance(event, Ehlo):
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
            yield from self.reply(Reply(354, "End data with <CR><LF>.<CR><LF>"))
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
        refusal = _check_mail_params(self.conn, self.settings, event.params, env.esmtp)
        if refusal is None:
            refusal = yield from self.ask("mail_from", event.address, event.params)
        if refusal is None:
            env.mail_from, env.mail_params = event.address, event.params
            refusal = _ok(250, "2.1.0", "Sender OK")
        yield from self.reply(refusal)

    def rcpt_to(self, event: RcptTo) -> Operation[None]:
        env = self.envelope
        refusal: Reply | None
        if event.params:
            refusal = _ok(555, "5.5.4", "RCPT parameters not supported")
        else:
            refusal = yield from self.ask("rcpt_to", event.address, event.params)
        if refusal is None:
            env.rcpt_tos.append(event.address)
            env.rcpt_params.append(event.params)
            refusal = _ok(250, "2.1.5", "Recipient OK")
        yield from self.reply(refusal)

    def ask(self, name: str, *args: object) -> Operation[Reply | None]:
        """The application's verdict: None accepts; a failure is answered 451."""
        try:
            verdict = yield Call(name, *args)
        except Exception:
            return _ok(451, "4.3.0", "Local error in processing")
        if verdict is not None and not isinstance(verdict, Reply):
            return _ok(451, "4.3.0", "Local error in processing")
        return verdict

    def deliver(self) -> Operation[None]:
        data = b"".join(self.data)
        self.data = []
        refusal = yield from self.ask("message", self.envelope.copy(), data)
        if refusal is None:
            refusal = _ok(250, "2.0.0", "Message accepted for delivery")
        yield from self.reply(refusal)

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

    def challenge(self, prompt: str) -> Operation[str | None]:
        """Send a 334 challenge; the decoded answer or None (reply already sent)."""
        yield from self.reply(Reply(334, prompt))
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

    def auth(self, event: Auth) -> Operation[None]:
        if not _auth_offered(self.conn, self.settings):
            text = (
                "Must issue STARTTLS first" if self.settings.auth_available else "AUTH not offered"
            )
            code, status = (530, "5.7.0") if self.settings.auth_available else (502, "5.5.1")
            yield from self.reply(_ok(code, status, text))
            return
        mechanism = event.mechanism.upper()
        credentials: tuple[str, str] | None
        if mechanism == "PLAIN":
            if event.initial_response is not None:
                decoded = _decode_b64(event.initial_response)
                if decoded is None:
                    yield from self.reply(_ok(501, "5.5.2", "Invalid base64 response"))
                    return
            else:
                decoded = yield from self.challenge("")
                if decoded is None:
                    return
            credentials = _plain_credentials(decoded)
        elif mechanism == "LOGIN":
            if event.initial_response is not None:
                username = _decode_b64(event.initial_response)
                if username is None:
                    yield from self.reply(_ok(501, "5.5.2", "Invalid base64 response"))
                    return
            else:
                username = yield from self.challenge(_USERNAME_PROMPT)
                if username is None:
                    return
            password = yield from self.challenge(_PASSWORD_PROMPT)
            if password is None:
                return
            credentials = (username, password)
        else:
            yield from self.reply(_ok(504, "5.5.4", "Unrecognized authentication type"))
            return
        ok = False
        if credentials is not None:
            ok = bool((yield Call("authenticate", *credentials)))
        if ok:
            assert credentials is not None
            self.envelope.authenticated_user = credentials[0]
            yield from self.reply(_ok(235, "2.7.0", "Authentication successful"))
        else:
            yield from self.reply(_ok(535, "5.7.8", "Authentication credentials invalid"))


def serve_session(
    conn: Connection, settings: SessionSettings, peer: tuple[str, int] = ("", 0)
) -> Operation[None]:
    """Serve one SMTP connection from greeting to close (see the module docs).

    A timeout thrown in while waiting is answered with 421 and the
    connection is closed; a framing violation by the client is answered
    with its hint code (500) and the connection closed.
    """
    session = _Session(conn, settings, peer)
    try:
        yield from session.run()
    except TimeoutError:
        if conn.state not in (State.CLOSED, State.ERROR):
            yield Send(conn.send(_ok(421, "4.4.2", f"{settings.hostname} timeout, closing")))
        yield Close()
    except RemoteProtocolError as exc:
        code = exc.error_status_hint if 400 <= exc.error_status_hint < 600 else 500
        status = f"{str(code)[0]}.5.0"
        yield Send(write_reply(Reply(code, str(exc) or "Protocol error", status)))
        yield Close()
