"""An environment's live data: which files are its databases, whether they verify, what changed.

``databases`` (globs under the data directory, per environment) says which files are the
data. Everything the recovery ladder decides about data starts here: a database that passes
``PRAGMA quick_check`` and is where it was is never replaced. The data-loss watch compares
cheap ``stat`` snapshots: a database that disappears, or comes back as a new, empty file,
while its environment runs is data loss.

``undo_replace`` puts back the newest ``data.replaced-<stamp>/`` folder that a restore or
reset moved aside, moving the data it replaces aside in turn, so an undo can be undone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from gaia_actors import process
from gaia_actors.environments import backups, restores
from supervisors.records import record

# How a failure says the live data fails its check (the ladder then acts on it at once).
DATA_FAILS = "the live data fails its check"
SQLITE_HEADER = b"SQLite format 3\x00"  # https://www.sqlite.org/fileformat.html, section 1.3
# Files SQLite keeps beside a database: never databases themselves.
_SIDE_SUFFIXES = ("-wal", "-shm", "-journal", backups.TMP)
_BUSY_TIMEOUT = 5.0
_WATCH_TIMEOUT = 0.5  # the data-loss watch runs in the actor's mailbox: never wait long there


class NotADatabase(backups.BackupError):
    """A file that a ``databases`` glob matches is not an SQLite database."""


@record
class FileStamp:
    """What the data-loss watch remembers of one database between two looks: the file, and
    which of its tables held rows."""

    inode: int
    size: int
    filled: frozenset[str]


def find_databases(data_dir: Path, patterns: Sequence[str]) -> list[Path]:
    """Every regular file under ``data_dir`` that one of ``patterns`` matches, sorted."""
    if not data_dir.is_dir():
        return []
    found: set[Path] = set()
    for pattern in patterns:
        for path in data_dir.glob(pattern):
            if path.name.endswith(_SIDE_SUFFIXES) or path.is_symlink() or not path.is_file():
                continue
            found.add(path)
    return sorted(found)


def relative_name(data_dir: Path, path: Path) -> str:
    """The name a database goes by in backups and messages: its path under ``data_dir``."""
    return path.relative_to(data_dir).as_posix()


def require_sqlite(path: Path, patterns: Sequence[str]) -> None:
    """Raise NotADatabase unless ``path`` is an SQLite file (an empty file is one: SQLite
    treats a zero-length file as an empty database)."""
    with open(path, "rb") as src:
        header = src.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise NotADatabase(
            path,
            f"matches the environment's databases = {list(patterns)} but is not an SQLite "
            "database; narrow `databases` in its [environments.<name>] section",
        )


def back_up(data_dir: Path, backups_dir: Path, patterns: Sequence[str]) -> backups.BackupRecord:
    """Back up every database ``patterns`` match, each checked to be SQLite first."""
    sources = find_databases(data_dir, patterns)
    if not sources:
        raise backups.NothingToBackUp(data_dir, f"no file matches databases = {list(patterns)}")
    for source in sources:
        require_sqlite(source, patterns)
    return backups.take_backup(data_dir, backups_dir, sources=sources)


def quick_check(path: Path) -> str:
    """``PRAGMA quick_check`` of a database nothing writes: "ok" or what is wrong."""
    try:
        require_sqlite(path, ())
        connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT)
        try:
            rows = connection.execute("PRAGMA quick_check").fetchall()
        finally:
            connection.close()
    except NotADatabase:
        return "not an SQLite database"
    except (sqlite3.Error, OSError) as exc:
        return f"unreadable: {exc}"
    messages = [str(row[0]) for row in rows]
    return "ok" if messages == ["ok"] else "; ".join(messages[:5])


def expected_databases(backups_dir: Path) -> set[str]:
    """The databases the newest complete backup holds: what the live data should have."""
    newest = backups.list_backups(backups_dir)
    return {copy.name for copy in newest[0].databases} if newest else set()


def live_problems(data_dir: Path, patterns: Sequence[str], backups_dir: Path) -> list[str]:
    """Why the live data does not verify (empty when it does): every database that a glob
    matches must pass ``quick_check``, and every database of the newest backup must exist."""
    found = find_databases(data_dir, patterns)
    names = {relative_name(data_dir, path) for path in found}
    problems = [f"{name} is missing" for name in sorted(expected_databases(backups_dir) - names)]
    for path in found:
        verdict = quick_check(path)
        if verdict != "ok":
            problems.append(f"{relative_name(data_dir, path)}: {verdict}")
    return problems


# --------------------------------------------------------------------------- data loss


def stamps(
    data_dir: Path, patterns: Sequence[str], before: Mapping[str, FileStamp] | None = None
) -> dict[str, FileStamp]:
    """A cheap look at every database: one ``stat`` each, and its tables read again only
    when the file changed since ``before``."""
    seen: dict[str, FileStamp] = {}
    for path in find_databases(data_dir, patterns):
        name = relative_name(data_dir, path)
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        old = (before or {}).get(name)
        if old is not None and (old.inode, old.size) == (info.st_ino, info.st_size):
            seen[name] = old
            continue
        filled = filled_tables(path)
        if filled is None and old is not None:
            seen[name] = old  # busy or unreadable now: look again next time, claim nothing
        else:
            seen[name] = FileStamp(info.st_ino, info.st_size, filled or frozenset())
    return seen


def filled_tables(path: Path) -> frozenset[str] | None:
    """The tables of a database that hold at least one row (one indexed probe per table);
    None when it cannot be read now (locked, or not SQLite)."""
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=_WATCH_TIMEOUT)
        try:
            tables = connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
            return frozenset(
                name
                for (name,) in tables
                if connection.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone()
            )
        finally:
            connection.close()
    except (sqlite3.Error, OSError):
        return None  # quick_check reports a database that stays unreadable


def losses(before: Mapping[str, FileStamp], now: Mapping[str, FileStamp]) -> list[str]:
    """What the step from ``before`` to ``now`` lost: a database gone, or replaced by another
    file (another inode) in which tables that held rows are empty or missing."""
    lost: list[str] = []
    for name, old in sorted(before.items()):
        new = now.get(name)
        if new is None:
            lost.append(f"{name} disappeared")
        elif new.inode != old.inode and (emptied := sorted(old.filled - new.filled)):
            lost.append(f"{name} was replaced by a database without rows in {', '.join(emptied)}")
    return lost


def rescue_deleted(pid: int, data_dir: Path, into: Path) -> list[str]:
    """Copy the files under ``data_dir`` that were deleted while process ``pid`` still holds
    them open (a database and its ``-wal``), from /proc/<pid>/fd, into ``into``: the rows
    of a database deleted under a running service are still there until it stops. The
    process is paused (SIGSTOP) meanwhile so the copies agree. Returns the names copied."""
    prefix, suffix = f"{data_dir}{os.sep}", " (deleted)"
    held: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(prefix) and target.endswith(suffix):
                    held.setdefault(target[len(prefix) : -len(suffix)], f"/proc/{pid}/fd/{fd}")
    if not held:
        return []
    os.kill(pid, signal.SIGSTOP)
    try:
        for name, source in held.items():
            copy = into / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
    finally:
        os.kill(pid, signal.SIGCONT)
    return sorted(held)


def merge_into(rescued: Path, saved: Path) -> list[str]:
    """Move the files of ``rescued`` into ``saved`` (where none of that name is), then
    remove ``rescued``. Returns the names moved."""
    moved = []
    for path in sorted(p for p in rescued.rglob("*") if p.is_file()):
        name = path.relative_to(rescued).as_posix()
        target = saved / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)
            moved.append(name)
    shutil.rmtree(rescued, ignore_errors=True)
    return moved


# --------------------------------------------------------------------------- replaced data


def replaced_copies(data_dir: Path) -> list[Path]:
    """The ``data.replaced-<stamp>`` folders a restore or reset kept, newest first."""
    prefix = f"{data_dir.name}.replaced-"
    parent = data_dir.parent
    if not parent.is_dir():
        return []
    found = [p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]
    return sorted(found, key=lambda p: p.name.removeprefix(prefix), reverse=True)


def undo_replace(data_dir: Path, now: datetime | None = None) -> tuple[Path, Path | None]:
    """Put the newest replaced copy back as ``data_dir``; the data it replaces is kept as a
    new ``data.replaced-<stamp>``. Returns (the copy put back, where the data went). The
    caller stops the process first."""
    copies = replaced_copies(data_dir)
    if not copies:
        raise backups.BackupError(data_dir, "no replaced data to put back")
    chosen = copies[0]
    saved = restores.move_aside(data_dir, now or datetime.now(UTC))
    os.rename(chosen, data_dir)
    process.fsync_dir(data_dir.parent)
    return chosen, saved
