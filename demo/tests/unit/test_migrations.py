from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from demosvc.db import (
    Database,
    DatabaseUnavailable,
    MigrationError,
    apply_migrations,
    check_health,
    connect,
    discover_migrations,
)

SHIPPED_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


def versions(db_path: Path) -> list[int]:
    with sqlite3.connect(db_path) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


def test_migrations_are_ordered_by_number_not_by_name(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", {"010_c.sql": "", "002_b.sql": "", "1_a.sql": "", "x.txt": ""})
    assert [(m.version, m.name) for m in discover_migrations(folder)] == [
        (1, "a"),
        (2, "b"),
        (10, "c"),
    ]


@pytest.mark.parametrize(
    ("files", "culprit"),
    [
        ({"001_a.sql": "", "no_number.sql": ""}, "no_number.sql"),
        ({"001_a.sql": "", "1_b.sql": ""}, "1_b.sql"),
    ],
)
def test_misnamed_or_duplicate_migration_is_an_error_naming_the_file(
    tmp_path: Path, files: dict[str, str], culprit: str
) -> None:
    with pytest.raises(MigrationError, match=re.escape(culprit)):
        discover_migrations(write(tmp_path / "m", files))


def test_pending_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "m",
        {"001_t.sql": "CREATE TABLE t (x INTEGER);", "002_row.sql": "INSERT INTO t VALUES (1);"},
    )
    conn = connect(tmp_path / "app.db")
    assert [m.version for m in apply_migrations(conn, discover_migrations(folder))] == [1, 2]
    assert apply_migrations(conn, discover_migrations(folder)) == []
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert versions(tmp_path / "app.db") == [1, 2]


def test_failing_migration_rolls_back_and_names_the_file(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "m",
        {"001_ok.sql": "CREATE TABLE a (x);", "002_bad.sql": "CREATE TABLE b (x); SELEC oops;"},
    )
    conn = connect(tmp_path / "app.db")
    with pytest.raises(MigrationError, match=r"002_bad\.sql") as caught:
        apply_migrations(conn, discover_migrations(folder))
    assert "syntax error" in str(caught.value)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "a" in tables
    assert "b" not in tables  # the failed migration left nothing behind
    assert versions(tmp_path / "app.db") == [1]


def test_shipped_migrations_make_a_healthy_database(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "app.db", SHIPPED_MIGRATIONS)
    report = db.health()
    assert (report.ok, report.reason, report.items) == (True, "ok", 0)
    assert db.schema_version() == max(m.version for m in discover_migrations(SHIPPED_MIGRATIONS))
    db.close()


def test_a_migration_dropping_items_makes_health_fail(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    for shipped in SHIPPED_MIGRATIONS.glob("*.sql"):
        (folder / shipped.name).write_text(shipped.read_text())
    (folder / "999_break.sql").write_text("DROP TABLE items;")
    db = Database.open(tmp_path / "app.db", folder)
    report = db.health()
    db.close()
    assert not report.ok
    assert "no such table: items" in report.reason


def test_missing_column_makes_health_fail(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    report = check_health(conn)
    conn.close()
    assert not report.ok
    assert "no such column" in report.reason


def test_file_that_is_not_a_database_opens_as_unavailable(tmp_path: Path) -> None:
    (tmp_path / "app.db").write_bytes(b"this is not sqlite" * 100)
    db = Database.open(tmp_path / "app.db", SHIPPED_MIGRATIONS)
    assert not db.is_open
    assert "file is not a database" in db.health().reason
    with pytest.raises(DatabaseUnavailable, match="file is not a database"):
        db.list_items(10)


def test_replaced_database_file_makes_health_fail(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "app.db", SHIPPED_MIGRATIONS)
    (tmp_path / "app.db").rename(tmp_path / "moved.db")
    (tmp_path / "app.db").write_bytes(b"")
    report = db.health()
    db.close()
    assert not report.ok
    assert "removed or replaced" in report.reason


def test_items_round_trip(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "app.db", SHIPPED_MIGRATIONS)
    first = db.create_item("a", 1)
    second = db.create_item("b", 2)
    assert db.get_item(first.id) == first
    assert db.list_items(1) == [first]
    assert db.count_items() == 2
    assert db.delete_item(first.id)
    assert not db.delete_item(first.id)
    assert db.list_items(10) == [second]
    assert db.size_bytes() > 0
    db.close()
    with pytest.raises(DatabaseUnavailable, match="closed"):
        db.count_items()
