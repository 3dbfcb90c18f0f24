"""FailoverAgent (``failover``): failing environments into supervision, incidents on record.

A process that exits is seen at once by its environment actor, which fails, and the
``environments`` supervisor restarts it (restart → restore → rollback → FAILED). A process
that hangs — alive, not answering — is seen only by health checks. This agent closes that gap:
when an environment is *down* and its current process (pid file, start time) has failed
``[failover] down_checks`` consecutive checks while still alive, it tells
``environment.<env>`` ``Fail(cause=...)``, and the same supervision path takes over. The
cause says what the checks saw: ``hung`` when the process gave no answer (timeouts, resets),
``error`` when it answered with an error (a 5xx, a 404, a body reporting itself down).
As with a Kubernetes startup probe, a new process's failures count only once it has answered
a check (the monitor's, or its environment actor's start-up check, recorded in the
environment's ``verified`` file, so an agent or monitor restarted since knows it too), or once
it is older than ``start_grace`` (a starting service refuses connections for
a moment, longer on a loaded machine; one that hangs before it ever answers is caught after
the grace). Answers and failures of the process that was just failed over do not count
either: a dying process may answer its stuck request as it shuts down.

Every failure is an *incident* (``incidents`` table), whether the agent caused the restart or
the process exited by itself:

- ``started``: the first failed check of the run (hung) or the exit (exited);
- ``detected``: when the agent failed the environment over (hung) or the exit was seen;
- ``recovered``: the first check after detection that finds it healthy again (the monitor's
  classifier, so ``success_threshold`` passing checks) in a process other than the failed one
  — recovery is verified by health, and a dying process's last answers do not count;
- ``time_to_detect`` = detected - started and ``time_to_recover`` = recovered - detected, so
  the outage lasted their sum.

An incident ends ``failed`` when the supervisor parks the environment as FAILED.

Incidents outlive the agent: a new generation (after a crash, or in the next daemon) takes
over the newest ``open`` incident of each environment and closes it as above, at the first
passing check of whatever process runs then. Older open incidents of the same environment
are ``superseded`` by it, and those of an environment no longer configured are ``closed``.

Flapping is damped: at most ``flap_max`` failovers per environment within ``flap_window``
seconds. Beyond that the agent raises ``alert.flapping`` and leaves the environment to
supervision until the window has room again. Alerts — ``alert.degraded``, ``alert.failed``,
``alert.flapping`` — are bus events (logged once by the bus, stored, streamed).

The agent's inputs: ``HealthRound`` from the monitor after every round (``WatchHealth``), and
bus events ``health.*``, ``environment.*`` and ``supervisor.*``.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import peewee

from gaia_actors.actor import GaiaActor
from gaia_actors.errors import StoreError
from gaia_actors.events import (
    AlertEvent,
    EnvironmentEvent,
    FailoverEvent,
    HealthEvent,
    IncidentEvent,
    SupervisorEvent,
    matches,
)
from gaia_actors.messages import (
    Event,
    Fail,
    GetIncidents,
    HealthReport,
    HealthRound,
    InsertNow,
    Subscribe,
    Unsubscribe,
    Update,
    WatchHealth,
    fields_of,
)
from gaia_actors.monitoring.monitor import monitor_restarted
from gaia_actors.settings import Settings
from gaia_actors.store.models import Incident
from supervisors import Link, SupervisionError

__all__ = ["FailoverAgent", "incident_rows"]

EVENT_PATTERNS = (HealthEvent.ALL, EnvironmentEvent.ALL, SupervisorEvent.ALL)
_STORE_TIMEOUT = 2.0
_ENV_PREFIX = "environment."


@dataclass
class _Incident:
    cause: str  # hung | error | exited
    started: float
    detected: float
    pid: int | None
    row_id: int | None = None
    failovers: int = 0
    restarts: int = 0
    notes: list[str] = field(default_factory=list)

    def detail(self) -> str:
        parts = [*self.notes]
        if self.restarts:
            parts.append(f"{self.restarts} restart(s) by the supervisor")
        return "; ".join(parts)[-2000:]


@dataclass
class _EnvWatch:
    """What the agent tracks for one environment."""

    run: int = 0  # consecutive failed checks of run_pid that count
    run_pid: int | None = None
    status: str = "unknown"
    incident: _Incident | None = None
    # The process that was failed over (or exited): its answers prove nothing until the
    # environment has started again. A hung demo, for one, answers its stuck health check
    # with 200 while it shuts down.
    failed_pid: int | None = None
    answered_pid: int | None = None  # a process that has answered a check at least once
    failovers: deque[float] = field(default_factory=deque)  # monotonic times, flap damping
    flap_alerted: bool = False


class FailoverAgent(GaiaActor):
    """Turns hung environments into supervised failures and records every incident."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.cfg = settings.failover
        self.envs = {env: _EnvWatch() for env in settings.environments}
        self.triggered = 0
        self.suppressed = 0

    def on_start(self) -> None:
        self._take_over_open_incidents()
        self.tell("bus", Subscribe(self.name, EVENT_PATTERNS))
        self.tell("monitor", WatchHealth(self.name))

    def _take_over_open_incidents(self) -> None:
        """Track again the incidents a previous generation or daemon left open."""
        try:
            rows: list[Any] = list(
                Incident.select().where(Incident.status == "open").order_by(Incident.started)
            )
        except peewee.PeeweeException as exc:
            self.log.warning("failover.open_incidents_unread", error=str(exc))
            return
        newest = {row.env: row for row in rows}  # oldest first: the newest per environment wins
        for row in rows:
            if row.env not in self.envs:
                status, note = "closed", "the environment is no longer configured"
            elif newest[row.env] is not row:
                status, note = "superseded", f"superseded by incident #{newest[row.env].id}"
            else:
                self.envs[row.env].incident = _Incident(
                    row.cause,
                    row.started,
                    row.detected if row.detected is not None else row.started,
                    None,
                    row_id=row.id,
                    failovers=row.failovers,
                    notes=[*filter(None, [row.detail]), "taken over by a new failover agent"],
                )
                continue
            detail = "; ".join(part for part in (row.detail, note) if part)[-2000:]
            self.tell("store", Update("incidents", row.id, fields_of(status=status, detail=detail)))
        taken = [row.id for row in newest.values() if row.env in self.envs]
        if taken:
            self.log.info("failover.incidents_taken_over", incidents=taken)

    def on_stop(self) -> None:
        super().on_stop()
        self.tell("bus", Unsubscribe(self.name))

    def receive(self, message: Any) -> Any:
        match message:
            case HealthRound(reports=reports):
                for report in reports:
                    self._on_report(report)
            case Event():
                self._on_event(message)
            case GetIncidents(env=env, limit=limit):
                return incident_rows(env, limit)
            case _:
                return self.unhandled(message)
        return None

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "failovers": self.triggered,
            "suppressed": self.suppressed,
            "environments": {
                env: {
                    "status": w.status,
                    "failed_checks": w.run,
                    "open_incident": w.incident.cause if w.incident else None,
                    "failovers_in_window": len(w.failovers),
                }
                for env, w in self.envs.items()
            },
        }

    # Health rounds: counting and failing over

    def _on_report(self, report: HealthReport) -> None:
        watch = self.envs.setdefault(report.env, _EnvWatch())
        watch.status = report.status
        self._count(watch, report)
        if watch.run >= self.cfg.down_checks and report.status == "down":
            self._fail_over(report.env, watch, report)
        elif report.status == "healthy" and report.observation == "pass":
            # The smoothed status tolerates a failing check; a recovery needs a passing one.
            self._check_recovered(report.env, watch, report.checked_at, report.pid)

    def _count(self, watch: _EnvWatch, report: HealthReport) -> None:
        if report.observation != "fail":
            watch.answered_pid = report.pid
        # A startup probe, as Kubernetes has: a new process's failures count once it has
        # answered, or once it is older than the grace (it may hang before it ever answers).
        young = (
            report.pid != watch.answered_pid
            and not report.verified
            and report.uptime_s is not None
            and report.uptime_s < self.cfg.start_grace
        )
        stopping = report.pid is not None and report.pid == watch.failed_pid
        if report.observation != "fail" or not report.alive or stopping:
            # Answering; or dead or unknown: a process that is gone is its environment
            # actor's to restart, and without a pid file there is no process to fail.
            watch.run, watch.run_pid = 0, report.pid
        elif not young:
            if report.pid != watch.run_pid:
                watch.run, watch.run_pid = 0, report.pid
            watch.run += 1

    def _fail_over(self, env: str, watch: _EnvWatch, report: HealthReport) -> None:
        checks = watch.run
        watch.run = 0  # counting starts again; a still-hung process fails again after N more
        cause = "hung" if report.http_status is None else "error"
        incident = watch.incident or self._open(
            env, cause, report.failing_since or report.checked_at, time.time(), report.pid
        )
        watch.incident = incident
        if self._flapping(env, watch):
            incident.notes.append("failover suppressed: flapping")
            self._update(incident, detail=incident.detail())
            return
        reason = (
            f"health down for {checks} consecutive checks while process {report.pid} is "
            f"alive ({report.reason})"
        )
        delivered = self.tell(f"{_ENV_PREFIX}{env}", Fail(reason, cause=cause))
        watch.failovers.append(time.monotonic())
        incident.failovers += 1
        if delivered:
            watch.failed_pid = report.pid
        else:
            incident.notes.append(f"{_ENV_PREFIX}{env} was not running to receive Fail")
        self.triggered += 1
        self.publish(
            FailoverEvent.TRIGGERED,
            level="warning",
            env=env,
            cause=cause,
            reason=reason,
            pid=report.pid,
            delivered=delivered,
        )
        self._update(incident, failovers=incident.failovers, detail=incident.detail())

    def _flapping(self, env: str, watch: _EnvWatch) -> bool:
        now = time.monotonic()
        while watch.failovers and now - watch.failovers[0] > self.cfg.flap_window:
            watch.failovers.popleft()
        if len(watch.failovers) < self.cfg.flap_max:
            watch.flap_alerted = False
            return False
        self.suppressed += 1
        if not watch.flap_alerted:
            watch.flap_alerted = True
            self._alert(
                AlertEvent.FLAPPING,
                "error",
                env,
                failovers=len(watch.failovers),
                window=self.cfg.flap_window,
                action="left to supervision until the window has room; look at its logs",
            )
        return True

    def _check_recovered(
        self, env: str, watch: _EnvWatch, checked_at: float, pid: int | None
    ) -> None:
        incident = watch.incident
        if incident is None or checked_at <= incident.detected:
            return
        if pid is not None and pid == watch.failed_pid:
            return  # the failed process itself, not yet replaced
        watch.incident, watch.failed_pid = None, None
        ttd = round(incident.detected - incident.started, 6)
        ttr = round(checked_at - incident.detected, 6)
        self._update(
            incident,
            recovered=checked_at,
            time_to_detect=ttd,
            time_to_recover=ttr,
            status="recovered",
            detail=incident.detail(),
        )
        self.publish(
            IncidentEvent.RECOVERED,
            env=env,
            cause=incident.cause,
            time_to_detect=ttd,
            time_to_recover=ttr,
            failovers=incident.failovers,
        )

    # Bus events

    def _on_event(self, event: Event) -> None:
        name = event.name
        if name == HealthEvent.CHANGED:
            self._on_health_changed(event)
        elif matches(name, SupervisorEvent.ALL):
            self._on_supervision(event)
        elif name == EnvironmentEvent.EXITED:
            self._on_exited(event)
        elif name == EnvironmentEvent.STARTED:
            self._on_started(event)
        elif name == EnvironmentEvent.FAILED:
            self._on_parked(event.env, str(event.get("error", "")))

    def _on_health_changed(self, event: Event) -> None:
        new = event.get("new")
        if new == "degraded":
            self._alert(
                AlertEvent.DEGRADED, "warning", event.env, reason=str(event.get("reason", ""))
            )
        elif new == "healthy" and event.env in self.envs:
            self._check_recovered(event.env, self.envs[event.env], event.ts, event.get("pid"))

    def _on_supervision(self, event: Event) -> None:
        if monitor_restarted(event):
            self.tell("monitor", WatchHealth(self.name))
            return
        child = str(event.get("child", ""))
        env = child.removeprefix(_ENV_PREFIX)
        watch = self.envs.get(env) if child.startswith(_ENV_PREFIX) else None
        if watch is None or watch.incident is None:
            return
        if event.name == SupervisorEvent.RESTART:
            watch.incident.restarts += 1
        elif event.name == SupervisorEvent.LADDER_STEP:
            watch.incident.notes.append(f"ladder step {event.get('step')}")
        else:
            return
        self._update(watch.incident, detail=watch.incident.detail())

    def _on_started(self, event: Event) -> None:
        watch = self.envs.setdefault(event.env, _EnvWatch())
        watch.failed_pid = None  # whatever runs now (a new process, or the old one adopted)
        self._note(event.env, f"started pid {event.get('pid')}")

    def _on_exited(self, event: Event) -> None:
        watch = self.envs.setdefault(event.env, _EnvWatch())
        watch.run = 0
        watch.failed_pid = event.get("pid")
        code = event.get("code")
        if watch.incident is None:
            watch.incident = self._open(event.env, "exited", event.ts, event.ts, event.get("pid"))
        self._note(event.env, f"process {event.get('pid')} exited with code {code}")

    def _on_parked(self, env: str, error: str) -> None:
        watch = self.envs.setdefault(env, _EnvWatch())
        incident = watch.incident or self._open(env, "exited", time.time(), time.time(), None)
        watch.incident, watch.failed_pid = None, None
        incident.notes.append(f"FAILED: {error}" if error else "FAILED")
        self._update(incident, status="failed", detail=incident.detail())
        self._alert(
            AlertEvent.FAILED,
            "error",
            env,
            error=error,
            action=f"fix the cause, then: python run.py reset {env}",
        )

    def _note(self, env: str, note: str) -> None:
        watch = self.envs.get(env)
        if watch is not None and watch.incident is not None:
            watch.incident.notes.append(note)
            self._update(watch.incident, detail=watch.incident.detail())

    # Incidents and alerts

    def _open(
        self, env: str, cause: str, started: float, detected: float, pid: int | None
    ) -> _Incident:
        incident = _Incident(cause, started, detected, pid)
        row = fields_of(
            env=env,
            cause=cause,
            started=started,
            detected=detected,
            time_to_detect=round(detected - started, 6),
            status="open",
        )
        try:
            incident.row_id = self.ask("store", InsertNow("incidents", row), _STORE_TIMEOUT)
        except (SupervisionError, StoreError) as exc:  # store down, slow or faulty: logged
            self.log.error("failover.incident_not_stored", env=env, error=str(exc))
        self.publish(IncidentEvent.OPENED, level="warning", env=env, cause=cause, pid=pid)
        return incident

    def _update(self, incident: _Incident, **values: Any) -> None:
        if incident.row_id is not None:
            self.tell("store", Update("incidents", incident.row_id, fields_of(**values)))

    def _alert(self, event: str, level: str, env: str, **data: Any) -> None:
        """An alert: a bus event, which the bus logs once (at ``level``), stores and streams."""
        self.publish(event, level=level, env=env, **data)


def incident_rows(env: str = "", limit: int = 20) -> list[dict[str, Any]]:
    """Recent incidents from the store, newest first (the database must be open)."""
    query: Any = Incident.select().order_by(Incident.started.desc())
    if env:
        query = query.where(Incident.env == env)
    rows: list[dict[str, Any]] = list(query.limit(max(1, min(limit, 1000))).dicts())
    return rows
