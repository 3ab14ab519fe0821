"""The POP3 server session as a pure operation, and its mailbox model.

:func:`serve_session` runs one POP3 session over a server
:class:`~protomata.pop3.Connection`.  It yields I/O requests
(:mod:`protomata._core._ops`) and asks the adapter for everything that
touches the mail store through :class:`~protomata._core._ops.Call`:

* ``Call("timestamp")`` -> ``str``: a unique ``<...>`` APOP timestamp;
* ``Call("authenticate", user, password)`` -> ``bool``;
* ``Call("apop_secret", user)`` -> ``str | None``: the shared secret of *user*;
* ``Call("open_mailbox", user)`` -> ``list[(uid, size)]`` or ``None`` when the
  mailbox cannot be opened (locked by another session);
* ``Call("read_message", uid)`` -> the message in wire form (CRLF line
  ends, not dot-stuffed), or ``None`` when it vanished;
* ``Call("delete", uids)`` -> ``bool``: remove the messages (UPDATE state);
  ``False`` when some could not be removed;
* ``Call("close_mailbox")``: the UPDATE state is over; release the mailbox
  taken by ``open_mailbox``.  It comes before the reply to QUIT, so a client
  that has read that reply can log in again at once.  (A session that ends
  any other way holds the mailbox until the adapter sees it end.)

Deletion marks live in :class:`Mailbox` and reach the store only when the
client sends QUIT in TRANSACTION; a dropped connection, a timeout or a
graceful server shutdown (:class:`~protomata._core._ops.ServerShutdown`,
answered ``-ERR [SYS/TEMP] server shutting down``) deletes nothing
(RFC 1939 section 6).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

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
from ._apop import apop_digest
from ._connection import Connection
from ._events import (
    Apop,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthContinuation,
    Capa,
    Capabilities,
    Command,
    ConnectionClosed,
    Dele,
    Err,
    Greeting,
    List,
    MultilineData,
    MultilineEnd,
    MultilineStart,
    Noop,
    Ok,
    Pass,
    Quit,
    Reply,
    Retr,
    Rset,
    ScanListing,
    Stat,
    Stls,
    Top,
    Uidl,
    UidListing,
    User,
    Utf8,
)
from ._wire import write_status

__all__ = [
    "Mailbox",
    "SessionSettings",
    "maildir_uid",
    "serve_session",
    "to_crlf",
    "top_of_message",
]

_UID_OK = re.compile(r"[\x21-\x7e]{1,70}")


def maildir_uid(filename: str) -> str:
    """The POP3 unique-id of a Maildir file: its unique name, stable across sessions.

    The unique name is the file name up to the ``:`` that starts the info
    part (``:2,S`` once a message moves to ``cur/``), so a message keeps its
    id when its flags change.  Names that are no valid unique-id (RFC 1939
    allows 1 to 70 characters from 0x21 to 0x7E) are replaced by their SHA-1.
    """
    unique = filename.split(":", 1)[0]
    if _UID_OK.fullmatch(unique):
        return unique
    return hashlib.sha1(unique.encode("utf-8", "surrogateescape")).hexdigest()


def to_crlf(data: bytes) -> bytes:
    """The wire form of a stored message: CRLF line ends, ending with a line end.

    CRLF stays; a bare LF or a bare CR becomes CRLF, and a non-empty message
    that does not end with a line end gets one, exactly as the multi-line
    encoder would do, so the size of the result is the size sent.
    """
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    data = data.replace(b"\n", b"\r\n")
    if data and not data.endswith(b"\n"):
        data += b"\r\n"
    return data


def top_of_message(message: bytes, lines: int) -> bytes:
    """The header, the blank line and the first *lines* body lines of *message* (CRLF)."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return message  # no body: the whole message is header
    head_end = end + 4
    pos = head_end
    for _ in range(lines):
        nxt = message.find(b"\r\n", pos)
        if nxt < 0:
            return message
        pos = nxt + 2
    return message[:pos]


