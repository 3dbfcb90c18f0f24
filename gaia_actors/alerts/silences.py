"""Silences: alerts that match are stored but not sent until the silence ends.

A silence matches an environment glob and an alert-name glob (``silence prod 30m`` is env
``prod`` and alert ``*``; ``silence 'promotion_*' 1h`` the other way round). The daemon's
own alerts have no environment: only env ``*`` matches them.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import time
from typing import Any

from gaia_actors.alerts.model import Alert
from gaia_actors.errors import UsageError
from gaia_actors.store.models import SilenceRow
from supervisors.records import record

MAX_SILENCE = 30 * 86400.0  # a forgotten silence must still end
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@record
class Silence:
    id: int
    env: str
    alert: str
    reason: str
    created: float
    expires: float
    ended: float | None = None

    def active(self, now: float) -> bool:
        return self.ended is None and self.created <= now < self.expires

    def matches(self, alert: Alert) -> bool:
        env_ok = fnmatch.fnmatchcase(alert.env, self.env) if alert.env else self.env == "*"
        return env_ok and fnmatch.fnmatchcase(alert.name, self.alert)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def parse_duration(text: str) -> float:
    """``30m``, ``2h``, ``1d``, ``90`` (seconds) into seconds; UsageError names the argument."""
    match = _DURATION.fullmatch(text.strip())
    seconds = float(match[1]) * _UNIT[match[2]] if match else 0.0
    if not 0 < seconds <= MAX_SILENCE:
        raise UsageError(
            "silence",
            f"expected a number of seconds, or with s, m, h or d (30m, 2h), "
            f"more than 0 and at most 30d; got {text!r}",
            "DURATION",
        )
    return seconds


def from_row(row: Any) -> Silence:
    return Silence(int(row.id), row.env, row.alert, row.reason, row.created, row.expires, row.ended)


def active_silences(now: float | None = None) -> list[Silence]:
    """Silences in force, read from the store (any thread)."""
    now = time.time() if now is None else now
    model: Any = SilenceRow
    rows = model.select().where(model.ended.is_null(), model.expires > now, model.created <= now)
    return [from_row(row) for row in rows.order_by(model.id)]


def silencing(silences: list[Silence], alert: Alert, now: float) -> Silence | None:
    return next((s for s in silences if s.active(now) and s.matches(alert)), None)
