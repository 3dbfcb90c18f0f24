"""What an alert is, and what a receiver is sent: the contract between the alert router and
the receivers.

An ``Alert`` is one condition about one environment (or the daemon), firing or resolved. Its
``key`` is stable while the condition lasts (the same environment failing again is the same
alert), so a receiver can deduplicate on it. A ``Notification`` is one message to one
receiver: a group of alerts that fired together, with an ``id`` that stays the same across
retries and daemon restarts, so a receiver that gets it twice can tell.

``payload()`` is the documented webhook body. Its ``version`` changes only when a field is
removed or changes meaning; new fields may be added within a version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from gaia_actors.formatting import utc_iso
from supervisors.records import record

PAYLOAD_VERSION = "1"

Severity = Literal["info", "warning", "critical"]
Status = Literal["firing", "resolved"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")


def severity_rank(severity: str) -> int:
    """Order of severities, for a receiver's minimum: info < warning < critical."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


@record
class Alert:
    """One alerting condition.

    ``name`` is the alert's kind (``environment_failed``), ``event`` the bus event that raised
    it, ``env`` the environment ('' for the daemon itself). ``started`` is when it began to
    fire, ``ended`` when it resolved (None while firing). ``details`` holds the event's facts.
    """

    key: str
    name: str
    severity: Severity
    status: Status
    env: str
    summary: str
    event: str
    started: float
    ended: float | None = None
    incident_id: int | None = None
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "severity": self.severity,
            "status": self.status,
            "env": self.env,
            "summary": self.summary,
            "event": self.event,
            "incident_id": self.incident_id,
            "starts_at": utc_iso(self.started),
            "ends_at": utc_iso(self.ended),
            "details": dict(self.details),
        }


@record
class Notification:
    """One message to one receiver: ``alerts`` grouped under ``group`` (e.g. ``env=prod`` or
    ``all``). ``status`` is ``firing`` while any of them fires. ``id`` is stable across retries."""

    id: str
    receiver: str
    group: str
    status: Status
    alerts: tuple[Alert, ...]
    created: float
    test: bool = False

    @property
    def severity(self) -> Severity:
        ranks = [severity_rank(a.severity) for a in self.alerts] or [0]
        return SEVERITIES[max(ranks)]

    @property
    def title(self) -> str:
        """One line for a chat message or an e-mail subject."""
        state = "RESOLVED" if self.status == "resolved" else self.severity.upper()
        if len(self.alerts) == 1:
            alert = self.alerts[0]
            where = f" [{alert.env}]" if alert.env else ""
            return f"[{state}]{where} {alert.summary}"
        envs = sorted({a.env for a in self.alerts if a.env})
        where = f" [{', '.join(envs)}]" if envs else ""
        return f"[{state}]{where} {len(self.alerts)} alerts"

    def payload(self) -> dict[str, Any]:
        """The versioned JSON body of the generic webhook (and the command's stdin)."""
        return {
            "version": PAYLOAD_VERSION,
            "id": self.id,
            "receiver": self.receiver,
            "group": self.group,
            "status": self.status,
            "severity": self.severity,
            "title": self.title,
            "test": self.test,
            "created_at": utc_iso(self.created),
            "alerts": [a.as_dict() for a in self.alerts],
        }
