"""Alerts and notifications as the store keeps them, and back.

A notification is stored whole (``NotificationRow.body``) before it is sent, so one resent
after a restart is the same message with the same id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import peewee

from gaia_actors.alerts.model import Alert, Notification
from gaia_actors.messages import Event, fields_of
from gaia_actors.store.models import AlertMarkRow, AlertRow, EventRow, NotificationRow

_ALERT_FIELDS = (
    "key", "name", "severity", "status", "env", "summary", "event", "started", "ended",
    "incident_id",
)  # fmt: skip


def alert_body(alert: Alert) -> dict[str, Any]:
    body = {name: getattr(alert, name) for name in _ALERT_FIELDS}
    body["details"] = dict(alert.details)
    return body


def alert_from(body: Mapping[str, Any]) -> Alert:
    fields: dict[str, Any] = {name: body.get(name) for name in _ALERT_FIELDS}
    return Alert(**fields, details=body["details"])


def notification_body(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.id,
        "receiver": notification.receiver,
        "group": notification.group,
        "status": notification.status,
        "created": notification.created,
        "test": notification.test,
        "alerts": [alert_body(a) for a in notification.alerts],
    }


def notification_from(body: Mapping[str, Any]) -> Notification:
    return Notification(
        id=body["id"],
        receiver=body["receiver"],
        group=body["group"],
        status=body["status"],
        alerts=tuple(alert_from(a) for a in body["alerts"]),
        created=body["created"],
        test=bool(body.get("test")),
    )


def alert_from_row(row: Any) -> Alert:
    fields = {name: getattr(row, name, None) for name in _ALERT_FIELDS}
    return alert_from(fields | {"details": row.details or {}})


def pending_notifications(receiver: str) -> list[tuple[int, Notification, int]]:
    """A receiver's notifications not yet delivered nor abandoned: (row id, notification,
    attempts so far), oldest first."""
    model: Any = NotificationRow
    rows = model.select().where(model.receiver == receiver, model.state == "pending")
    return [
        (int(r.id), notification_from(r.body), int(r.attempts)) for r in rows.order_by(model.id)
    ]


def alerts_to_take_up(since: float) -> list[tuple[int, Alert, bool, int | None]]:
    """What a starting router takes up: lasting alerts still firing or resolved since
    ``since`` (their resolution may not have gone out), and one-off alerts raised since
    ``since``, as (row id, alert, lasting, the silence that held it back)."""
    model: Any = AlertRow
    lasting = model.lasting == True  # noqa: E712 - SQL
    firing = lasting & ((model.status == "firing") | (model.ended >= since))
    oneoff = (model.lasting == False) & (model.started >= since)  # noqa: E712 - SQL
    rows = model.select().where(firing | oneoff).order_by(model.id)
    return [(int(r.id), alert_from_row(r), bool(r.lasting), r.silenced_by) for r in rows]


def notified(since: float) -> dict[tuple[str, str], float]:
    """(receiver, alert key) of the notifications made since ``since``: when the last was."""
    model: Any = NotificationRow
    rows = model.select(model.receiver, model.alert_ids, model.created)
    last: dict[tuple[str, str], float] = {}
    for r in rows.where(model.created >= since).order_by(model.created):
        last.update(((r.receiver, key), float(r.created)) for key in r.alert_ids or ())
    return last


def next_alert_id() -> int:
    model: Any = AlertRow
    highest = model.select(peewee.fn.MAX(model.id)).scalar()
    return int(highest or 0) + 1


# The router's mark: the last bus event it took in

_EVENT_KEYS = ("event", "level", "ts", "actor", "env")  # an event's own fields in its record


def last_mark() -> tuple[float, str, str] | None:
    """(ts, name, actor) of the last event the router took in; None before its first start."""
    model: Any = AlertMarkRow
    row = model.select().order_by(model.id.desc()).first()
    return None if row is None else (float(row.ts), str(row.name), str(row.actor))


def events_after(mark: tuple[float, str, str], names: tuple[str, ...], since: float) -> list[Event]:
    """The stored events named ``names`` that came after ``mark``, in the bus's order (the
    order of their rows), none older than ``since``. A mark whose event is no longer stored
    names only its time."""
    model: Any = EventRow
    ts, name, actor = mark
    at = model.select(model.id).where(model.ts == ts, model.name == name, model.actor == actor)
    row = at.order_by(model.id.desc()).first() if name else None
    after = (model.id > row.id) if row is not None else (model.ts > ts)
    query = model.select().where(after, model.name.in_(names), model.ts >= since)
    return [_event_from(r) for r in query.order_by(model.id)]


def _event_from(row: Any) -> Event:
    data = {k: v for k, v in (row.data or {}).items() if k not in _EVENT_KEYS}
    return Event(
        row.name, level=row.level, actor=row.actor, env=row.env, data=fields_of(**data), ts=row.ts
    )
