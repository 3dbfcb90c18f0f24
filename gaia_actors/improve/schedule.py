"""Cycles on their own: which targets have a schedule, and when one is due.

``schedule`` (in ``[improve]`` for the configured target, in ``[improve.targets.NAME]`` for
another) is ``"none"``, ``"hourly"``, ``"daily"``, a number of seconds, or ``"on-commit"``:

- an interval is due when the target's last *scheduled* cycle started that long ago (or it has
  none: a daemon started with ``daily`` runs one at once, then one a day, across restarts);
- ``on-commit`` is due when the head of the target's branch (``branch``, or the checked-out
  one) is a commit no cycle of that target has read yet (the store keeps each cycle's commit,
  so a commit made while the daemon was down starts a cycle when it is back).

The engine checks every ``tick`` seconds and runs due cycles one at a time (a due cycle waits
for the running one). The clock is the store's record, not a timer: a restarted engine picks
the schedule up where the store says it is.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from pathlib import Path

from gaia_actors.improve import history
from gaia_actors.improve.commands import run_command, which
from gaia_actors.improve.errors import CommandError
from gaia_actors.settings import Settings, backup_interval
from supervisors.records import record

ON_COMMIT = "on-commit"
MAX_TICK = 60.0
GIT_TIMEOUT = 10.0


@record
class Scheduled:
    """A target with a schedule: ``every`` seconds, or on each new commit (``every`` None)."""

    name: str  # "" for the configured target, else its [improve.targets] table
    target: Path
    every: float | None
    branch: str = ""

    @property
    def trigger(self) -> str:
        return "commit" if self.every is None else "schedule"


def scheduled_targets(settings: Settings) -> list[Scheduled]:
    """Every target whose schedule is not ``none``."""
    improve = settings.improve
    entries = [("", improve.target, improve.schedule, improve.branch)]
    entries += [(n, t.path, t.schedule, t.branch) for n, t in improve.targets.items()]
    return [
        Scheduled(name, settings.resolve(path), _every(schedule), branch)
        for name, path, schedule, branch in entries
        if schedule != "none"
    ]


def without_schedules(settings: Settings) -> Settings:
    """``settings`` with every schedule off: for a process that runs one cycle and exits."""
    improve = settings.improve
    targets = {n: dataclasses.replace(t, schedule="none") for n, t in improve.targets.items()}
    quiet = dataclasses.replace(improve, schedule="none", targets=targets)
    return dataclasses.replace(settings, improve=quiet)


def _every(schedule: str | float) -> float | None:
    return None if schedule == ON_COMMIT else backup_interval(schedule)


def tick(scheduled: Iterable[Scheduled], commit_poll: float) -> float:
    """Seconds between checks: often enough for the shortest interval and the commit poll."""
    periods = [s.every if s.every is not None else commit_poll for s in scheduled]
    return max(0.05, min([MAX_TICK, *periods]))


def head_of(target: Path, branch: str) -> str:
    """The commit at the head of ``branch`` (or of the checked-out branch), "" if none."""
    if which("git") is None:
        return ""
    ref = f"refs/heads/{branch}" if branch else "HEAD"
    try:
        result = run_command(
            ["git", "rev-parse", "--verify", "-q", ref], target, timeout=GIT_TIMEOUT
        )
    except CommandError:
        return ""
    return result.stdout.strip() if result.ok else ""


def due(entry: Scheduled, seen: str, now: float | None = None) -> tuple[bool, str]:
    """(is a cycle due, the commit it is for); ``seen`` is the last commit a cycle read."""
    if entry.every is None:
        head = head_of(entry.target, entry.branch)
        return bool(head) and head != seen, head
    last = history.last_started(str(entry.target), entry.trigger)
    clock = time.time() if now is None else now
    return last is None or clock - last >= entry.every, ""
