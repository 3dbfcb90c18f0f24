"""Backups of an environment's SQLite databases: take, verify, list, prune.

On disk::

    <env_dir>/backups/<backup_id>/<name>         online-backup copy of data/<name> (a
                                                 path under data/, e.g. app.db, sub/x.sqlite)
    <env_dir>/backups/<backup_id>/MANIFEST.json  written last: sizes, sha256, integrity_check

``backup_id`` is the UTC time the backup was taken, ``20261128T075501.123456Z`` (a ``-N``
suffix only if two backups share a microsecond), so ids sort oldest to newest. A backup
directory without a manifest is incomplete and never used.

Copies are made with SQLite's online backup API in one step, which reads one consistent
snapshot even while the service writes (the file of a live WAL database is never copied:
https://www.sqlite.org/backup.html), then checked with ``PRAGMA integrity_check`` and hashed.

Nothing here locks: one caller per environment at a time (the environment actor). Putting a
backup back in place of the live data is ``gaia_actors.environments.restores``.

Its errors, ``BackupError`` and its subclasses, are drawn in the tree of ``gaia_actors.errors``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gaia_actors import process
from gaia_actors.errors import GaiaError
from supervisors.records import record

__all__ = [
    "MANIFEST",
    "BackupError",
    "BackupRecord",
    "DatabaseCopy",
    "NoVerifiedBackup",
    "NothingToBackUp",
    "backup_dirs",
    "backup_problem",
    "list_backups",
    "load_backup",
    "prune_backups",
    "stamp",
    "take_backup",
    "verify_backup",
]

MANIFEST = "MANIFEST.json"
TMP = ".tmp"
_BUSY_TIMEOUT = 30.0  # seconds to wait for a lock on a database in rollback-journal mode


# --------------------------------------------------------------------------- errors


class BackupError(GaiaError):
    """A backup, its verification or a restore failed; ``path`` names the file."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


class NothingToBackUp(BackupError):
    """The data directory holds no database."""


class NoVerifiedBackup(BackupError):
    """No backup passed verification; ``skipped`` says why each one was refused."""

    def __init__(self, backups_dir: Path, skipped: Sequence[tuple[str, str]]) -> None:
        self.skipped = tuple(skipped)
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped) or "there are none"
        super().__init__(backups_dir, f"no backup verifies ({reasons})")


# --------------------------------------------------------------------------- values


@record
class DatabaseCopy:
    """One database inside a backup."""

    name: str  # path under the data directory, e.g. "app.db" or "sub/app.sqlite"
    path: Path
    size: int
    sha256: str
    integrity: str  # "ok", or what PRAGMA integrity_check said


@record
class BackupRecord:
    """A complete backup, as its manifest describes it.

    ``sha256`` covers the whole backup: the sha256 of the ``sha256sum``-style listing of its
    databases (``<sha256>  <name>`` lines, sorted by name). ``integrity`` is "ok" when every
    copy passed ``integrity_check``, else the first failure; ``verified`` is that check at the
    time the backup was taken (call :func:`verify_backup` to check again).
    """

    id: str
    path: Path  # the backup directory
    created: datetime
    size: int
    sha256: str
    integrity: str
    verified: bool
    databases: tuple[DatabaseCopy, ...]


