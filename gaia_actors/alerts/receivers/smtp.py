"""E-mail over SMTP: a plain-text message with the notification's facts.

``security`` is ``starttls`` (connect in the clear, upgrade with STARTTLS before anything
else, refuse a server that does not offer it), ``tls`` (implicit TLS from the first byte,
port 465) or ``none``. The server's certificate is checked against the system's CAs (or
the given ``ssl_context``). A login follows the TLS, never precedes it.

The subject is the notification's title; the ``Message-ID`` is derived from the
notification's id, so a message sent again after a lost answer is recognisably the same
(and ``X-Gaia-Notification-Id`` carries the id itself). ``Auto-Submitted: auto-generated``
(RFC 3834) keeps vacation responders from answering an alert.

``timeout`` bounds the whole exchange, not each step: smtplib's own timeout applies to every
read, so a server that answers a byte at a time would hold it for ever; a timer shuts the
socket down when the time is up. The last reply (to the message's data) is the answer; any
other reply fails the send with its code, and a 5xx one is permanent.
"""

from __future__ import annotations

import contextlib
import functools
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

from gaia_actors.alerts.model import Notification
from gaia_actors.alerts.receivers.base import Delivery, DeliveryFailed, Redactor, excerpt
from gaia_actors.alerts.receivers.text import plain_text

Security = Literal["starttls", "tls", "none"]
PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}


class SmtpReceiver:
    """Sends each notification as one e-mail from ``sender`` to every address in ``to``."""

    kind = "smtp"

    def __init__(
        self,
        name: str,
        host: str,
        *,
        sender: str,
        to: Sequence[str],
        port: int = 0,
        security: Security = "starttls",
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not to:
            raise ValueError(f"receiver {name!r}: no recipient in 'to'")
        self.name = name
        self.timeout = timeout
        self._host = host
        self._port = port or PORTS[security]
        self._security = security
        self._login = (username, password) if username else None
        self._sender = sender
        self._to = tuple(to)
        self._context = ssl_context or ssl.create_default_context()
        self._redact = Redactor([password])

    @property
    def target(self) -> str:
        return f"{self._host}:{self._port}"

    def __repr__(self) -> str:
        return f"SmtpReceiver(name={self.name!r}, target={self.target!r})"

    def send(self, notification: Notification) -> Delivery:
        started = time.monotonic()
        email = self.message(notification)
        try:
            with self._session(started) as smtp:
                answer = self._transmit(smtp, email)
        except smtplib.SMTPResponseException as exc:
            raise self._failed(_reply(exc.smtp_code, exc.smtp_error), exc.smtp_code) from None
        except smtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(
                f"{rcpt}: {_reply(*reply)}" for rcpt, reply in exc.recipients.items()
            )
            codes = [code for code, _ in exc.recipients.values()]
            raise self._failed(f"every recipient refused: {refused}", min(codes)) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise self._failed(self._broken(exc, started)) from None
        return Delivery(answer, time.monotonic() - started)

    def close(self) -> None:
        """Nothing is kept between sends: each is a connection of its own."""

    def message(self, notification: Notification) -> EmailMessage:
        """The e-mail sent for ``notification``."""
        email = EmailMessage()
        email["Subject"] = notification.title
        email["From"] = self._sender
        email["To"] = ", ".join(self._to)
        email["Date"] = formatdate(notification.created, usegmt=True)
        domain = self._sender.rpartition("@")[2] or "gaia-actors"
        email["Message-ID"] = f"<gaia.{notification.id}@{domain}>"
        email["X-Gaia-Notification-Id"] = notification.id
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(plain_text(notification))
        return email

    @contextlib.contextmanager
    def _session(self, started: float) -> Iterator[smtplib.SMTP]:
        """A connected, secured, logged-in session, ended with QUIT; shut down at the
        deadline whatever it is doing."""
        smtp = self._client()
        left = self.timeout - (time.monotonic() - started)
        watchdog = threading.Timer(max(0.0, left), _shut, (smtp,))
        watchdog.daemon = True
        watchdog.start()
        try:
            smtp.connect(self._host, self._port)
            self._secure(smtp)
            if self._login is not None:
                smtp.login(*self._login)
            yield smtp
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
        finally:
            watchdog.cancel()
            smtp.close()

    def _client(self) -> smtplib.SMTP:
        """An unconnected client: connecting under the watchdog bounds the greeting too."""
        name = _local_hostname()
        smtp = (
            smtplib.SMTP_SSL(local_hostname=name, timeout=self.timeout, context=self._context)
            if self._security == "tls"
            else smtplib.SMTP(local_hostname=name, timeout=self.timeout)
        )
        # The name TLS checks the certificate against: the constructor sets it from a host
        # argument, connect() does not (CPython's smtplib since 3.4; typeshed omits it).
        smtp._host = self._host  # type: ignore[attr-defined]
        return smtp

    def _secure(self, smtp: smtplib.SMTP) -> None:
        if self._security != "starttls":
            return
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
        smtp.starttls(context=self._context)
        smtp.ehlo()

    def _transmit(self, smtp: smtplib.SMTP, email: EmailMessage) -> str:
        """MAIL, RCPT for each recipient, DATA; the reply to the data is the answer."""
        smtp.ehlo_or_helo_if_needed()
        code, reply = smtp.mail(self._sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self._sender)
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in self._to:
            code, reply = smtp.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = (code, reply)
        if len(refused) == len(self._to):
            raise smtplib.SMTPRecipientsRefused(refused)
        code, reply = smtp.data(email.as_bytes())
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        answer = _reply(code, reply)
        if refused:
            answer += f" ({len(refused)} of {len(self._to)} recipients refused)"
        return answer

    def _broken(self, exc: BaseException, started: float) -> str:
        if time.monotonic() - started >= self.timeout or isinstance(exc, TimeoutError):
            return f"no complete exchange with {self.target} within {self.timeout:g} s"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused by {self.target}"
        return f"{self.target}: {type(exc).__name__}: {exc}"

    def _failed(self, reason: str, code: int | None = None) -> DeliveryFailed:
        permanent = code is not None and 500 <= code < 600
        return DeliveryFailed(self.name, self._redact(reason), permanent=permanent)


def _reply(code: int, text: bytes | str) -> str:
    """An SMTP reply as one bounded line: ``550 5.1.1 no such user``."""
    return f"{code} {excerpt(text)}"


@functools.cache
def _local_hostname() -> str:
    """The name this host gives in EHLO, looked up once: smtplib would resolve it for every
    client, and a slow resolver would spend the send's timeout on it."""
    return socket.getfqdn()


def _shut(smtp: smtplib.SMTP) -> None:
    # shutdown(2), not close: it wakes the thread blocked reading the socket at once.
    sock = getattr(smtp, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