class Mailbox:
    """The messages of a session: numbers, sizes, unique-ids and deletion marks.

    Message numbers start at 1 in the order given.  Marked messages are
    invisible to every command until :meth:`reset`.
    """

    def __init__(self, messages: Iterable[tuple[str, int]]) -> None:
        self.messages: list[tuple[str, int]] = [(str(u), int(s)) for u, s in messages]
        self.deleted: set[int] = set()

    def get(self, msg: int) -> tuple[str, int] | None:
        """``(uid, size)`` of message *msg*, or None if it does not exist or is marked."""
        if msg < 1 or msg > len(self.messages) or msg in self.deleted:
            return None
        return self.messages[msg - 1]

    def live(self) -> list[tuple[int, str, int]]:
        """``(msg, uid, size)`` of every message not marked deleted."""
        return [
            (n, uid, size)
            for n, (uid, size) in enumerate(self.messages, 1)
            if n not in self.deleted
        ]

    def stat(self) -> tuple[int, int]:
        """``(count, total size)`` of the messages not marked deleted."""
        live = self.live()
        return len(live), sum(size for _, _, size in live)

    def delete(self, msg: int) -> bool:
        """Mark *msg* deleted; False if it does not exist or is already marked."""
        if self.get(msg) is None:
            return False
        self.deleted.add(msg)
        return True

    def reset(self) -> None:
        """Unmark every message."""
        self.deleted.clear()

    def deleted_uids(self) -> list[str]:
        """The unique-ids of the marked messages, in message order."""
        return [self.messages[n - 1][0] for n in sorted(self.deleted)]


#: The JSON error a refused XOAUTH2 token gets (the form mail providers use).
_XOAUTH2_ERROR = b'{"status":"401","schemes":"bearer","scope":""}'


@dataclass(frozen=True)
class SessionSettings:
    """What a POP3 session offers.

    :param greeting: the greeting text (the APOP timestamp is appended).
    :param tls: whether STLS is offered (the adapter has a TLS context).
    :param sasl: the SASL mechanisms offered (RFC 5034), of PLAIN, LOGIN,
        CRAM-MD5 (which needs ``Call("apop_secret")`` to give passwords) and
        XOAUTH2 (which asks ``Call("authenticate_xoauth2", user, token)``).
    :param implementation: the CAPA IMPLEMENTATION value (None: not listed).
    """

    greeting: str = "POP3 server ready"
    tls: bool = False
    sasl: tuple[str, ...] = ("PLAIN", "LOGIN", "CRAM-MD5")
    implementation: str | None = "protomata"


