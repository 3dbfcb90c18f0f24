"""Grouping: which alerts go to which receiver, together, and when.

Alerts that match a receiver and share the ``group_by`` values form one group per receiver.
A group's first notification waits ``group_wait`` (alerts firing together join it); a change
to a group already notified waits until ``group_interval`` after its last one (so does an
alert that brings back, within that time, a group that ended by sending its one-offs); a group still
firing is sent again ``repeat_interval`` after its last one. An alert firing again while it
fires changes nothing (deduplication). Times are ``time.monotonic()`` seconds, passed in.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import uuid
from collections.abc import Callable

from gaia_actors.alerts.model import Alert, Notification, severity_rank
from gaia_actors.settings import AlertSettings, ReceiverSettings

EARLY = 0.001  # a timer may wake this much before its due time


def _every(_receiver: str) -> bool:
    return True


def takes(receiver: ReceiverSettings, alert: Alert) -> bool:
    """Whether ``receiver``'s filters let ``alert`` through (the daemon's own alerts, with no
    environment, pass any environment filter)."""
    if alert.status == "resolved" and not receiver.send_resolved:
        return False
    if alert.env and receiver.envs and alert.env not in receiver.envs:
        return False
    if severity_rank(alert.severity) < severity_rank(receiver.min_severity):
        return False
    return any(fnmatch.fnmatchcase(alert.name, glob) for glob in receiver.events)


@dataclasses.dataclass(slots=True)
class Group:
    id: str
    receiver: ReceiverSettings
    label: str
    alerts: dict[str, Alert] = dataclasses.field(default_factory=dict)
    oneoff: set[str] = dataclasses.field(default_factory=set)  # keys sent once, then dropped
    last_sent: float | None = None
    due: float | None = None
    changed: bool = False


class Grouper:
    """The groups of every receiver; the router arms a timer for each due time it answers."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.groups: dict[str, Group] = {}
        self.ended: dict[str, float] = {}  # groups gone after a send: when it was

    def label(self, alert: Alert) -> str:
        parts = [f"{key}={getattr(alert, key) or '-'}" for key in self.settings.group_by]
        return ",".join(parts) or "all"

    def _groups_for(self, alert: Alert, which: Callable[[str], bool] = _every) -> list[Group]:
        groups = []
        for receiver in self.settings.receivers:
            if takes(receiver, alert) and which(receiver.name):
                gid = f"{receiver.name}|{self.label(alert)}"
                groups.append(self.groups.setdefault(gid, Group(gid, receiver, self.label(alert))))
        return groups

    def add(
        self, alert: Alert, now: float, lasting: bool = True, which: Callable[[str], bool] = _every
    ) -> list[Group]:
        """A firing alert into the groups of the receivers that take it (of those ``which``
        names); answers the groups whose due time moved earlier (each needs a timer)."""
        moved = []
        for group in self._groups_for(alert, which):
            if alert.key in group.alerts:
                continue  # still firing: deduplicated
            group.alerts[alert.key] = alert
            if not lasting:
                group.oneoff.add(alert.key)
            if self._changed(group, now):
                moved.append(group)
        return moved

    def remember(
        self, alert: Alert, now: float, which: Callable[[str], bool] = _every
    ) -> list[Group]:
        """A firing alert notified before a restart (to the receivers ``which`` names): in
        its groups, due to repeat after ``repeat_interval``; answers the groups that need a
        timer."""
        fresh = []
        for group in self._groups_for(alert, which):
            group.alerts[alert.key] = alert
            if group.last_sent is None:
                group.last_sent = now
                group.due = now + self.settings.repeat_interval
                fresh.append(group)
        return fresh

    def resolve(self, alert: Alert, now: float) -> list[Group]:
        """The resolved ``alert`` replaces its firing self in the groups that hold it."""
        moved = []
        for group in self.groups.values():
            if alert.key not in group.alerts:
                continue
            if not group.receiver.send_resolved or group.last_sent is None:
                del group.alerts[alert.key]  # never sent firing, or resolved are not wanted
                continue
            group.alerts[alert.key] = alert
            if self._changed(group, now):
                moved.append(group)
        return moved

    def _changed(self, group: Group, now: float) -> bool:
        group.changed = True
        if group.last_sent is None:
            # a group that ended by sending its one-off alerts within group_interval comes back
            # as that group: a stream of one-offs goes out group_interval apart
            after = self.ended.get(group.id, -self.settings.group_interval)
            due = max(now + self.settings.group_wait, after + self.settings.group_interval)
        else:
            due = max(now, group.last_sent + self.settings.group_interval)
        if group.due is not None and group.due <= due:
            return False
        group.due = due
        return True

    def flush(self, gid: str, now: float, created: float) -> Notification | None:
        """The group's notification if it is due (None for a stale timer or nothing to say);
        then the group keeps what still fires, due again after ``repeat_interval``."""
        group = self.groups.get(gid)
        if group is None or group.due is None or group.due > now + EARLY:
            return None
        alerts = sorted(group.alerts.values(), key=lambda a: (a.started, a.key))
        firing = any(a.status == "firing" for a in alerts)
        notification = None
        if alerts and (group.changed or firing):
            notification = Notification(
                id=uuid.uuid4().hex,
                receiver=group.receiver.name,
                group=group.label,
                status="firing" if firing else "resolved",
                alerts=tuple(alerts),
                created=created,
            )
        group.alerts = {
            k: a for k, a in group.alerts.items() if a.status == "firing" and k not in group.oneoff
        }
        sent_oneoffs = notification is not None and bool(group.oneoff)
        group.oneoff.clear()
        group.last_sent, group.changed = now, False
        group.due = now + self.settings.repeat_interval if group.alerts else None
        if not group.alerts:
            del self.groups[gid]
            if sent_oneoffs:  # they end when sent, where a lasting alert would keep it
                self._ended(gid, now)
        return notification

    def _ended(self, gid: str, now: float) -> None:
        """Remember when group ``gid`` went, forgetting the groups gone too long to matter."""
        horizon = now - self.settings.group_interval
        self.ended = {g: at for g, at in self.ended.items() if at > horizon}
        self.ended[gid] = now
