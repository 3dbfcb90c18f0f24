"""Which files are an environment's data, whether they verify, and what a backup holds of them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gaia_actors.environments import backups, data, restores
from gaia_actors.settings import EnvironmentSettings

DEFAULT = EnvironmentSettings(port=1).databases


def make_db(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
        db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])
    db.close()


def rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        found = int(db.execute("SELECT count(*) FROM t").fetchone()[0])
    db.close()
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    make_db(tmp_path / "data" / "app.db", 3)
    make_db(tmp_path / "data" / "app.sqlite", 4)
    make_db(tmp_path / "data" / "legacy.sqlite3", 1)
    make_db(tmp_path / "data" / "tenants" / "a" / "t.db", 2)
    (tmp_path / "data" / "app.db-wal").write_bytes(b"")
    (tmp_path / "data" / "readme.txt").write_text("not data\n")
    return tmp_path / "data"


def test_the_default_globs_find_common_names_and_subfolders_but_no_side_files(
    data_dir: Path,
) -> None:
    found = [data.relative_name(data_dir, p) for p in data.find_databases(data_dir, DEFAULT)]
    assert found == ["app.db", "app.sqlite", "legacy.sqlite3", "tenants/a/t.db"]


def test_every_database_is_backed_up_under_its_path_and_restored_there(
    data_dir: Path, tmp_path: Path
) -> None:
    record = data.back_up(data_dir, tmp_path / "backups", DEFAULT)
    assert record.verified
    assert [c.name for c in record.databases] == [
        "app.db",
        "app.sqlite",
        "legacy.sqlite3",
        "tenants/a/t.db",
    ]
    make_db(data_dir / "tenants" / "a" / "t.db.new", 0)
    (data_dir / "tenants" / "a" / "t.db").unlink()

    result = restores.restore(data_dir, tmp_path / "backups")

    assert rows(data_dir / "tenants" / "a" / "t.db") == 2
    assert rows(data_dir / "app.sqlite") == 4
    assert result.saved_copy_path is not None
    assert (result.saved_copy_path / "tenants" / "a" / "t.db.new").is_file()


def test_a_match_that_is_not_sqlite_is_a_clear_error(data_dir: Path, tmp_path: Path) -> None:
    (data_dir / "notes.db").write_text("plain text\n")
    with pytest.raises(data.NotADatabase, match=r"notes\.db: matches the environment's databases"):
        data.back_up(data_dir, tmp_path / "backups", DEFAULT)
    assert not (tmp_path / "backups").exists()


def test_a_manifest_naming_a_file_outside_its_backup_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    record = data.back_up(data_dir, tmp_path / "backups", ["app.db"])
    manifest = json.loads((record.path / backups.MANIFEST).read_text())
    manifest["databases"][0]["name"] = "../../outside.db"
    (record.path / backups.MANIFEST).write_text(json.dumps(manifest))

    assert "not a path inside the backup" in str(backups.backup_problem(record.path))
    with pytest.raises(backups.NoVerifiedBackup):
        restores.restore(data_dir, tmp_path / "backups")


def test_live_problems_name_damaged_and_missing_databases(data_dir: Path, tmp_path: Path) -> None:
    data.back_up(data_dir, tmp_path / "backups", DEFAULT)
    assert data.live_problems(data_dir, DEFAULT, tmp_path / "backups") == []

    (data_dir / "app.sqlite").unlink()
    (data_dir / "app.db").write_bytes(b"garbage" * 100)

    assert data.live_problems(data_dir, DEFAULT, tmp_path / "backups") == [
        "app.sqlite is missing",
        "app.db: not an SQLite database",
    ]


def test_undo_puts_the_replaced_data_back_and_keeps_what_it_replaces(
    data_dir: Path, tmp_path: Path
) -> None:
    data.back_up(data_dir, tmp_path / "backups", ["app.db"])
    make_db(data_dir / "later.db", 7)
    restores.restore(data_dir, tmp_path / "backups")
    assert not (data_dir / "later.db").exists()

    put_back, saved = data.undo_replace(data_dir)

    assert rows(data_dir / "later.db") == 7
    assert not put_back.exists()
    assert saved is not None
    assert sorted(p.name for p in saved.iterdir()) == ["app.db"]
    assert data.replaced_copies(data_dir) == [saved]


def test_the_watch_tells_a_lost_database_from_a_replaced_one_that_kept_its_rows(
    data_dir: Path, tmp_path: Path
) -> None:
    before = data.stamps(data_dir, DEFAULT)
    make_db(tmp_path / "copy.db", 3)  # the same rows in a new file (as a VACUUM INTO would)
    (tmp_path / "copy.db").replace(data_dir / "app.db")
    make_db(tmp_path / "empty.db", 0)
    (tmp_path / "empty.db").replace(data_dir / "app.sqlite")
    (data_dir / "legacy.sqlite3").unlink()

    now = data.stamps(data_dir, DEFAULT, before)

    assert data.losses(before, now) == [
        "app.sqlite was replaced by a database without rows in t",
        "legacy.sqlite3 disappeared",
    ]
    assert data.losses(now, data.stamps(data_dir, DEFAULT, now)) == []  # said once
