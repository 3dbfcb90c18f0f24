"""The store: one database, one writer (DESIGN.md, Persistence).

``open_database`` connects (SQLite in WAL mode by default, any peewee URL otherwise) and
brings the schema up to date: missing tables are created and missing columns added, never
dropped. The ``Store`` actor is the single writer: rows arrive as ``Insert`` tells, are
buffered, and written with ``insert_many`` in one transaction per flush (REFERENCE.md:
~40k rows/s against ~2k/s for a transaction per row).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import peewee
from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator, migrate

from gaia_actors.actor import GaiaActor
from gaia_actors.errors import InvalidMessage, StoreError
from gaia_actors.messages import Fields, Flush, Insert, InsertNow, Prune, Update
from gaia_actors.models import MODELS, TABLES, database, track
from gaia_actors.settings import Settings
from supervisors import Link

SQLITE_PRAGMAS = {
    # Before any table exists (so only a new database gets it): pruning can then give the
    # freed pages back to the file system (``PRAGMA incremental_vacuum``) without a VACUUM
    # that would rewrite the whole file and block the writer.
    "auto_vacuum": "incremental",
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
}
# Timestamps are Unix seconds and sizes are bytes. SQLite's REAL and INTEGER hold them (8
# bytes); elsewhere FLOAT may be 4 bytes (PostgreSQL's REAL: a Unix time to ~2 minutes) and
# INTEGER 32 bits, so other databases get the wide types.
WIDE_FIELD_TYPES = {"FLOAT": "DOUBLE PRECISION", "INT": "BIGINT"}
# Pages handed back after one prune (4 KiB each: 256 MiB); the next prune takes the rest.
VACUUM_PAGES = 65_536


def open_database(url: str) -> peewee.Database:
    """Connect ``database`` to ``url`` and migrate the schema forward."""
    if url.startswith("sqlite:///"):
        _private_file(Path(url[len("sqlite:///") :]))
    try:
        db: peewee.Database = (
            connect(url, pragmas=SQLITE_PRAGMAS)
            if url.startswith("sqlite")
            else connect(url, field_types=WIDE_FIELD_TYPES)
        )
        database.initialize(db)
        track(db)
        with db.connection_context():
            db.create_tables(MODELS, safe=True)
            _add_missing_columns(db)
    except peewee.PeeweeException as exc:
        raise StoreError(f"cannot open the store at {url}: {exc}") from exc
    return db


def _private_file(path: Path) -> None:
    """Create the database file 0600 (SQLite gives its journal the same mode), or make an
    existing one 0600: what the daemon stores is nobody else's, whatever the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # unwritable: opening it says so, with the reason
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)


def _add_missing_columns(db: peewee.Database) -> None:
    migrator = SchemaMigrator.from_database(db)
    operations = []
    for model in MODELS:
        table = model._meta.table_name
        present = {column.name for column in db.get_columns(table)}
        for field in model._meta.sorted_fields:
            if field.column_name not in present:
                field.null = True  # a column added later cannot be NOT NULL on existing rows
                operations.append(migrator.add_column(table, field.column_name, field))
    if operations:
        migrate(*operations)


def model_for(table: str) -> Any:
    model = TABLES.get(table)
    if model is None:
        raise InvalidMessage(
            "Insert", f"unknown table {table!r}; tables: {', '.join(TABLES)}", "table"
        )
    return model


