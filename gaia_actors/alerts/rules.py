"""Which bus events raise an alert, and which resolve one.

Each rule names the alert (its kind, what silences and receivers' ``events`` globs match), how
severe it is and whether it lasts: a lasting alert fires until its resolving event (prod
healthy again after FAILED), and fires once while it lasts; the others are one-off facts (data
restored from a backup) that are sent once and end there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

from gaia_actors.alerts.model import Severity
from gaia_actors.events import (
    AlertEvent,
    EnvironmentEvent,
    HealthEvent,
    PipelineEvent,
    SupervisorEvent,
)
from gaia_actors.messages import Event
from supervisors.records import record

# Alert names, as receivers' ``events`` globs and silences match them.
ENVIRONMENT_FAILED = "environment_failed"
ENVIRONMENT_BLOCKED = "environment_blocked"
ENVIRONMENT_DEGRADED = "environment_degraded"
ENVIRONMENT_FLAPPING = "environment_flapping"
ENVIRONMENT_ROLLED_BACK = "environment_rolled_back"
DATA_REPLACED = "data_replaced"
DATA_LOSS = "data_loss"
PROMOTION_FAILED = "promotion_failed"
IMPROVE_REGRESSED = "improve_regressed"
DAEMON_ESCALATED = "daemon_escalated"
TEST = "test"
ALERT_NAMES = (
    ENVIRONMENT_FAILED,
    ENVIRONMENT_BLOCKED,
    ENVIRONMENT_DEGRADED,
    ENVIRONMENT_FLAPPING,
    ENVIRONMENT_ROLLED_BACK,
    DATA_REPLACED,
    DATA_LOSS,
    PROMOTION_FAILED,
    IMPROVE_REGRESSED,
    DAEMON_ESCALATED,
)

# The bus events the router reads (the degraded timer is the router's own).
HEALTH_CHANGED = HealthEvent.CHANGED
EVENTS = (
    EnvironmentEvent.FAILED,
    EnvironmentEvent.BLOCKED,
    EnvironmentEvent.UNBLOCKED,
    EnvironmentEvent.HEALTHY,
    EnvironmentEvent.ROLLED_BACK,
    HEALTH_CHANGED,
    AlertEvent.DATA_REPLACED,
    AlertEvent.DATA_LOSS,
    AlertEvent.FLAPPING,
    AlertEvent.IMPROVE_REGRESSED,
    PipelineEvent.FAILED,
    PipelineEvent.FINISHED,
)


@record
class Change:
    """An alert to fire or resolve. ``key`` is stable while a lasting alert's condition lasts
    (a one-off's key is unique to its event)."""

    action: Literal["fire", "resolve"]
    key: str
    name: str
    env: str = ""
    severity: Severity = "warning"
    summary: str = ""
    lasting: bool = True
    event: str = ""
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def fire(name: str, event: Event, severity: Severity, summary: str, **kw: Any) -> Change:
    lasting = bool(kw.pop("lasting", True))
    scope = str(kw.pop("scope", event.env))
    key = f"{name}:{scope}" if lasting else f"{name}:{scope}:{event.ts:.6f}"
    return Change(
        "fire", key, name, event.env, severity, summary, lasting, event.name, dict(event.data)
    )


def resolve(name: str, scope: str) -> Change:
    return Change("resolve", f"{name}:{scope}", name)


def _failed(event: Event) -> list[Change]:
    reason = event.get("reason") or event.get("error") or "recovery ladder exhausted"
    summary = f"{event.env} is FAILED and parked: {reason}"
    return [fire(ENVIRONMENT_FAILED, event, "critical", summary)]


def _blocked(event: Event) -> list[Change]:
    summary = f"{event.env} is blocked: {event.get('reason') or event.get('error')}"
    return [fire(ENVIRONMENT_BLOCKED, event, "critical", summary)]


def _healthy(event: Event) -> list[Change]:
    """Healthy again: FAILED and degraded are over. The environment's own word (its actor
    runs, so it is not blocked) ends a block too: after a daemon restart no supervisor
    unblocks it, and the alerts taken up at start are resolved by the first healthy check."""
    if event.name == HEALTH_CHANGED and event.get("new") != "healthy":
        return []
    over = [resolve(ENVIRONMENT_FAILED, event.env), resolve(ENVIRONMENT_DEGRADED, event.env)]
    if event.name == EnvironmentEvent.HEALTHY:
        over.append(resolve(ENVIRONMENT_BLOCKED, event.env))
    return over


def _once(
    name: str, severity: Severity, summary: Callable[[Event], str]
) -> Callable[[Event], list[Change]]:
    """A rule for a one-off alert: sent once, with nothing to resolve it."""
    return lambda event: [fire(name, event, severity, summary(event), lasting=False)]


def _joined(event: Event, key: str) -> str:
    return "; ".join(str(item) for item in event.get(key) or ())


def _promotion_failed(event: Event) -> list[Change]:
    if event.get("status") == "cancelled":
        return []  # an operator's own decision
    rollback = str(event.get("rollback") or "")
    severity: Severity = "critical" if rollback == "failed" else "warning"
    kind = str(event.get("kind") or event.env)
    after = f"; rollback: {rollback}" if rollback else ""
    summary = f"promotion {kind} failed: {event.get('error')}{after}"
    return [fire(PROMOTION_FAILED, event, severity, summary, scope=kind)]


def _promotion_finished(event: Event) -> list[Change]:
    return [resolve(PROMOTION_FAILED, str(event.get("kind") or event.env))]


RULES: dict[str, Callable[[Event], list[Change]]] = {
    EnvironmentEvent.FAILED: _failed,
    EnvironmentEvent.BLOCKED: _blocked,
    EnvironmentEvent.UNBLOCKED: lambda e: [resolve(ENVIRONMENT_BLOCKED, e.env)],
    EnvironmentEvent.HEALTHY: _healthy,
    HEALTH_CHANGED: _healthy,
    EnvironmentEvent.ROLLED_BACK: _once(
        ENVIRONMENT_ROLLED_BACK,
        "warning",
        lambda e: (
            f"{e.env} rolled back from {e.get('previous')} to {e.get('release')} "
            f"({e.get('reason')})"
        ),
    ),
    AlertEvent.DATA_REPLACED: _once(
        DATA_REPLACED,
        "critical",
        lambda e: f"{e.env}'s data was replaced ({e.get('kind')}): {e.get('why')}",
    ),
    AlertEvent.DATA_LOSS: _once(
        DATA_LOSS,
        "critical",
        lambda e: f"{e.env} lost data: {_joined(e, 'lost') or 'a database is gone'}",
    ),
    AlertEvent.FLAPPING: _once(
        ENVIRONMENT_FLAPPING,
        "warning",
        lambda e: f"{e.env} is flapping: {e.get('failovers')} failovers within {e.get('window')} s",
    ),
    AlertEvent.IMPROVE_REGRESSED: _once(
        IMPROVE_REGRESSED,
        "warning",
        lambda e: (
            "an improve cycle regressed: " + (_joined(e, "reasons") or "see improve --history")
        ),
    ),
    PipelineEvent.FAILED: _promotion_failed,
    PipelineEvent.FINISHED: _promotion_finished,
}


def changes(event: Event) -> list[Change]:
    """The alerts ``event`` fires or resolves (none for most events)."""
    rule = RULES.get(event.name)
    return rule(event) if rule is not None else []


def degraded(env: str, since: float, reason: str) -> Change:
    """An environment degraded for longer than ``[alerts] degraded_after``."""
    event = Event(HEALTH_CHANGED, env=env, ts=since)
    summary = f"{env} has been degraded since {since:.0f}: {reason or 'see health ' + env}"
    return fire(ENVIRONMENT_DEGRADED, event, "warning", summary)


def escalated(child: str, supervisor: str, reason: str, ts: float) -> Change:
    """The root supervisor gave up: the daemon exits after this alert."""
    event = Event(SupervisorEvent.ESCALATE, ts=ts)
    summary = f"the daemon is exiting: {child} under {supervisor} kept failing ({reason})"
    return fire(DAEMON_ESCALATED, event, "critical", summary, lasting=False)
