"""Notifications to send in the receiver tests: fixed ids and times, so payloads are exact."""

from __future__ import annotations

from typing import Any

from gaia_actors.alerts.model import Alert, Notification
from gaia_actors.events import EnvironmentEvent

STARTED = 1_796_659_200.0  # 2026-12-07T16:00:00+00:00


def alert(index: int = 0, **changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "key": f"environment_failed:prod:{index}",
        "name": "environment_failed",
        "severity": "critical",
        "status": "firing",
        "env": "prod",
        "summary": "prod failed: restart budget spent, data verified, nothing to roll back",
        "event": EnvironmentEvent.FAILED,
        "started": STARTED + index,
        "incident_id": 42 + index,
        "details": {"reason": "exit 1", "restarts": 5},
    }
    return Alert(**(fields | changes))


def notification(*alerts: Alert, **changes: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": "n-0001",
        "receiver": "ops",
        "group": "env=prod",
        "status": "firing",
        "alerts": alerts or (alert(),),
        "created": STARTED + 1,
    }
    return Notification(**(fields | changes))