# --------------------------------------------------------------------------- helpers


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _sha256(path: Path) -> str:
    with open(path, "rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()


def _combined_sha256(copies: Sequence[DatabaseCopy]) -> str:
    listing = "".join(f"{c.sha256}  {c.name}\n" for c in sorted(copies, key=lambda c: c.name))
    return hashlib.sha256(listing.encode()).hexdigest()


def _integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of a file nothing else writes; opened immutable, so the
    check neither creates -wal/-shm files nor changes a byte (the sha256 stays valid)."""
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True)
        try:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        return f"unreadable: {exc}"
    messages = [str(row[0]) for row in rows]
    return "ok" if messages == ["ok"] else "; ".join(messages[:10])


def _online_copy(source: Path, target: Path) -> None:
    """Copy a live database with the backup API, in one step: one consistent snapshot."""
    src = sqlite3.connect(source, timeout=_BUSY_TIMEOUT)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: everything in one step, under one read transaction
        finally:
            dst.close()
    finally:
        src.close()


def _unique_dir(parent: Path, name: str) -> Path:
    """Create ``parent/name`` (or ``name-1``, ``name-2``... if taken) and return it."""
    for attempt in range(1000):
        candidate = parent / (name if attempt == 0 else f"{name}-{attempt}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate
    raise BackupError(parent, f"cannot find a free name for {name}")


# --------------------------------------------------------------------------- take


def _copy_database(source: Path, name: str, backup_dir: Path) -> DatabaseCopy:
    final = backup_dir / name
    tmp = backup_dir / f"{name}{TMP}"
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        _online_copy(source, tmp)
        os.replace(tmp, final)
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(source, f"online backup failed: {exc}") from exc
    return DatabaseCopy(name, final, final.stat().st_size, _sha256(final), _integrity(final))


def _manifest(backup_id: str, created: datetime, copies: Sequence[DatabaseCopy]) -> dict[str, Any]:
    return {
        "id": backup_id,
        "created": created.isoformat(),
        "sha256": _combined_sha256(copies),
        "databases": [
            {"name": c.name, "size": c.size, "sha256": c.sha256, "integrity": c.integrity}
            for c in copies
        ],
    }


def take_backup(
    data_dir: Path,
    backups_dir: Path,
    now: datetime | None = None,
    *,
    sources: Sequence[Path] | None = None,
) -> BackupRecord:
    """Back up ``sources`` (databases under ``data_dir``; default: every ``*.db`` in it)
    into a new ``backups_dir/<id>/``, each under its path relative to ``data_dir``.

    Each copy goes to a temp file renamed into place, then is integrity-checked and hashed;
    the manifest is written last, atomically. Safe while the service writes. A copy that
    fails ``integrity_check`` (the live database is damaged) is still recorded, with
    ``verified`` False, so the failure is on record; restore never uses it.
    """
    if sources is None:
        sources = sorted(p for p in data_dir.glob("*.db") if p.is_file())
    if not sources:
        raise NothingToBackUp(data_dir, "no database to back up")
    created = now or datetime.now(UTC)
    backup_dir = _unique_dir(backups_dir, stamp(created))
    try:
        copies = [
            _copy_database(source, source.relative_to(data_dir).as_posix(), backup_dir)
            for source in sources
        ]
        manifest = _manifest(backup_dir.name, created, copies)
        process.write_atomic(backup_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(backup_dir, ignore_errors=True)
        raise
    process.fsync_dir(backups_dir)
    return load_backup(backup_dir)


# --------------------------------------------------------------------------- read, verify


def load_backup(path: Path) -> BackupRecord:
    """The backup in directory ``path``; BackupError when its manifest is missing or bad."""
    try:
        raw = json.loads((path / MANIFEST).read_text())
        copies = tuple(
            DatabaseCopy(
                d["name"], path / _inside(d["name"]), d["size"], d["sha256"], d["integrity"]
            )
            for d in raw["databases"]
        )
        created = datetime.fromisoformat(raw["created"])
        combined = raw["sha256"]
    except FileNotFoundError as exc:
        raise BackupError(path, "incomplete: no manifest") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(path, f"unreadable manifest ({type(exc).__name__}: {exc})") from exc
    failures = [f"{c.name}: {c.integrity}" for c in copies if c.integrity != "ok"]
    return BackupRecord(
        id=path.name,
        path=path,
        created=created,
        size=sum(c.size for c in copies),
        sha256=combined,
        integrity=failures[0] if failures else "ok",
        verified=not failures and bool(copies),
        databases=copies,
    )


def _inside(name: object) -> str:
    """A manifest's database name, refused (ValueError) unless it stays inside the backup."""
    if not isinstance(name, str) or any(p in ("", ".", "..") for p in name.split("/")):
        raise ValueError(f"database name {name!r} is not a path inside the backup")
    return name


def _check_copy(copy: DatabaseCopy) -> str | None:
    if not copy.path.is_file():
        return f"{copy.name} is missing"
    if _sha256(copy.path) != copy.sha256:
        return f"{copy.name}: sha256 mismatch (the file changed since the backup)"
    integrity = _integrity(copy.path)
    return None if integrity == "ok" else f"{copy.name}: integrity_check: {integrity}"


def backup_problem(backup: BackupRecord | Path | str) -> str | None:
    """Why a backup cannot be used (missing manifest, missing file, sha256 mismatch, failed
    ``integrity_check``), or None when it verifies now."""
    path = backup.path if isinstance(backup, BackupRecord) else Path(backup)
    try:
        record = load_backup(path)
    except BackupError as exc:
        return str(exc).removeprefix(f"{path}: ")
    if not record.databases:
        return "no databases in the manifest"
    for copy in record.databases:
        if (problem := _check_copy(copy)) is not None:
            return problem
    return None


def verify_backup(backup: BackupRecord | Path | str) -> bool:
    """Re-check every copy's sha256 and ``integrity_check`` against the manifest."""
    return backup_problem(backup) is None


def backup_dirs(backups_dir: Path) -> list[Path]:
    """Every backup directory, complete or not, newest first (ids sort by time)."""
    if not backups_dir.is_dir():
        return []
    found = [p for p in backups_dir.iterdir() if p.is_dir() and not p.name.endswith(TMP)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def _complete(backups_dir: Path) -> Iterator[BackupRecord]:
    for path in backup_dirs(backups_dir):
        try:
            yield load_backup(path)
        except BackupError:
            continue  # incomplete: never listed, never used


def list_backups(backups_dir: Path) -> list[BackupRecord]:
    """The complete backups (with a manifest), newest first."""
    return sorted(_complete(backups_dir), key=lambda r: (r.created, r.id), reverse=True)


# --------------------------------------------------------------------------- prune


def _delete_backup(path: Path) -> None:
    # The manifest goes first: a crash mid-delete leaves an incomplete backup, never a
    # complete-looking one with files missing.
    (path / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(path)


def prune_backups(
    backups_dir: Path, keep_count: int, max_age_days: float, now: datetime | None = None
) -> list[str]:
    """Delete complete backups beyond the newest ``keep_count`` or older than
    ``max_age_days``, and incomplete ones (left by a crash). The newest complete backup is
    always kept, however old. Returns the deleted ids."""
    if keep_count < 1:
        raise ValueError(f"{backups_dir}: keep_count must be >= 1, got {keep_count}")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=max_age_days)
    complete = list_backups(backups_dir)
    doomed = [
        r.path for i, r in enumerate(complete) if i > 0 and (i >= keep_count or r.created < cutoff)
    ]
    listed = {r.path for r in complete}
    doomed += [p for p in backup_dirs(backups_dir) if p not in listed]
    for path in doomed:
        _delete_backup(path)
    return [p.name for p in doomed]
