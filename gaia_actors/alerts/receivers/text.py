"""The facts of a notification as text, the same in every format: the e-mail body, the chat
messages' fields and the command's environment are all drawn from here."""

from __future__ import annotations

import json
from typing import Any

from gaia_actors.alerts.model import Alert, Notification
from gaia_actors.formatting import utc_iso

DAEMON = "(daemon)"  # an alert about the daemon itself has no environment


def facts(alert: Alert) -> list[tuple[str, str]]:
    """An alert's facts as (label, value) pairs, in the order people read them."""
    return [
        ("Environment", alert.env or DAEMON),
        ("Severity", alert.severity),
        ("Status", alert.status),
        ("Alert", alert.name),
        ("Incident", "-" if alert.incident_id is None else str(alert.incident_id)),
        ("Started", utc_iso(alert.started) or "-"),
        ("Ended", utc_iso(alert.ended) or "-"),
        ("Event", alert.event),
    ]


def detail_lines(alert: Alert) -> list[str]:
    """``key: value`` for each of the event's details."""
    return [f"{key}: {scalar(value)}" for key, value in alert.details.items()]


def scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def footer(notification: Notification) -> str:
    """Which notification this is: a resend carries the same id."""
    test = " · test" if notification.test else ""
    created = utc_iso(notification.created)
    return f"gaia notification {notification.id} · group {notification.group} · {created}{test}"


def plain_text(notification: Notification) -> str:
    """The whole notification as plain text (an e-mail body)."""
    count = len(notification.alerts)
    head = f"{count} alert{'s' if count != 1 else ''}, {notification.status}"
    parts = [notification.title, "", head, ""]
    for alert in notification.alerts:
        parts.append(f"== {alert.summary}")
        parts += [f"{label + ':':<13}{value}" for label, value in facts(alert)]
        if alert.details:
            parts.append("Details:")
            parts += [f"  {line}" for line in detail_lines(alert)]
        parts.append("")
    parts.append(f"-- {footer(notification)}")
    return "\n".join(parts) + "\n"
