"""The generic webhook: the notification's versioned payload (``Notification.payload``) as a
JSON POST, through the project's HTTP client and its bounds.

Every request carries ``Content-Type: application/json`` and the notification's id twice:
``Idempotency-Key`` (the header payment and queueing APIs deduplicate retried POSTs on) and
``X-Gaia-Notification-Id``; the configured headers come last and may replace them. A 2xx
answer is a delivery; anything else, or no complete answer within the timeout, fails. The
URL's path and query and every header value count as secrets: only the host is reported.

The chat formats (`gaia_actors.alerts.receivers.slack`, `.discord`) are this receiver with
another body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from gaia_actors.alerts.model import Notification
from gaia_actors.alerts.receivers.base import Delivery, DeliveryFailed, Redactor, excerpt
from gaia_actors.httpclient import Answer, Client, ErrorKind, Limits, host_of

CONNECT_TIMEOUT = 3.0  # at most; a receiver's timeout below it bounds the connect too
MAX_ANSWER_BYTES = 16 * 1024  # of a receiver's answer: read for the failure reason only
# Answers a resend can change: the server's own timeout, "too early", and "too many requests".
_RETRYABLE_4XX = frozenset({408, 425, 429})


class WebhookReceiver:
    """POSTs ``body(notification)`` as JSON to ``url`` within ``timeout`` seconds."""

    kind = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"receiver {name!r}: url must be http:// or https:// with a host")
        self.name = name
        self.timeout = timeout
        self._url = url
        self._headers = dict(headers or {})
        secrets = [parts.path, parts.query, parts.username or "", parts.password or ""]
        self._redact = Redactor([*secrets, *self._headers.values()])
        limits = Limits(min(timeout, CONNECT_TIMEOUT), timeout, MAX_ANSWER_BYTES)
        self._client = Client(limits)

    @property
    def target(self) -> str:
        return host_of(self._url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, target={self.target!r})"

    def body(self, notification: Notification) -> dict[str, Any]:
        """The JSON document sent; the chat formats give their own."""
        return notification.payload()

    def send(self, notification: Notification) -> Delivery:
        data = json.dumps(self.body(notification), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notification.id,
            "X-Gaia-Notification-Id": notification.id,
            **self._headers,
        }
        answer = self._client.post(self._url, data, headers)
        if answer.status is None or answer.error not in (None, ErrorKind.TOO_LARGE):
            raise self._failed(f"POST to {self.target}: {answer.describe()}")
        if 200 <= answer.status < 300:
            return Delivery(f"HTTP {answer.status}", answer.elapsed)
        raise self._rejected(answer, answer.status)

    def close(self) -> None:
        """Drop the kept-alive connection."""
        self._client.close()

    def _rejected(self, answer: Answer, status: int) -> DeliveryFailed:
        # Blanked before it is cut: a cut could leave half a secret that no longer matches.
        said = excerpt(self._redact(answer.body.decode("utf-8", "replace")))
        reason = f"HTTP {status} from {self.target}" + (f": {said}" if said else "")
        permanent = 400 <= status < 500 and status not in _RETRYABLE_4XX
        return self._failed(reason, permanent=permanent)

    def _failed(self, reason: str, *, permanent: bool = False) -> DeliveryFailed:
        return DeliveryFailed(self.name, self._redact(reason), permanent=permanent)
