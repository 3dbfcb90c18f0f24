"""One receiver's actor: its stored notifications, sent one at a time off every mailbox.

A send runs in a thread of its own and reports back with ``Sent``; the receiver's timeout
bounds it, so a receiver that is down or slow holds up nothing but itself. A failed attempt
is retried after a capped, jittered exponential backoff (``[alerts] retry_*``) until
``retry_for`` has passed since the notification was made (an answer that would not change,
a 4xx or an SMTP 5xx, is not retried); the rate limit delays sends,
never drops them. At start the actor takes up its notifications still pending in the store
(a restart, a SIGKILLed daemon): each is sent again with its own id, so a receiver that had
it already can tell.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import random
import threading
import time
from typing import Any

import pykka

from gaia_actors.actor import GaiaActor
from gaia_actors.alerts.messages import Deliver, Sent, Wake
from gaia_actors.alerts.model import Notification
from gaia_actors.alerts.receivers import DeliveryFailed, Receiver
from gaia_actors.alerts.records import pending_notifications
from gaia_actors.events import AlertRouterEvent
from gaia_actors.messages import Update, fields_of
from gaia_actors.outbox import outbox_for
from gaia_actors.settings import AlertSettings, ReceiverSettings
from gaia_actors.store.models import closing_connections
from supervisors import Link

RATE_WINDOW = 60.0  # the rate limit counts notifications a minute


def receiver_name(receiver: str) -> str:
    """The actor name of a receiver."""
    return f"alerts.receiver.{receiver}"


def backoff(settings: AlertSettings, attempts: int, rng: random.Random) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from ``retry_initial`` up to
    ``retry_max``, then spread by ``retry_jitter`` so receivers coming back are not hit by
    every retry at once."""
    base = min(settings.retry_max, settings.retry_initial * 2 ** max(0, attempts - 1))
    spread = base * settings.retry_jitter
    return float(max(0.0, base + rng.uniform(-spread, spread)))


@dataclasses.dataclass(slots=True)
class _Pending:
    row_id: int
    notification: Notification
    attempts: int = 0
    due: float = 0.0  # monotonic


class ReceiverActor(GaiaActor):
    """Delivers one receiver's notifications, oldest due first."""

    def __init__(
        self, link: Link, alerts: AlertSettings, receiver: ReceiverSettings, sink: Receiver
    ) -> None:
        super().__init__(link)
        self.alerts, self.receiver, self.sink = alerts, receiver, sink
        self.queue: dict[str, _Pending] = {}
        self.in_flight: str | None = None
        self.sent_at: collections.deque[float] = collections.deque()
        self.timer: threading.Event | None = None
        self.rng = random.Random()
        self.delivered = self.failures = 0

    def on_start(self) -> None:
        for row_id, notification, attempts in pending_notifications(self.receiver.name):
            self.queue[notification.id] = _Pending(row_id, notification, attempts)
        if self.queue:
            self.log.info("alerts.resending", notifications=len(self.queue))
        self._next()

    def receive(self, message: Any) -> Any:
        match message:
            case Deliver(row_id=row_id, notification=notification):
                self.queue.setdefault(notification.id, _Pending(row_id, notification))
                self._next()
            case Sent():
                self._sent(message)
                self._next()
            case Wake():
                self._next()
            case _:
                return self.unhandled(message)
        return None

    def on_terminate(self) -> None:
        self.sink.close()  # a send still in flight fails, and is sent again after a restart

    def state(self) -> dict[str, Any]:
        return super().state() | {
            "receiver": self.receiver.name,
            "endpoint": self.receiver.endpoint,
            "pending": len(self.queue),
            "in_flight": self.in_flight,
            "delivered": self.delivered,
            "failures": self.failures,
        }

    # Sending

    def _next(self) -> None:
        """Start the send that is due, or wake up when the next one is."""
        if self.in_flight is not None or not self.queue:
            return
        now = time.monotonic()
        item = min(self.queue.values(), key=lambda p: (p.due, p.row_id))
        while self.sent_at and self.sent_at[0] <= now - RATE_WINDOW:
            self.sent_at.popleft()
        ready = item.due
        if len(self.sent_at) >= self.receiver.rate_limit:
            ready = max(ready, self.sent_at[0] + RATE_WINDOW)
        if ready > now:
            self._wake_at(ready - now)
            return
        self.in_flight = item.notification.id
        self.sent_at.append(now)
        target = closing_connections(self._send)
        name = f"{self.name}-send"
        threading.Thread(target=target, args=(item.notification,), name=name, daemon=True).start()

    def _wake_at(self, delay: float) -> None:
        if self.timer is not None:
            self.timer.set()
        self.timer = self.after(delay, Wake())

    def _send(self, notification: Notification) -> None:
        try:
            result = Sent(notification.id, True, answer=self.sink.send(notification).answer)
        except DeliveryFailed as exc:
            result = Sent(notification.id, False, error=exc.reason, permanent=exc.permanent)
        except Exception as exc:  # noqa: BLE001 - any failure of a send is a failed attempt
            result = Sent(notification.id, False, error=str(exc) or type(exc).__name__)
        with contextlib.suppress(pykka.ActorDeadError):  # a restarted receiver resends it
            self.actor_ref.tell(result)

    def _sent(self, sent: Sent) -> None:
        if sent.uid != self.in_flight:
            return
        self.in_flight = None
        item = self.queue.get(sent.uid)
        if item is None:
            return
        item.attempts += 1
        if sent.ok:
            self._delivered(item, sent.answer)
        elif sent.permanent or time.time() - item.notification.created > self.alerts.retry_for:
            self._abandoned(item, sent.error)
        else:
            self._retry(item, sent.error)

    def _delivered(self, item: _Pending, answer: str) -> None:
        del self.queue[item.notification.id]
        self.delivered += 1
        self._store(item, state="delivered", delivered=time.time(), answer=answer, error="")
        self.publish(AlertRouterEvent.NOTIFICATION_SENT, **self._facts(item), answer=answer)

    def _retry(self, item: _Pending, error: str) -> None:
        delay = backoff(self.alerts, item.attempts, self.rng)
        item.due = time.monotonic() + delay
        self.failures += 1
        self._store(item, error=error, next_attempt=time.time() + delay)
        self.publish(
            AlertRouterEvent.DELIVERY_FAILED,
            "warning",
            **self._facts(item),
            error=error,
            retry_in=round(delay, 3),
        )

    def _abandoned(self, item: _Pending, error: str) -> None:
        del self.queue[item.notification.id]
        self.failures += 1
        self._store(item, state="abandoned", error=error, next_attempt=None)
        self.publish(AlertRouterEvent.DELIVERY_ABANDONED, "error", **self._facts(item), error=error)

    def _facts(self, item: _Pending) -> dict[str, Any]:
        n = item.notification
        return {
            "receiver": self.receiver.name,
            "endpoint": self.receiver.endpoint,
            "notification": n.id,
            "group": n.group,
            "status": n.status,
            "alerts": len(n.alerts),
            "attempts": item.attempts,
        }

    def _store(self, item: _Pending, **values: Any) -> None:
        values["attempts"] = item.attempts
        outbox_for(self.registry).tell(
            "store", Update("notifications", item.row_id, fields_of(**values))
        )
