"""What every receiver is: ``send`` a notification within a timeout, get back what the other
side answered (`Delivery`) or why it failed (`DeliveryFailed`).

A failure's reason names what failed (connection refused, a timeout, ``HTTP 500`` and the
first characters of the body, an SMTP reply, an exit status) and never a secret: a receiver
passes every text it reports through its `Redactor`, which blanks the tokens it was given (a
header's value, a URL's path and query, a password) wherever they appear, an echo from the
server included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from gaia_actors.alerts.model import Notification
from gaia_actors.errors import GaiaError
from supervisors.records import record

EXCERPT_CHARS = 200  # of an answer's body or a command's output, in a failure's reason
HIDDEN = "***"
_MIN_SECRET = 4  # shorter values (a "1", a "/") would blank ordinary words, and guard nothing
_MIN_PIECE = 10  # a token, not a word such as "Bearer" or "services"
_PIECES = re.compile(r"[\s/&=:;,]+")
_SPACE = re.compile(r"\s+")


@record
class Delivery:
    """What a receiver answered (``HTTP 200``, ``250 2.0.0 Ok``, ``exit 0``) and how long the
    send took, in seconds."""

    answer: str
    elapsed: float


class DeliveryFailed(GaiaError):
    """A notification was not delivered. ``permanent`` when sending it again would get the
    same answer (a 4xx other than 408/429, an SMTP 5xx): the router may stop retrying it."""

    def __init__(self, receiver: str, reason: str, *, permanent: bool = False) -> None:
        self.receiver = receiver
        self.reason = reason
        self.permanent = permanent
        super().__init__(f"receiver {receiver!r}: {reason}")


class Receiver(Protocol):
    """Delivers notifications to one place. ``send`` blocks at most about the receiver's
    ``timeout`` (seconds) and is called from one thread at a time."""

    name: str
    kind: str  # webhook, slack, discord, smtp or command
    timeout: float

    @property
    def target(self) -> str:
        """Where it sends, safe to log and show: a host, an SMTP server, a program."""

    def send(self, notification: Notification) -> Delivery:
        """Deliver ``notification``; raises DeliveryFailed."""

    def close(self) -> None:
        """Let go of what it keeps between sends (a kept-alive connection)."""


class Redactor:
    """Blanks secrets in text a receiver reports: each secret whole, and each long piece of
    one (the token of ``Bearer <token>``, a segment of a URL's path), which a server may echo
    on its own."""

    def __init__(self, secrets: Iterable[str]) -> None:
        found: set[str] = set()
        for secret in secrets:
            if len(secret) >= _MIN_SECRET:
                found.add(secret)
            found.update(p for p in _PIECES.split(secret) if len(p) >= _MIN_PIECE)
        # Longest first, so a secret containing another is blanked whole.
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, HIDDEN)
        return text


def excerpt(text: str | bytes, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters: enough to tell why, never a flood."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return clip(_SPACE.sub(" ", text).strip(), limit)


def clip(text: str, limit: int, marker: str = "…[truncated]") -> str:
    """``text`` cut to ``limit`` characters, ending with ``marker`` when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker[:limit]