class _Session:
    def __init__(self, conn: Connection, settings: SessionSettings) -> None:
        self.conn = conn
        self.settings = settings
        self.user: str | None = None
        self.mailbox: Mailbox | None = None
        self.timestamp = ""

    def capabilities(self) -> Capabilities:
        # UTF8 (RFC 6856): messages go out as stored, whatever their bytes.
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "UTF8"]
        conn = self.conn
        if self.mailbox is None:
            caps.append("USER")
            if self.settings.sasl:
                caps.append("SASL " + " ".join(self.settings.sasl))
            if self.settings.tls and not conn.tls_active:
                caps.append("STLS")
        if self.settings.implementation:
            caps.append(f"IMPLEMENTATION {self.settings.implementation}")
        return Capabilities(caps, "capability list follows")

    def login(self, user: str) -> Operation[Reply]:
        listing = yield Call("open_mailbox", user)
        if listing is None:
            return Err("[IN-USE] mailbox is locked by another session")
        self.mailbox = Mailbox(listing)
        count, size = self.mailbox.stat()
        return Ok(f"{user} has {count} messages ({size} octets)")

    def answer(self, event: Command) -> Operation[list[Reply] | None]:
        """The replies to one command (the session's protocol logic); None ends it."""
        box = self.mailbox
        if isinstance(event, User):
            self.user = event.name
            return [Ok("send PASS")]
        if isinstance(event, Pass):
            user = self.user
            assert user is not None  # the machine only accepts PASS after USER
            ok = yield Call("authenticate", user, event.password)
            if not ok:
                return [Err("[AUTH] invalid user name or password")]
            return [(yield from self.login(user))]
        if isinstance(event, Apop):
            secret = yield Call("apop_secret", event.name)
            expected = apop_digest(self.timestamp, secret) if secret is not None else ""
            given = event.digest.lower().encode("utf-8", "surrogateescape")
            if secret is None or not hmac.compare_digest(expected.encode(), given):
                return [Err("[AUTH] authentication failed")]
            return [(yield from self.login(event.name))]
        if isinstance(event, Auth):
            reply = yield from self.sasl(event)
            return None if reply is None else [reply]
        if isinstance(event, Capa):
            return [self.capabilities()]
        if isinstance(event, Utf8):
            return [Ok("UTF8 enabled")]
        if isinstance(event, Stls):
            if not self.settings.tls:
                return [Err("STLS is not available")]
            return [Ok("begin TLS negotiation")]
        if isinstance(event, Quit):
            if box is None:
                return [Ok("bye")]
            uids = box.deleted_uids()
            removed = True
            if uids:
                removed = yield Call("delete", uids)
            yield Call("close_mailbox")
            if not removed:
                return [Err("[SYS/TEMP] some deleted messages were not removed")]
            return [Ok(f"bye ({len(uids)} messages deleted)")]
        if box is None:
            return [Err(f"{event.keyword or 'command'} is not supported")]
        if isinstance(event, Stat):
            count, size = box.stat()
            return [Ok(f"{count} {size}")]
        if isinstance(event, List):
            if event.msg is None:
                entries = [(n, size) for n, _, size in box.live()]
                count, total = box.stat()
                return [ScanListing(entries, f"{count} messages ({total} octets)")]
            found = box.get(event.msg)
            if found is None:
                return [Err("no such message")]
            return [Ok(f"{event.msg} {found[1]}")]
        if isinstance(event, Uidl):
            if event.msg is None:
                return [UidListing([(n, uid) for n, uid, _ in box.live()], "unique-id listing")]
            found = box.get(event.msg)
            if found is None:
                return [Err("no such message")]
            return [Ok(f"{event.msg} {found[0]}")]
        if isinstance(event, Retr | Top):
            found = box.get(event.msg)
            if found is None:
                return [Err("no such message")]
            data = yield Call("read_message", found[0])
            if data is None:
                return [Err("[SYS/TEMP] the message can no longer be read")]
            if isinstance(event, Top):
                data = top_of_message(data, event.lines)
                text = "top of message follows"
            else:
                text = f"{found[1]} octets"
            return [MultilineStart(text), MultilineData(data), MultilineEnd()]
        if isinstance(event, Dele):
            if not box.delete(event.msg):
                return [Err("no such message")]
            return [Ok(f"message {event.msg} deleted")]
        if isinstance(event, Rset):
            box.reset()
            count, size = box.stat()
            return [Ok(f"maildrop has {count} messages ({size} octets)")]
        if isinstance(event, Noop):
            return [Ok()]
        return [Err(f"{event.keyword or 'command'} is not supported")]

    def sasl_step(self, challenge: bytes) -> Operation[bytes | Reply | None]:
        """Send a SASL *challenge*; the client's answer, an Err if it
        cancelled, or None when the session ends (EOF, timeout, bad input)."""
        yield Send(self.conn.send(AuthChallenge(challenge)))
        reply = yield from self.next_command()
        if isinstance(reply, AuthCancel):
            return Err("authentication cancelled")
        if not isinstance(reply, AuthContinuation):
            return None
        return reply.data

    def sasl(self, event: Auth) -> Operation[Reply | None]:
        mechanism = event.mechanism.upper()
        if mechanism not in self.settings.sasl:
            return Err("unsupported SASL mechanism")
        initial = event.initial_response
        if mechanism == "CRAM-MD5":
            if initial is not None:
                return Err("[AUTH] CRAM-MD5 takes no initial response")
            host = self.timestamp.rpartition("@")[2].rstrip(">") or "localhost"
            challenge = cram_md5_challenge(host)
            answer = yield from self.sasl_step(challenge)
            if not isinstance(answer, bytes):
                return answer
            parsed = parse_cram_md5(answer)
            if parsed is None:
                return Err("[AUTH] malformed CRAM-MD5 response")
            user, digest = parsed
            secret = yield Call("apop_secret", user)
            if not digests_match(secret, challenge, digest):
                return Err("[AUTH] invalid user name or password")
            return (yield from self.login(user))
        if mechanism == "XOAUTH2":
            return (yield from self.sasl_xoauth2(initial))
        if mechanism == "LOGIN":
            name: bytes | Reply | None = initial
            if name is None:
                name = yield from self.sasl_step(b"Username:")
            if not isinstance(name, bytes):
                return name
            secret_bytes = yield from self.sasl_step(b"Password:")
            if not isinstance(secret_bytes, bytes):
                return secret_bytes
            try:
                user, password = name.decode("utf-8"), secret_bytes.decode("utf-8")
            except UnicodeDecodeError:
                return Err("[AUTH] malformed LOGIN response")
        else:  # PLAIN
            response: bytes | Reply | None = initial
            if response is None:
                response = yield from self.sasl_step(b"")
            if not isinstance(response, bytes):
                return response
            credentials = parse_plain(response)
            if credentials is None:
                return Err("[AUTH] malformed PLAIN response")
            authzid, user, password = credentials
            if authzid and authzid != user:
                return Err("[AUTH] proxy authorization is not supported")
        ok = yield Call("authenticate", user, password)
        if not ok:
            return Err("[AUTH] invalid user name or password")
        return (yield from self.login(user))

    def sasl_xoauth2(self, initial: bytes | None) -> Operation[Reply | None]:
        """XOAUTH2: the user and an OAuth 2.0 bearer token, checked by the application.

        A refused token is answered the way mail providers do: a challenge
        carrying a JSON error status, then ``-ERR`` once the client has
        acknowledged it (with an empty line).
        """
        response: bytes | Reply | None = initial
        if response is None:
            response = yield from self.sasl_step(b"")
        if not isinstance(response, bytes):
            return response
        credentials = parse_xoauth2(response)
        if credentials is None:
            return Err("[AUTH] malformed XOAUTH2 response")
        if (yield Call("authenticate_xoauth2", *credentials)):
            return (yield from self.login(credentials[0]))
        answer = yield from self.sasl_step(_XOAUTH2_ERROR)
        if isinstance(answer, Reply) or answer is None:
            return answer
        return Err("[AUTH] invalid user name or token")

    def next_command(self) -> Operation[Command | None]:
        """The next command; None at EOF, on a timeout or a protocol error."""
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                reason = " ".join(str(exc).split())[:200] or "protocol error"
                yield Send(conn.send(Err(reason)))
                return None
            if event is NEED_DATA:
                queued = conn.data_to_send()
                if queued:
                    yield Send(queued)
                try:
                    data = yield Receive(65536, TimeoutKind.IDLE)
                except (TimeoutError, ServerShutdown) as exc:
                    queued = conn.data_to_send()
                    # An unsolicited -ERR the machine has no event for (no command
                    # is owed).  Returning None ends the session before UPDATE:
                    # messages marked deleted stay (RFC 1939 6).
                    reason = (
                        "[SYS/TEMP] server shutting down"
                        if isinstance(exc, ServerShutdown)
                        else "autologout: idle for too long"
                    )
                    yield Send(queued + write_status(False, reason))
                    return None
                conn.receive_data(data)
                continue
            if event is PAUSED:
                queued = conn.data_to_send()
                if queued:
                    yield Send(queued)
                    continue
                if conn.awaiting_tls:
                    yield StartTLS(server_side=True)
                    conn.tls_started()
                    # RFC 2595 section 4: forget what was learned in plaintext.
                    self.user = None
                    continue
                raise RuntimeError("the POP3 machine is paused with nothing to do")
            if isinstance(event, ConnectionClosed):
                return None
            assert isinstance(event, Command)
            return event


def serve_session(conn: Connection, settings: SessionSettings) -> Operation[None]:
    """Serve one POP3 session on the server machine *conn*, then close.

    See the module documentation for the ``Call`` requests it makes.
    """
    session = _Session(conn, settings)
    session.timestamp = yield Call("timestamp")
    yield Send(conn.send(Greeting(f"{settings.greeting} {session.timestamp}")))
    while True:
        command = yield from session.next_command()
        if command is None:
            break
        replies = yield from session.answer(command)
        if replies is None:
            break
        yield Send([conn.send(reply) for reply in replies])
        if isinstance(command, Quit):
            break
    yield Close()
