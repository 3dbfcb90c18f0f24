"""The daemon's last alert: its root supervisor gave up, and the daemon exits.

By then every actor has stopped (the store and the router too), so the daemon sends this
one itself: it stores the alert and one notification per receiver that takes it (pending),
sends them in parallel for at most ``[alerts] final_timeout`` seconds, and marks those
delivered. One that did not go out stays pending and is sent after the next start.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import structlog

from gaia_actors.alerts import rules
from gaia_actors.alerts.grouping import Grouper, takes
from gaia_actors.alerts.model import Alert, Notification
from gaia_actors.alerts.receivers import Receiver
from gaia_actors.alerts.records import alert_body, notification_body
from gaia_actors.settings import ReceiverSettings, Settings
from gaia_actors.store.database import open_database
from gaia_actors.store.models import AlertRow, NotificationRow, database

log = structlog.get_logger("gaia.alerts")


def send_last_alert(
    settings: Settings,
    make_receiver: Callable[[ReceiverSettings], Receiver],
    child: str,
    reason: str,
) -> int:
    """Store and send the escalation; answers how many receivers have it."""
    change = rules.escalated(child, "root", reason, time.time())
    alert = Alert(
        key=change.key, name=change.name, severity=change.severity, status="firing",
        env="", summary=change.summary, event=change.event, started=time.time(),
    )  # fmt: skip
    grouper = Grouper(settings.alerts)
    notifications = [
        Notification(
            uuid.uuid4().hex, r.name, grouper.label(alert), "firing", (alert,), time.time()
        )
        for r in settings.alerts.receivers
        if takes(r, alert)
    ]
    db = open_database(settings.database_url)
    try:
        # One transaction each: the alert and its notifications in one durable commit before
        # anything is sent, the deliveries in another.
        with db.connection_context(), database.atomic():
            _store(alert, notifications)
        delivered = _send(settings, make_receiver, notifications)
        with db.connection_context(), database.atomic():
            for uid, answer in delivered:
                NotificationRow.update(
                    state="delivered", delivered=time.time(), answer=answer, attempts=1
                ).where(NotificationRow.uid == uid).execute()
    finally:
        db.close()
    return len(delivered)


def _store(alert: Alert, notifications: list[Notification]) -> None:
    body = alert_body(alert)
    body.pop("incident_id")
    AlertRow.create(**body, lasting=False)
    for n in notifications:
        NotificationRow.create(
            uid=n.id, receiver=n.receiver, group=n.group, status=n.status, created=n.created,
            alert_ids=[alert.key], body=notification_body(n),
        )  # fmt: skip


def _send(
    settings: Settings,
    make_receiver: Callable[[ReceiverSettings], Receiver],
    notifications: list[Notification],
) -> list[tuple[str, str]]:
    receivers = {r.name: r for r in settings.alerts.receivers}
    delivered: list[tuple[str, str]] = []

    def send(notification: Notification) -> None:
        receiver = make_receiver(receivers[notification.receiver])
        try:
            answer = receiver.send(notification).answer
        except Exception as exc:  # noqa: BLE001 - it stays pending, sent after the next start
            log.warning("alerts.final_send_failed", receiver=notification.receiver, error=str(exc))
            return
        finally:
            receiver.close()
        delivered.append((notification.id, answer))

    threads = [
        threading.Thread(target=send, args=(n,), name="alerts-last", daemon=True)
        for n in notifications
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + settings.alerts.final_timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return list(delivered)
