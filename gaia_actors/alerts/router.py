"""The alert router: bus events into alerts, alerts into notifications for the receivers.

An alert is stored before anything is sent (``alerts`` table), and each notification too
(``notifications``) before its receiver's actor is told to send it. A lasting alert fires
once while its condition lasts; the router keeps the firing ones, read back from the store
at start, so a restart neither repeats nor forgets them. The bus drops what it publishes
while the router is down: the router marks in the store each event it takes in, and at start
takes in the stored events after its mark. Silences are kept here too (stored;
each ends by a timer): a silenced alert is stored and not sent, and goes out if it still
fires when its silence ends.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from gaia_actors.actor import GaiaActor
from gaia_actors.alerts import rules
from gaia_actors.alerts.delivery import receiver_name
from gaia_actors.alerts.grouping import Group, Grouper
from gaia_actors.alerts.messages import (
    AddSilence,
    Deliver,
    EndSilence,
    FlushGroup,
    StillDegraded,
)
from gaia_actors.alerts.model import Alert, Notification
from gaia_actors.alerts.records import (
    alert_body,
    alerts_to_take_up,
    events_after,
    last_mark,
    next_alert_id,
    notification_body,
    notified,
)
from gaia_actors.alerts.silences import Silence, active_silences, silencing
from gaia_actors.errors import StoreError
from gaia_actors.events import AlertRouterEvent
from gaia_actors.messages import Event, Flush, Insert, InsertNow, Subscribe, Update, fields_of
from gaia_actors.outbox import outbox_for
from gaia_actors.settings import Settings
from supervisors import Link

STORE_TIMEOUT = 10.0


@dataclasses.dataclass(slots=True)
class _Firing:
    row_id: int
    alert: Alert
    lasting: bool
    held: bool  # a silence held it back: not in any group yet


class AlertRouter(GaiaActor):
    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings, self.cfg = settings, settings.alerts
        self.grouper = Grouper(self.cfg)
        self.firing: dict[str, _Firing] = {}
        self.silences: dict[int, Silence] = {}
        self.degraded: dict[str, threading.Event] = {}
        self.next_id = 0
        self.replayed: set[tuple[float, str, str]] = set()  # taken in from the store at start
        self.oneoffs: set[str] = set()  # keys of the one-off alerts stored before this start

    def on_start(self) -> None:
        # Subscribed first (asked: every event published before is then on its way to the
        # store), then the store flushed: what the bus published while no router listened is
        # stored, and what it publishes from now on waits in this mailbox.
        self.ask("bus", Subscribe(self.name, rules.EVENTS), timeout=STORE_TIMEOUT)
        # The router alone adds alerts: once what an earlier generation queued is written,
        # the ids after the highest stored are free.
        self.ask("store", Flush(), timeout=STORE_TIMEOUT)
        self.next_id = next_alert_id()
        for silence in active_silences():
            self._keep_silence(silence)
        self._take_up()
        self._replay()

    def _replay(self) -> None:
        """The stored events after the last one an earlier generation or daemon took in (the
        bus drops what it publishes while the router is down), through the rules as if live;
        those that are in this mailbox too are skipped there."""
        mark = last_mark()
        if mark is None:  # the first start: nothing was missed
            self._mark(Event("", ts=time.time()))
            return
        names = tuple(sorted(rules.EVENTS))
        for event in events_after(mark, names, time.time() - self.cfg.retry_for):
            self.replayed.add(_identity(event))
            self._on_event(event)
        if self.replayed:
            self.log.info("alerts.replayed", events=len(self.replayed))

    def _take_up(self) -> None:
        """What an earlier generation or daemon left: firing alerts, to resolve or repeat,
        alerts a receiver never got a notification of (the daemon stopped or was killed
        within ``group_wait``), to send now, and resolutions not yet sent. A one-off older
        than ``retry_for`` is let go."""
        now, wall = time.monotonic(), time.time()
        found = alerts_to_take_up(wall - self.cfg.retry_for)
        sent = notified(min((alert.started for _, alert, _, _ in found), default=wall))
        for row_id, alert, lasting, silenced_by in found:
            if not lasting:
                self.oneoffs.add(alert.key)
            if alert.status == "resolved":
                self._owe_resolution(alert, sent, now)
                continue
            held = silencing(list(self.silences.values()), alert, wall) is not None
            if lasting:
                self.firing[alert.key] = _Firing(row_id, alert, True, held)
            if held:
                continue
            if silenced_by is not None:
                self._update("alerts", row_id, silenced_by=None)  # its silence ended meanwhile
            had = {receiver for receiver, key in sent if key == alert.key}
            if lasting:  # a one-off that was sent is done with
                self._arm(self.grouper.remember(alert, now, had.__contains__))
            self._arm(self.grouper.add(alert, now, lasting, _outside(had)))

    def _owe_resolution(self, alert: Alert, sent: dict[tuple[str, str], float], now: float) -> None:
        """A resolved alert whose receivers were sent it firing and not yet resolved (the
        daemon stopped within ``group_interval`` of its resolution): sent them resolved."""
        assert alert.ended is not None
        wants = {r.name for r in self.cfg.receivers if r.send_resolved}
        owed = {
            r
            for (r, key), at in sent.items()
            if key == alert.key and r in wants and alert.started <= at < alert.ended
        }
        if owed:
            firing = dataclasses.replace(alert, status="firing", ended=None)
            self.grouper.remember(firing, now, owed.__contains__)
            self._arm(self.grouper.resolve(alert, now))

    def receive(self, message: Any) -> Any:
        match message:
            case Event():
                if not self._seen(message):
                    self._on_event(message)
            case FlushGroup(group=gid):
                self._flush(gid)
            case StillDegraded():
                self._still_degraded(message)
            case AddSilence():
                return self._add_silence(message).as_dict()
            case EndSilence(silence_id=sid):
                return self._end_silence(sid)
            case _:
                return self.unhandled(message)
        return None

    def state(self) -> dict[str, Any]:
        return super().state() | {
            "firing": sorted(self.firing),
            "groups": {gid: sorted(g.alerts) for gid, g in self.grouper.groups.items()},
            "silences": sorted(self.silences),
        }

    # Events into alerts

    def _seen(self, event: Event) -> bool:
        """Whether ``event`` was taken in from the store at start. The bus delivers in the
        order it stores, so the first event that was not ends the overlap."""
        if _identity(event) in self.replayed:
            self.replayed.discard(_identity(event))
            return True
        self.replayed.clear()
        return False

    def _on_event(self, event: Event) -> None:
        if event.name == rules.HEALTH_CHANGED:
            self._watch_degraded(event)
        for change in rules.changes(event):
            if change.action == "fire":
                self._fire(change)
            else:
                self._resolve(change.key)
        self._mark(event)

    def _mark(self, event: Event) -> None:
        """Store ``event`` as the last taken in (queued after the rows it caused, so a daemon
        killed meanwhile takes it in again, and its alerts are deduplicated)."""
        self.record("alert_marks", ts=event.ts, name=event.name, actor=event.actor)

    def _fire(self, change: rules.Change) -> Alert | None:
        """Store and route a new alert; None when the same one already fires."""
        if change.key in self.firing or change.key in self.oneoffs:
            return None
        alert = Alert(
            key=change.key,
            name=change.name,
            severity=change.severity,
            status="firing",
            env=change.env,
            summary=change.summary,
            event=change.event,
            started=time.time(),
            details=change.details,
        )
        silence = silencing(list(self.silences.values()), alert, time.time())
        row_id = self._insert_alert(alert, change.lasting, silence)
        self.publish(AlertRouterEvent.FIRING, alert.severity, alert.env, **self._facts(alert))
        if change.lasting:
            self.firing[alert.key] = _Firing(row_id, alert, True, silence is not None)
        if silence is not None:
            self.publish(
                AlertRouterEvent.SILENCED, "info", alert.env, key=alert.key, silence=silence.id
            )
        else:
            self._arm(self.grouper.add(alert, time.monotonic(), change.lasting))
        return alert

    def _resolve(self, key: str) -> None:
        firing = self.firing.pop(key, None)
        if firing is None:
            return
        ended = time.time()
        alert = dataclasses.replace(firing.alert, status="resolved", ended=ended)
        self._update("alerts", firing.row_id, status="resolved", ended=ended)
        self.publish(AlertRouterEvent.RESOLVED, "info", alert.env, **self._facts(alert))
        if not firing.held:
            self._arm(self.grouper.resolve(alert, time.monotonic()))

    def _facts(self, alert: Alert) -> dict[str, Any]:
        return {"key": alert.key, "alert": alert.name, "summary": alert.summary}

    # Degraded for longer than degraded_after

    def _watch_degraded(self, event: Event) -> None:
        env, new = event.env, event.get("new")
        if new == "degraded" and env not in self.degraded:
            since = StillDegraded(env, time.time(), str(event.get("reason") or ""))
            self.degraded[env] = self.after(self.cfg.degraded_after, since)
        elif new != "degraded" and env in self.degraded:
            self.degraded.pop(env).set()
            self._resolve(rules.resolve(rules.ENVIRONMENT_DEGRADED, env).key)

    def _still_degraded(self, message: StillDegraded) -> None:
        if message.env in self.degraded:
            self._fire(rules.degraded(message.env, message.since, message.reason))

    # Groups into notifications

    def _arm(self, groups: list[Group]) -> None:
        now = time.monotonic()
        for group in groups:
            if group.due is not None:
                self.after(max(0.0, group.due - now), FlushGroup(group.id))

    def _flush(self, gid: str) -> None:
        group = self.grouper.groups.get(gid)
        notification = self.grouper.flush(gid, time.monotonic(), time.time())
        if group is not None and gid in self.grouper.groups:
            self._arm([group])  # its repeat
        if notification is not None:
            self._deliver(notification)

    def _deliver(self, notification: Notification) -> int:
        """Store ``notification`` (pending), then hand it to its receiver's actor."""
        row_id = self._insert_notification(notification)
        self.tell(receiver_name(notification.receiver), Deliver(row_id, notification))
        return row_id

    # Silences

    def _add_silence(self, message: AddSilence) -> Silence:
        now = time.time()
        values = fields_of(
            env=message.env,
            alert=message.alert,
            reason=message.reason,
            created=now,
            expires=now + message.seconds,
        )
        row_id = self.ask("store", InsertNow("silences", values), timeout=STORE_TIMEOUT)
        silence = Silence(
            row_id, message.env, message.alert, message.reason, now, now + message.seconds
        )
        self._keep_silence(silence)
        self.publish(
            AlertRouterEvent.SILENCE_ADDED, id=row_id, alert=message.alert, reason=message.reason,
            expires=silence.expires,
        )  # fmt: skip
        return silence

    def _keep_silence(self, silence: Silence) -> None:
        self.silences[silence.id] = silence
        self.after(max(0.0, silence.expires - time.time()), EndSilence(silence.id))

    def _end_silence(self, silence_id: int) -> dict[str, Any] | None:
        silence = self.silences.pop(silence_id, None)
        if silence is None:
            return None
        now = time.time()
        if now < silence.expires:  # lifted early: written before the operator is answered
            update = Update("silences", silence_id, fields_of(ended=now))
            self.ask("store", update, timeout=STORE_TIMEOUT)
        self.publish(
            AlertRouterEvent.SILENCE_ENDED, env=silence.env, id=silence_id, alert=silence.alert
        )
        self._release_held()
        return dataclasses.replace(silence, ended=min(now, silence.expires)).as_dict()

    def _release_held(self) -> None:
        """Alerts a silence held back that still fire and nothing silences now go out."""
        now = time.time()
        for firing in self.firing.values():
            if firing.held and silencing(list(self.silences.values()), firing.alert, now) is None:
                firing.held = False
                self._update("alerts", firing.row_id, silenced_by=None)
                self._arm(self.grouper.add(firing.alert, time.monotonic()))

    # The store

    def _insert_alert(self, alert: Alert, lasting: bool, silence: Silence | None) -> int:
        """Queue the alert's row (batched: a burst of alerts costs the store one write) under
        an id the router chose; a notification naming it is written after it."""
        row_id, self.next_id = self.next_id, self.next_id + 1
        body = alert_body(alert)
        body.pop("incident_id")
        values = fields_of(**body, id=row_id, lasting=lasting, silenced_by=silence and silence.id)
        outbox_for(self.registry).tell("store", Insert("alerts", values))
        return row_id

    def _insert_notification(self, n: Notification) -> int:
        values = fields_of(
            uid=n.id,
            receiver=n.receiver,
            group=n.group,
            status=n.status,
            created=n.created,
            alert_ids=[a.key for a in n.alerts],
            body=notification_body(n),
        )
        return self._insert("notifications", values)

    def _insert(self, table: str, values: Any) -> int:
        """Write now and answer the row id; a store that cannot write does not stop an alert
        (0: it is sent all the same, and cannot be resent after a restart)."""
        try:
            row_id: int = self.ask("store", InsertNow(table, values), timeout=STORE_TIMEOUT)
        except StoreError as exc:
            self.log.error("alerts.unstored", table=table, error=str(exc))
            return 0
        return row_id

    def _update(self, table: str, row_id: int, **values: Any) -> None:
        if row_id:
            self.tell("store", Update(table, row_id, fields_of(**values)))


def _identity(event: Event) -> tuple[float, str, str]:
    return (event.ts, event.name, event.actor)


def _outside(names: set[str]) -> Callable[[str], bool]:
    return lambda name: name not in names
