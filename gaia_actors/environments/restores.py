"""Putting a verified backup in place of an environment's live data, or starting over.

On disk::

    <env_dir>/data/                      the live databases
    <env_dir>/data.restoring.tmp/        a restore's staging copy (renamed into place last)
    <env_dir>/data.replaced-<stamp>/     what a restore or reset moved aside

The live directory is replaced by renames only, so a crash leaves either the old data, the new
data, or a complete staging copy that :func:`repair_data` puts in place at the next start.
The caller stops the environment's process first (the environment actor, or its recovery
ladder while the actor is down): one caller per environment at a time.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from gaia_actors import process
from gaia_actors.environments.backups import (
    TMP,
    BackupError,
    BackupRecord,
    NoVerifiedBackup,
    backup_dirs,
    backup_problem,
    load_backup,
    stamp,
)
from supervisors.records import record

__all__ = ["RestoreResult", "choose", "move_aside", "repair_data", "reset_data", "restore"]


@record
class RestoreResult:
    """What :func:`restore` used, what it refused and why, and where the old data went."""

    used: BackupRecord
    skipped: tuple[tuple[str, str], ...]  # (backup id, reason), newest first
    saved_copy_path: Path | None  # None when there was no data directory to replace


def _unique_name(parent: Path, name: str) -> Path:
    """A path ``parent/name`` (or ``name-N``) that does not exist yet."""
    for attempt in range(1000):
        candidate = parent / (name if attempt == 0 else f"{name}-{attempt}")
        if not os.path.lexists(candidate):
            return candidate
    raise BackupError(parent, f"cannot find a free name for {name}")


def choose(backups_dir: Path, backup: str | None) -> tuple[BackupRecord, list[tuple[str, str]]]:
    """The newest backup that verifies (or the named one), and the refused ones."""
    if backup is not None and (Path(backup).name != backup or backup in ("", ".", "..")):
        raise NoVerifiedBackup(backups_dir, [(backup, "not a backup id")])
    candidates = [backups_dir / backup] if backup is not None else backup_dirs(backups_dir)
    skipped: list[tuple[str, str]] = []
    for path in candidates:
        problem = backup_problem(path)
        if problem is None:
            return load_backup(path), skipped
        skipped.append((path.name, problem))
    raise NoVerifiedBackup(backups_dir, skipped)


def _staging_dir(data_dir: Path) -> Path:
    return data_dir.with_name(f"{data_dir.name}.restoring{TMP}")


def _stage(record: BackupRecord, data_dir: Path) -> Path:
    """Copy the backup's databases into a fresh directory beside ``data_dir``."""
    staging = _staging_dir(data_dir)
    if staging.exists():
        shutil.rmtree(staging)  # left by a crash during an earlier restore
    staging.mkdir(parents=True)
    for copy in record.databases:
        target = staging / copy.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy.path, target)
        with open(target, "rb") as done:
            os.fsync(done.fileno())
        process.fsync_dir(target.parent)
    process.fsync_dir(staging)
    return staging


def move_aside(data_dir: Path, now: datetime | None) -> Path | None:
    """Rename ``data_dir`` to ``data.replaced-<stamp>``; None if there is no data dir."""
    if not data_dir.exists():
        return None
    moment = stamp(now or datetime.now(UTC))
    saved = _unique_name(data_dir.parent, f"{data_dir.name}.replaced-{moment}")
    os.rename(data_dir, saved)
    return saved


def restore(
    data_dir: Path, backups_dir: Path, backup: str | None = None, *, now: datetime | None = None
) -> RestoreResult:
    """Replace the databases in ``data_dir`` with a verified backup.

    The caller must stop the environment's process first: a process still holding the
    database open would keep writing to the files moved aside.

    Uses ``backup`` (an id) if given, else the newest backup that verifies; every refused
    one is reported in ``skipped`` with the reason. The current ``data_dir`` is kept whole as
    ``data.replaced-<stamp>/`` (its ``-wal``/``-shm`` files go with it, so nothing stale can
    be replayed onto the restored files), and the restored databases arrive as a new
    directory renamed into place. Raises NoVerifiedBackup when nothing verifies.
    """
    record, skipped = choose(backups_dir, backup)
    staging = _stage(record, data_dir)
    saved = move_aside(data_dir, now)
    os.rename(staging, data_dir)
    process.fsync_dir(data_dir.parent)
    return RestoreResult(record, tuple(skipped), saved)


def repair_data(data_dir: Path) -> bool:
    """Finish a restore that a crash cut short; run before anything opens ``data_dir``.

    :func:`restore` moves ``data_dir`` aside only once the staging directory is complete
    and synced, then renames the staging directory into place. A crash between those two
    renames leaves no ``data_dir`` and a complete staging directory: without this the
    service would start on an empty database. Returns True when it finished such a restore;
    a staging directory beside an existing ``data_dir`` is an unfinished copy and is removed.
    """
    staging = _staging_dir(data_dir)
    if not staging.is_dir():
        return False
    if os.path.lexists(data_dir):
        shutil.rmtree(staging)
        return False
    os.rename(staging, data_dir)
    process.fsync_dir(data_dir.parent)
    return True


def reset_data(data_dir: Path, now: datetime | None = None) -> Path | None:
    """Start over with an empty ``data_dir`` (for ``reset_on_error`` environments such as
    dev), keeping the old one as ``data.replaced-<stamp>/``, which is returned. The caller
    stops the process first, as for :func:`restore`."""
    saved = move_aside(data_dir, now)
    data_dir.mkdir(parents=True)
    process.fsync_dir(data_dir.parent)
    return saved