class Store(GaiaActor):
    """The single writer. Reads go straight to ``gaia_actors.models`` from any thread."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.count = 0
        self.written = 0
        self.db: peewee.Database | None = None

    def on_start(self) -> None:
        self.db = open_database(self.settings.database_url)
        self.every(self.settings.store.flush_interval, Flush())
        self.every(3600.0, Prune(), first=60.0)

    def salvage(self, message: Any) -> None:
        match message:  # rows told before this generation ended: written before it closes
            case Insert(table=table, values=values):
                self._queue(table, values)
            case Update(table=table, row_id=row_id, values=values):
                self._flush()
                self._update(table, row_id, values)

    def on_terminate(self) -> None:
        try:
            self._flush()  # after a crash too: what was queued is not lost with the actor
        except peewee.PeeweeException as exc:
            self.log.error("store.final_flush_failed", rows=self.count, error=str(exc))
        finally:
            if self.db is not None:
                self.db.close()

    @property
    def _db(self) -> peewee.Database:
        # Writes go through this generation's own connection, never the shared proxy: a hung
        # older generation that wakes while its successor re-points the proxy must not end a
        # transaction on the wrong database (which left a write lock held for good).
        assert self.db is not None, "the store writes only after on_start"
        return self.db

    def receive(self, message: Any) -> Any:
        match message:
            case Insert(table=table, values=values):
                self._queue(table, values)
            case InsertNow(table=table, values=values):
                self._flush()
                return self._insert_now(table, values)
            case Update(table=table, row_id=row_id, values=values):
                self._flush()
                return self._update(table, row_id, values)
            case Flush():
                return self._flush()
            case Prune():
                return self._prune()
            case _:
                return self.unhandled(message)
        return None

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "pending": self.count,
            "written": self.written,
            "url": self.settings.database_url,
        }

    def _queue(self, table: str, values: Fields) -> None:
        model_for(table)
        self.pending[table].append(dict(values))
        self.count += 1
        if self.count >= self.settings.store.batch_size:
            self._flush()

    def _flush(self) -> int:
        if not self.count:
            return 0
        batches, self.pending, written = self.pending, defaultdict(list), self.count
        self.count = 0
        with self._db.atomic():
            for table, rows in batches.items():
                for chunk in _chunks(rows, 200):  # SQLite caps the variables per statement
                    model_for(table).insert_many(chunk).execute(self._db)
        self.written += written
        return written

    def _insert_now(self, table: str, values: Fields) -> int:
        row_id: int = model_for(table).insert(dict(values)).execute(self._db)
        self.written += 1
        return row_id

    def _update(self, table: str, row_id: int, values: Fields) -> int:
        model = model_for(table)
        changed: int = model.update(dict(values)).where(model.id == row_id).execute(self._db)
        return changed

    def _prune(self) -> int:
        retention = {
            "events": self.settings.store.retention_days,
            "actor_restarts": self.settings.store.retention_days,
            "health_checks": self.settings.monitor.retention_days,
            "metric_samples": self.settings.metrics.retention_days,
        }
        removed = 0
        now = time.time()
        for table, days in retention.items():
            model: Any = TABLES[table]
            removed += model.delete().where(model.ts < now - days * 86400).execute(self._db)
        removed += self._prune_pipelines(self.settings.pipeline.keep)
        freed = self._vacuum() if removed else 0
        if removed:
            self.log.info("store.pruned", rows=removed, pages_freed=freed)
        return removed

    def _prune_pipelines(self, keep: int) -> int:
        """Promotions beyond the newest ``keep`` go, with their stages; one still running or
        waiting for its recovery stays. (Their artifact folders are the coordinator's.)"""
        pipeline: Any = TABLES["pipelines"]
        stage: Any = TABLES["stages"]
        newest = pipeline.select(peewee.fn.MAX(pipeline.id)).scalar(self._db)
        if newest is None or newest <= keep:
            return 0
        old = pipeline.select(pipeline.id).where(
            (pipeline.id <= newest - keep)
            & (pipeline.status != "running")
            & ((pipeline.recovery.is_null()) | (pipeline.recovery != "pending"))
        )
        ids = [row.id for row in old.execute(self._db)]
        removed = 0
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            with self._db.atomic():
                removed += stage.delete().where(stage.pipeline_id << chunk).execute(self._db)
                removed += pipeline.delete().where(pipeline.id << chunk).execute(self._db)
        return int(removed)

    def _vacuum(self) -> int:
        """Give up to ``VACUUM_PAGES`` free pages back to the file system (SQLite databases
        created with incremental auto-vacuum; for others it frees nothing). Answers how many."""
        if not isinstance(self._db, peewee.SqliteDatabase):
            return 0
        db: Any = self._db  # peewee's methods are untyped
        before = int(db.execute_sql("PRAGMA freelist_count").fetchone()[0])
        if before:
            # executescript steps the pragma to the end; execute() frees a single page.
            db.connection().executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
        return before - int(db.execute_sql("PRAGMA freelist_count").fetchone()[0])


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    # Rows with different key sets cannot share one INSERT; group them by their keys first.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    return [group[i : i + size] for group in groups.values() for i in range(0, len(group), size)]
