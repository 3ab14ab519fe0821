"""The blocking SMTP client, :class:`SMTPClient`, and the TLS context helper.

The conversation is the pure operation of :mod:`protomata.smtp._operations`;
this class only connects, does TLS and runs it with :func:`protomata.sync.run`.
"""

from __future__ import annotations

import copy
import ssl
from email.message import Message
from email.utils import getaddresses

from .._core import CLIENT
from ..smtp._connection import Connection as SMTPConnection
from ..smtp._events import Reply
from ..smtp._operations import SMTPError, SMTPRecipientsRefused, send_mail
from ._runner import run
from ._stream import Timeouts, connect_tcp

__all__ = [
    "SMTPClient",
    "SMTPError",
    "SMTPRecipientsRefused",
    "tls_context",
]


def tls_context(verify: bool | ssl.SSLContext = True) -> ssl.SSLContext:
    """A client TLS context: verifying (the default), *verify* itself, or not verifying."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _envelope(message: Message) -> tuple[str, list[str]]:
    """Sender and recipients from the header fields, as smtplib's send_message does."""
    senders = message.get_all("Sender") or message.get_all("From") or []
    pairs = getaddresses([str(v) for v in senders])
    if len(pairs) != 1:
        raise ValueError("the message needs exactly one From (or Sender) address")
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name) or []]
    return pairs[0][1], [address for _, address in getaddresses(fields) if address]


class SMTPClient:
    """Send mail to one SMTP server, a new connection per message.

    :param tls: start TLS on connect (implicit TLS, "SMTPS", port 465).
    :param starttls: ``"never"`` (the default), ``"if-offered"`` or
        ``"required"``.
    :param verify: verify the server certificate and host name (default);
        ``False`` only for testing; or an :class:`ssl.SSLContext` to use.
    :param username: log in with AUTH PLAIN (or LOGIN) as *username* with
        *password* before each message.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        tls: bool = False,
        starttls: str = "never",
        verify: bool | ssl.SSLContext = True,
        timeout: float = 60.0,
        local_hostname: str = "localhost",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if starttls not in ("never", "if-offered", "required"):
            raise ValueError(f"starttls must be never, if-offered or required, not {starttls!r}")
        self.host = host
        self.port = port
        self.tls = tls
        self.starttls = starttls
        self.tls_context = tls_context(verify)
        self.timeouts = Timeouts(timeout, connect=timeout, write=timeout)
        self.local_hostname = local_hostname
        self.auth = None if username is None or password is None else (username, password)

    def send_message(
        self,
        message: bytes | Message,
        from_addr: str | None = None,
        to_addrs: str | list[str] | None = None,
    ) -> dict[str, Reply]:
        """Send *message*; return the refused recipients with their replies.

        *message* is sent as is when it is bytes; an :class:`email.message.Message`
        is serialized with CRLF line ends and without its ``Bcc`` field, and
        gives the sender (``Sender``/``From``) and recipients
        (``To``/``Cc``/``Bcc``) not passed explicitly.  Refusing every
        recipient raises :class:`SMTPRecipientsRefused`; any other refusal
        :class:`SMTPError`.
        """
        if isinstance(message, Message):
            sender, recipients = _envelope(message)
            if "Bcc" in message:
                message = copy.copy(message)
                del message["Bcc"]
            data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
            from_addr = sender if from_addr is None else from_addr
            to_addrs = recipients if to_addrs is None else to_addrs
        else:
            data = bytes(message)
        if from_addr is None or to_addrs is None:
            raise ValueError("give from_addr and to_addrs with a message in bytes")
        recipients = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
        if not recipients:
            raise ValueError("no recipients")
        stream = connect_tcp(
            self.host,
            self.port,
            timeouts=self.timeouts,
            tls_context=self.tls_context,
            tls=self.tls,
        )
        try:
            conn = SMTPConnection(CLIENT)
            op = send_mail(
                conn,
                from_addr,
                recipients,
                data,
                local_hostname=self.local_hostname,
                starttls=self.starttls,
                auth=self.auth,
            )
            return run(op, stream)
        finally:
            stream.close()
