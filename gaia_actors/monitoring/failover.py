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

Every failure is an *incident* on record (``incidents``: when it started, was detected and
recovered).

Flapping is damped: at most ``flap_max`` failovers per environment within ``flap_window``
seconds. Beyond that the agent raises ``alert.flapping`` and leaves the environment to
supervision until the window has room again. Alerts — ``alert.degraded``, ``alert.failed``,
``alert.flapping`` — are bus events (logged once by the bus, stored, streamed).

The agent's inputs: ``HealthRound`` from the monitor after every round (``WatchHealth``), and
bus events ``health.*``, ``environment.*`` and ``supervisor.*``.
"""

from __future__ import annotations

import time
from typing import Any

from gaia_actors.events import (
    AlertEvent,
    EnvironmentEvent,
    FailoverEvent,
    HealthEvent,
    IncidentEvent,
    SupervisorEvent,
    matches,
)
from gaia_actors.layout import actor_name, env_of
from gaia_actors.messages import (
    Event,
    Fail,
    GetIncidents,
    HealthReport,
    HealthRound,
    Subscribe,
    Unsubscribe,
    WatchHealth,
)
from gaia_actors.monitoring.incidents import EnvWatch, IncidentBook, incident_rows
from gaia_actors.monitoring.monitor import monitor_restarted
from gaia_actors.settings import Settings
from supervisors import Link

__all__ = ["FailoverAgent"]

EVENT_PATTERNS = (HealthEvent.ALL, EnvironmentEvent.ALL, SupervisorEvent.ALL)


class FailoverAgent(IncidentBook):
    """Turns hung environments into supervised failures and records every incident."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.cfg = settings.failover
        self.envs = {env: EnvWatch() for env in settings.environments}
        self.triggered = 0
        self.suppressed = 0

    def on_start(self) -> None:
        self._take_over_open_incidents()
        self.tell("bus", Subscribe(self.name, EVENT_PATTERNS))
        self.tell("monitor", WatchHealth(self.name))

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
        watch = self.envs.setdefault(report.env, EnvWatch())
        watch.status = report.status
        self._count(watch, report)
        if watch.run >= self.cfg.down_checks and report.status == "down":
            self._fail_over(report.env, watch, report)
        elif report.status == "healthy" and report.observation == "pass":
            # The smoothed status tolerates a failing check; a recovery needs a passing one.
            self._check_recovered(report.env, watch, report.checked_at, report.pid)

    def _count(self, watch: EnvWatch, report: HealthReport) -> None:
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

    def _fail_over(self, env: str, watch: EnvWatch, report: HealthReport) -> None:
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
        delivered = self.tell(actor_name(env), Fail(reason, cause=cause))
        watch.failovers.append(time.monotonic())
        incident.failovers += 1
        if delivered:
            watch.failed_pid = report.pid
        else:
            incident.notes.append(f"{actor_name(env)} was not running to receive Fail")
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

    def _flapping(self, env: str, watch: EnvWatch) -> bool:
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
        self, env: str, watch: EnvWatch, checked_at: float, pid: int | None
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
        env = env_of(str(event.get("child", "")))
        watch = self.envs.get(env) if env is not None else None
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
        watch = self.envs.setdefault(event.env, EnvWatch())
        watch.failed_pid = None  # whatever runs now (a new process, or the old one adopted)
        self._note(event.env, f"started pid {event.get('pid')}")

    def _on_exited(self, event: Event) -> None:
        watch = self.envs.setdefault(event.env, EnvWatch())
        watch.run = 0
        watch.failed_pid = event.get("pid")
        code = event.get("code")
        if watch.incident is None:
            watch.incident = self._open(event.env, "exited", event.ts, event.ts, event.get("pid"))
        self._note(event.env, f"process {event.get('pid')} exited with code {code}")

    def _on_parked(self, env: str, error: str) -> None:
        watch = self.envs.setdefault(env, EnvWatch())
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

    # Alerts

    def _alert(self, event: str, level: str, env: str, **data: Any) -> None:
        """An alert: a bus event, which the bus logs once (at ``level``), stores and streams."""
        self.publish(event, level=level, env=env, **data)
