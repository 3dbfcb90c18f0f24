"""The service's SQLite database: open in WAL mode, migrate, items, health.

Migrations are ``migrations/NNN_name.sql`` files applied in version order, each in its own
transaction and recorded in ``schema_version``. They must not contain BEGIN/COMMIT.
A migration that fails is fatal (``app`` exits 3); a database that cannot be opened is not:
the service starts and ``/health`` answers 503 with the reason, so the orchestrator sees an
unhealthy environment rather than a crash loop with nothing to probe.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REQUIRED_TABLE = "items"
MIGRATION_FILE = re.compile(r"^(\d+)_(\w+)\.sql$")
BUSY_TIMEOUT_S = 5.0
# One query proves the table exists with the columns the API reads.
HEALTH_QUERY = "SELECT count(*) FROM (SELECT id, name, value, created_at FROM items)"


class DatabaseError(Exception):
    """Root of this module's errors."""


class MigrationError(DatabaseError):
    """A migration file that is misnamed, unreadable or fails to apply."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"migration {path}: {problem}")
        self.path = path


class DatabaseUnavailable(DatabaseError):
    """The database cannot serve a query (not open, table missing, I/O error...)."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    path: Path


@dataclass(frozen=True, slots=True)
class Item:
    """A stored item."""

    id: int
    name: str
    value: int
    created_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "value": self.value,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The database's answer to ``/health``: ``reason`` is "ok" or what is wrong."""

    ok: bool
    reason: str
    items: int | None = None


def discover_migrations(directory: Path) -> list[Migration]:
    """The ``*.sql`` files of ``directory`` in version order; other files are ignored."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            raise MigrationError(path, "name must look like NNN_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(path, f"version {version} also used by {migrations[version].path}")
        migrations[version] = Migration(version, match.group(2), path)
    return [migrations[version] for version in sorted(migrations)]


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` in WAL mode, autocommit; raise sqlite3.Error if it is not a database."""
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL, much faster
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    return {row[0] for row in conn.execute("SELECT version FROM schema_version")}


def apply_migrations(
    conn: sqlite3.Connection,
    migrations: list[Migration],
    on_applied: Callable[[Migration], None] = lambda _m: None,
) -> list[Migration]:
    """Apply the migrations not yet recorded, in order; return those applied."""
    done = applied_versions(conn)
    pending = [m for m in migrations if m.version not in done]
    for migration in pending:
        _apply_one(conn, migration)
        on_applied(migration)
    return pending


def _apply_one(conn: sqlite3.Connection, migration: Migration) -> None:
    try:
        sql = migration.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationError(migration.path, f"cannot read: {exc}") from exc
    try:
        # executescript commits any open transaction first, so BEGIN goes inside the script.
        conn.executescript(f"BEGIN;\n{sql}\n;")
        conn.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, _now()),
        )
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise MigrationError(migration.path, str(exc)) from exc


def check_health(conn: sqlite3.Connection) -> HealthReport:
    """Integrity (``quick_check``) and a read of the required table."""
    try:
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            return HealthReport(False, f"integrity check failed: {verdict}")
        (items,) = conn.execute(HEALTH_QUERY).fetchone()
    except sqlite3.Error as exc:
        return HealthReport(False, f"{type(exc).__name__}: {exc}")
    return HealthReport(True, "ok", items)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Database:
    """The one connection of the process, shared by request threads behind a lock.

    ``conn`` is None when the file could not be opened; every query then raises
    DatabaseUnavailable with ``open_error``.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection | None, open_error: str = "") -> None:
        self.path = path
        self._conn = conn
        self._open_error = open_error
        self._lock = threading.Lock()
        self._identity = _file_identity(path) if conn is not None else None

    @classmethod
    def open(
        cls,
        path: Path,
        migrations_dir: Path,
        on_applied: Callable[[Migration], None] = lambda _m: None,
    ) -> Database:
        """Open and migrate. MigrationError propagates; an unopenable file does not."""
        migrations = discover_migrations(migrations_dir)
        try:
            conn = connect(path)
        except sqlite3.Error as exc:
            return cls(path, None, f"cannot open {path}: {type(exc).__name__}: {exc}")
        try:
            apply_migrations(conn, migrations, on_applied)
        except MigrationError:
            conn.close()
            raise
        except sqlite3.Error as exc:  # reading schema_version, before any migration ran
            conn.close()
            return cls(path, None, f"cannot read {path}: {type(exc).__name__}: {exc}")
        return cls(path, conn)

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def schema_version(self) -> int | None:
        with self._query() as conn:
            return conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]  # type: ignore[no-any-return]

    def health(self) -> HealthReport:
        if self._conn is None:
            return HealthReport(False, self._open_error)
        if _file_identity(self.path) != self._identity:
            # Deleted or replaced under a running process: we would keep using the old inode.
            return HealthReport(False, f"{self.path} was removed or replaced while open")
        with self._lock:
            return check_health(self._conn)

    def create_item(self, name: str, value: int) -> Item:
        created_at = _now()
        with self._query() as conn:
            cursor = conn.execute(
                "INSERT INTO items (name, value, created_at) VALUES (?, ?, ?)",
                (name, value, created_at),
            )
        assert cursor.lastrowid is not None  # an INSERT into a rowid table always sets it
        return Item(cursor.lastrowid, name, value, created_at)

    def list_items(self, limit: int) -> list[Item]:
        with self._query() as conn:
            rows = conn.execute(
                "SELECT id, name, value, created_at FROM items ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [Item(*row) for row in rows]

    def get_item(self, item_id: int) -> Item | None:
        with self._query() as conn:
            row = conn.execute(
                "SELECT id, name, value, created_at FROM items WHERE id = ?", (item_id,)
            ).fetchone()
        return None if row is None else Item(*row)

    def delete_item(self, item_id: int) -> bool:
        with self._query() as conn:
            return conn.execute("DELETE FROM items WHERE id = ?", (item_id,)).rowcount > 0

    def count_items(self) -> int:
        with self._query() as conn:
            return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])

    def size_bytes(self) -> int:
        """Bytes on disk: the database file plus its WAL."""
        return sum(_size(Path(f"{self.path}{suffix}")) for suffix in ("", "-wal"))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._open_error = "database closed (shutting down)"

    @contextmanager
    def _query(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise DatabaseUnavailable(self._open_error)
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
