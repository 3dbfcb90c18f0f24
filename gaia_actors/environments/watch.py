"""DataWatch: what an environment actor knows of its live data between two messages.

The actor owns one and asks it, in its mailbox: whether databases were lost since the last
look (cheap ``stat`` snapshots, see data.py), what ``status`` says about the data, whether a
backup schedule has anything to back up, and, before a restore after a loss, to copy the
deleted databases out of the still-running process.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from gaia_actors.environments import alerts, backups, data
from gaia_actors.layout import Layout
from gaia_actors.replies import DataLoss
from gaia_actors.settings import backup_interval
from supervisors.records import record


@record
class DataStatus:
    """The data part of an environment's status (``EnvStatus`` carries the same fields)."""

    databases: tuple[str, ...]
    watched: tuple[str, ...]
    backup_note: str
    data_loss: DataLoss | None
    replaced_data: tuple[str, ...]
    undo: str | None


class DataWatch:
    """The data-loss watch and the data part of an environment's status."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.patterns = layout.config.databases
        self.stamps: dict[str, data.FileStamp] | None = None  # None: take a new baseline
        self.loss: DataLoss | None = None  # the last loss noticed, for status
        self.backup_note = ""

    def look(self) -> list[str]:
        """What was lost since the last look (nothing on the first look after a rebaseline)."""
        before = self.stamps
        self.stamps = data.stamps(self.layout.data, self.patterns, before)
        return data.losses(before, self.stamps) if before is not None else []

    def rebaseline(self) -> None:
        """The files changed on purpose (a restore, reset or undo): not a loss. What is there
        now is the baseline at once, so a database lost before the next look is a loss."""
        self.stamps = data.stamps(self.layout.data, self.patterns)

    def noticed(self, lost: list[str]) -> DataLoss:
        self.loss = DataLoss(time.time(), tuple(lost))
        return self.loss

    def restoring(self, loss: DataLoss, backup: str) -> None:
        """``loss`` is being restored from ``backup`` (said while it is the last loss)."""
        if self.loss is loss:
            self.loss = dataclasses.replace(loss, restored=backup)

    def rescue(self, pid: int) -> Path | None:
        """Copy the databases deleted under process ``pid`` out of it (OSError if it cannot);
        the directory they went to, or None when there were none."""
        into = self.layout.root / f"data.rescuing{backups.TMP}"
        shutil.rmtree(into, ignore_errors=True)
        return into if data.rescue_deleted(pid, self.layout.data, into) else None

    def new_backup_note(self) -> str:
        """The backup note if it is new since the last call (to be said once), else ""."""
        note = self.note(data.find_databases(self.layout.data, self.patterns))
        new, self.backup_note = note != self.backup_note, note
        return note if new else ""

    def note(self, found: list[Path]) -> str:
        """Why scheduled backups would back up nothing, or "" (no schedule, or databases)."""
        config = self.layout.config
        if found or backup_interval(config.backup_schedule) is None:
            return ""
        return (
            f"backup_schedule = {config.backup_schedule!r} but nothing under "
            f"{self.layout.data} matches databases = {list(self.patterns)}"
        )

    def status(self) -> DataStatus:
        found = data.find_databases(self.layout.data, self.patterns)
        replaced = data.replaced_copies(self.layout.data)
        return DataStatus(
            databases=tuple(data.relative_name(self.layout.data, p) for p in found),
            watched=tuple(sorted(self.stamps or {})),
            backup_note=self.note(found),
            data_loss=self.loss,
            replaced_data=tuple(str(p) for p in replaced[:5]),
            undo=alerts.undo_command(self.layout.name) if replaced else None,
        )
