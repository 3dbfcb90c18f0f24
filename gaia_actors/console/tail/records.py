"""A log record as ``tail`` sees it: one line parsed into an `Entry`, its level's rank, its
time, and the ``--since`` spellings (a duration back from now, a time of today, a date)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

LEVELS = ("debug", "info", "warning", "error", "critical")


LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}


# Spellings other emitters use for the same levels (structlog logs `exception` as `error` today,
# older versions wrote `exception`).
LEVEL_ALIASES = {"warn": "warning", "exception": "error", "err": "error", "fatal": "critical"}


def level_rank(level: object) -> int | None:
    """The rank of a level name (debug 0 .. critical 4), or None for an unknown level."""
    if not isinstance(level, str):
        return None
    name = level.lower()
    return LEVEL_RANK.get(LEVEL_ALIASES.get(name, name))


def record_time(record: Mapping[str, Any]) -> datetime | None:
    """The record's ``timestamp``, aware (a naive one is UTC, which is what the daemon writes)."""
    value = record.get("timestamp")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the log: the text as written, and the record when it is a JSON object."""

    raw: str
    record: dict[str, Any] | None

    @property
    def malformed(self) -> bool:
        return self.record is None


def parse_line(raw: str) -> Entry:
    """Parse one log line; anything but a JSON object is kept as a malformed entry, never fatal."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: a line of ten thousand `[`
        return Entry(raw, None)
    return Entry(raw, value if isinstance(value, dict) else None)


_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime) -> datetime:
    """The moment ``--since`` names, in UTC.

    A duration back from ``now`` (``90s``, ``5m``, ``1h30m``, ``2d``) or an ISO 8601 time
    (``2026-11-28T07:55:00Z``, ``2026-11-28 07:55``, ``2026-11-28``, ``07:55`` for today).
    A time without an offset is local time, as with ``journalctl --since`` and ``docker logs``.
    """
    spec = text.strip()
    duration = _parse_duration(spec)
    if duration is not None:
        return now - duration
    moment = _parse_moment(spec, now)
    if moment is None:
        raise ValueError(
            f"cannot read {text!r} as a duration (like 90s, 5m, 1h30m, 2d) "
            "or an ISO time (like 2026-11-28T07:55:00Z, 2026-11-28 07:55, 07:55)"
        )
    return moment


def _parse_duration(spec: str) -> timedelta | None:
    compact = spec.replace(" ", "").lower()
    if not _DURATION.fullmatch(compact):
        return None
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(compact))
    return timedelta(seconds=seconds)


def _parse_moment(spec: str, now: datetime) -> datetime | None:
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(spec)
    except ValueError:
        moment = _today_at(spec, now)
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive: the local wall clock
    return moment.astimezone(UTC)


def _today_at(spec: str, now: datetime) -> datetime | None:
    if ":" not in spec:  # a bare "10" is a forgotten unit, not ten o'clock
        return None
    try:
        clock = time.fromisoformat(spec)
    except ValueError:
        return None
    local_now = now.astimezone()
    if clock.tzinfo is not None:
        return datetime.combine(now.astimezone(clock.tzinfo).date(), clock)
    return datetime.combine(local_now.date(), clock, tzinfo=local_now.tzinfo)
