"""gaia_actors.environments.backups: real SQLite databases, real concurrent writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gaia_actors.environments.backups import (
    MANIFEST,
    BackupError,
    NothingToBackUp,
    NoVerifiedBackup,
    backup_problem,
    list_backups,
    load_backup,
    prune_backups,
    take_backup,
    verify_backup,
)
from gaia_actors.environments.restores import reset_data, restore
from tests.conftest import wait_until

NOW = datetime(2026, 11, 28, 7, 55, 1, tzinfo=UTC)
BATCH = 10  # rows per writer transaction: a consistent copy holds whole batches only


def make_db(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS items (seq INTEGER PRIMARY KEY, payload TEXT)")
        start = db.execute("SELECT count(*) FROM items").fetchone()[0]
        db.executemany(
            "INSERT INTO items VALUES (?, ?)", [(start + i + 1, "x" * 100) for i in range(rows)]
        )
    db.close()


def count_rows(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM items").fetchone()[0])
    finally:
        db.close()


def flip_middle_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, Path]:
    """(data_dir, backups_dir) of an environment with one database of 500 rows."""
    make_db(tmp_path / "data" / "app.db", 500)
    return tmp_path / "data", tmp_path / "backups"


def backups_at(data_dir: Path, backups_dir: Path, days_ago: list[float]) -> list[str]:
    """One backup per age (oldest first in the result's order of ``days_ago``)."""
    ids = []
    for days in days_ago:
        make_db(data_dir / "app.db", BATCH)  # every backup holds different data
        ids.append(take_backup(data_dir, backups_dir, NOW - timedelta(days=days)).id)
    return ids


# --------------------------------------------------------------------------- take


def test_take_backup_copies_checks_and_records(env: tuple[Path, Path]) -> None:
    data_dir, backups_dir = env
    record = take_backup(data_dir, backups_dir, NOW)
    assert record.id == "20261128T075501.000000Z"
    assert record.path == backups_dir / record.id
    assert (record.created, record.integrity, record.verified) == (NOW, "ok", True)
    (copy,) = record.databases
    assert (copy.name, copy.path) == ("app.db", record.path / "app.db")
    assert copy.size == record.size == copy.path.stat().st_size
    assert count_rows(copy.path) == 500
    assert sorted(p.name for p in record.path.iterdir()) == sorted(["app.db", MANIFEST])
    assert load_backup(record.path) == record
    assert list_backups(backups_dir) == [record]
    assert verify_backup(record)


def test_take_backup_of_several_databases(env: tuple[Path, Path]) -> None:
    data_dir, backups_dir = env
    make_db(data_dir / "audit.db", 20)
    record = take_backup(data_dir, backups_dir, NOW)
    assert [c.name for c in record.databases] == ["app.db", "audit.db"]
    assert record.size == sum(c.size for c in record.databases)
    assert record.sha256 not in {c.sha256 for c in record.databases}


def test_take_backup_without_databases_raises(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(NothingToBackUp, match="no database to back up"):
        take_backup(tmp_path / "data", tmp_path / "backups", NOW)
    assert not (tmp_path / "backups").exists()


def test_backups_in_the_same_microsecond_get_distinct_ids(env: tuple[Path, Path]) -> None:
    data_dir, backups_dir = env
    first = take_backup(data_dir, backups_dir, NOW)
    second = take_backup(data_dir, backups_dir, NOW)
    assert (first.id, second.id) == ("20261128T075501.000000Z", "20261128T075501.000000Z-1")
    assert [r.id for r in list_backups(backups_dir)] == [second.id, first.id]


def test_backup_of_a_damaged_database_is_recorded_unverified(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    make_db(data_dir / "app.db", 2000)
    with sqlite3.connect(data_dir / "app.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    flip_middle_bytes(data_dir / "app.db")
    record = take_backup(data_dir, tmp_path / "backups", NOW)
    assert not record.verified
    assert record.integrity != "ok"
    assert backup_problem(record) is not None
    with pytest.raises(NoVerifiedBackup, match="integrity_check"):
        restore(data_dir, tmp_path / "backups")


def test_backups_under_concurrent_writes_verify_and_restore_consistently(
    env: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, backups_dir = env
    make_db(data_dir / "app.db", 20_000)  # ~3 MB: each backup takes long enough to overlap
    committed = [20_500]
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        db = sqlite3.connect(data_dir / "app.db", timeout=0.5)
        try:
            while not stop.is_set():
                first = committed[0] + 1
                with db:  # one transaction per batch
                    db.executemany(
                        "INSERT INTO items VALUES (?, ?)",
                        [(first + i, "y" * 200) for i in range(BATCH)],
                    )
                committed[0] += BATCH
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    records = []
    try:
        for _ in range(5):
            goal = committed[0] + 5 * BATCH
            wait_until(lambda: committed[0] >= goal)  # noqa: B023 - read at once, in this loop
            records.append(take_backup(data_dir, backups_dir))
    finally:
        stop.set()
        thread.join()
    assert errors == []  # the writer was never blocked out by a backup
    counts = []
    for i, record in enumerate(records):
        assert verify_backup(record)
        target = tmp_path / f"restored{i}" / "data"
        result = restore(target, backups_dir, record.id)
        assert result.used.id == record.id
        rows = count_rows(target / "app.db")
        with sqlite3.connect(target / "app.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert db.execute("SELECT max(seq) FROM items").fetchone() == (rows,)
        db.close()
        assert rows % BATCH == 0  # whole transactions only
        counts.append(rows)
    assert counts == sorted(counts)
    assert counts[0] > 20_500
    assert counts[-1] <= committed[0]


# --------------------------------------------------------------------------- verify, list


def test_verify_detects_a_changed_copy(env: tuple[Path, Path]) -> None:
    data_dir, backups_dir = env
    record = take_backup(data_dir, backups_dir, NOW)
    flip_middle_bytes(record.databases[0].path)
    assert not verify_backup(record.path)
    assert "sha256 mismatch" in (backup_problem(record) or "")


def test_backup_without_manifest_is_ignored(env: tuple[Path, Path]) -> None:
    data_dir, backups_dir = env
    older, newer = backups_at(data_dir, backups_dir, [2, 1])
    (backups_dir / newer / MANIFEST).unlink()
    assert [r.id for r in list_backups(backups_dir)] == [older]
    assert not verify_backup(backups_dir / newer)
    result = restore(data_dir, backups_dir)
    assert result.used.id == older
    assert result.skipped == ((newer, "incomplete: no manifest"),)


# --------------------------------------------------------------------------- restore


def test_restore_skips_a_corrupt_newest_backup_and_reports_it(env: tuple[Path, Path]) -> None:
    data_dir, backups_dir = env
    oldest, middle, newest = backups_at(data_dir, backups_dir, [3, 2, 1])
    expected_rows = count_rows(backups_dir / middle / "app.db")
    flip_middle_bytes(backups_dir / newest / "app.db")
    result = restore(data_dir, backups_dir)
    assert result.used.id == middle != oldest
    assert [name for name, _ in result.skipped] == [newest]
    assert "sha256 mismatch" in result.skipped[0][1]
    assert count_rows(data_dir / "app.db") == expected_rows


def test_restore_keeps_the_replaced_data_and_drops_its_stale_wal(
    env: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, backups_dir = env
    record = take_backup(data_dir, backups_dir, NOW)
    # A process that dies without a checkpoint leaves committed rows only in app.db-wal.
    crash = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1])\n"
        "db.execute('PRAGMA wal_autocheckpoint=0')\n"
        "db.executemany('INSERT INTO items VALUES (?, ?)', [(1000 + i, 'z') for i in range(50)])\n"
        "db.commit()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(data_dir / "app.db")], check=True)
    assert (data_dir / "app.db-wal").stat().st_size > 0
    result = restore(data_dir, backups_dir, now=NOW + timedelta(hours=1))
    assert result.used == record
    assert sorted(p.name for p in data_dir.iterdir()) == ["app.db"]
    assert count_rows(data_dir / "app.db") == 500  # the stale WAL was not replayed
    saved = result.saved_copy_path
    assert saved == tmp_path / "data.replaced-20261128T085501.000000Z"
    assert {"app.db", "app.db-wal"} <= {p.name for p in saved.iterdir()}
    assert count_rows(saved / "app.db") == 550  # the replaced data, WAL included
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["backups", "data", saved.name])


def test_restore_of_a_named_backup(env: tuple[Path, Path]) -> None:
    data_dir, backups_dir = env
    older, _newer = backups_at(data_dir, backups_dir, [2, 1])
    result = restore(data_dir, backups_dir, older)
    assert (result.used.id, result.skipped) == (older, ())
    assert count_rows(data_dir / "app.db") == 510


def test_restore_raises_when_nothing_verifies(env: tuple[Path, Path]) -> None:
    data_dir, backups_dir = env
    ids = backups_at(data_dir, backups_dir, [2, 1])
    for backup_id in ids:
        flip_middle_bytes(backups_dir / backup_id / "app.db")
    with pytest.raises(NoVerifiedBackup) as caught:
        restore(data_dir, backups_dir)
    assert [name for name, _ in caught.value.skipped] == ids[::-1]
    assert count_rows(data_dir / "app.db") == 520  # untouched
    with pytest.raises(NoVerifiedBackup, match="no-such-backup"):
        restore(data_dir, backups_dir, "no-such-backup")
    with pytest.raises(NoVerifiedBackup, match="not a backup id"):
        restore(data_dir, backups_dir, "../data")


def test_restore_without_any_backup_raises(env: tuple[Path, Path]) -> None:
    data_dir, backups_dir = env
    with pytest.raises(NoVerifiedBackup, match="there are none"):
        restore(data_dir, backups_dir)
    assert isinstance(NoVerifiedBackup(backups_dir, []), BackupError)


def test_reset_data_moves_the_data_aside(env: tuple[Path, Path], tmp_path: Path) -> None:
    data_dir, _ = env
    saved = reset_data(data_dir, NOW)
    assert saved == tmp_path / "data.replaced-20261128T075501.000000Z"
    assert list(data_dir.iterdir()) == []
    assert count_rows(saved / "app.db") == 500
    second = reset_data(data_dir, NOW)  # same instant: a distinct name
    assert second == tmp_path / "data.replaced-20261128T075501.000000Z-1"


# --------------------------------------------------------------------------- prune


@pytest.fixture
def aged(env: tuple[Path, Path]) -> tuple[Path, list[str]]:
    """Backups taken 0, 1, 2, 10, 20 and 40 days before NOW, newest first."""
    data_dir, backups_dir = env
    return backups_dir, backups_at(data_dir, backups_dir, [40, 20, 10, 2, 1, 0])[::-1]


def test_prune_by_age(aged: tuple[Path, list[str]]) -> None:
    backups_dir, ids = aged
    removed = prune_backups(backups_dir, keep_count=10, max_age_days=15, now=NOW)
    assert sorted(removed) == sorted(ids[4:])
    assert [r.id for r in list_backups(backups_dir)] == ids[:4]


def test_prune_by_count(aged: tuple[Path, list[str]]) -> None:
    backups_dir, ids = aged
    removed = prune_backups(backups_dir, keep_count=2, max_age_days=100, now=NOW)
    assert sorted(removed) == sorted(ids[2:])
    assert sorted(p.name for p in backups_dir.iterdir()) == sorted(ids[:2])


def test_prune_always_keeps_the_newest_and_removes_incomplete(
    aged: tuple[Path, list[str]],
) -> None:
    backups_dir, ids = aged
    (backups_dir / "20261127T000000.000000Z").mkdir()  # a crash before the manifest
    removed = prune_backups(backups_dir, 1, max_age_days=1, now=NOW + timedelta(days=365))
    assert "20261127T000000.000000Z" in removed
    assert [p.name for p in backups_dir.iterdir()] == [ids[0]]
    with pytest.raises(ValueError, match="keep_count"):
        prune_backups(backups_dir, 0, max_age_days=1)
