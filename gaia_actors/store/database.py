"""The store's database file: open it, migrate it forward, check it, set a corrupt one aside.

SQLite keeps a rollback journal here, not a write-ahead log: WAL maps its ``-shm`` index into
every connection's memory, and a write to that mapping once the file cannot take it (made
immutable, or its disk gone) is a SIGBUS that kills the daemon with no log line; it cannot
be caught. With a rollback journal and ``mmap_size=0`` SQLite maps no file, so every storage
fault is an error the store can report and retry.

A commit that returned survives a power cut or an OS crash: ``synchronous=full`` on every
connection that writes (the store's, and the readers', which run the schema's DDL) fsyncs the
journal before the database is touched, then the database, then the journal's truncation that
is the commit (in rollback mode NORMAL may corrupt the file at a power cut; OFF may also lose
commits). A new database file's directory is fsynced once the file is made, and setting a
corrupt file aside fsyncs the renames. Durability costs a few ms a commit (``python
benchmarks/store_durability.py``: 2.6-10 ms against 0.7-0.9 ms with OFF here), so the store
makes few: a flush's rows and told updates share one transaction, and a write that must answer
(``InsertNow``, an asked ``Update``) commits what is held with it. PostgreSQL is durable by
default (its own WAL fsync, ``synchronous_commit=on``): the store sets nothing there.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import peewee
from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator, migrate

from gaia_actors.errors import StoreError
from gaia_actors.process import fsync_dir
from gaia_actors.store.models import MODELS, database, track

BUSY_TIMEOUT_MS = 10_000  # how long a connection waits for another's lock, unless told less
SQLITE_PRAGMAS = {
    # Before any table exists (so only a new database gets it): pruning can then give the
    # freed pages back to the file system (``PRAGMA incremental_vacuum``) without a VACUUM
    # that would rewrite the whole file and block the writer.
    "auto_vacuum": "incremental",
    "journal_mode": "truncate",
    # Every commit is on disk before it returns (journal, database, and the journal's
    # truncation, each fsynced): NORMAL in rollback mode may corrupt the file at a power cut.
    "synchronous": "full",
    "mmap_size": 0,
    "busy_timeout": BUSY_TIMEOUT_MS,
    "foreign_keys": 1,
}
# Timestamps are Unix seconds and sizes are bytes. SQLite's REAL and INTEGER hold them (8
# bytes); elsewhere FLOAT may be 4 bytes (PostgreSQL's REAL: a Unix time to ~2 minutes) and
# INTEGER 32 bits, so other databases get the wide types.
WIDE_FIELD_TYPES = {"FLOAT": "DOUBLE PRECISION", "INT": "BIGINT"}
# Readers (any thread, through ``models.database``) set nothing that writes: a store that
# cannot be written can still be read. The schema's DDL and the daemon's last alert are
# written through them, so their commits are as durable as the writer's.
READER_PRAGMAS = {
    "synchronous": "full",
    "mmap_size": 0,
    "busy_timeout": BUSY_TIMEOUT_MS,
    "foreign_keys": 1,
}
# SQLite's primary result codes for a file that is not a sound database (sqlite.org/rescode).
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for another database."""
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def open_database(url: str, lock_wait: float | None = None) -> peewee.Database:
    """Point ``models.database`` (the readers') at ``url``, migrate the schema forward, and
    answer the writer's own connection. With ``lock_wait``, it (and the migration here) waits
    at most that many seconds for a lock another connection holds, not ``busy_timeout``,
    before "database is locked"."""
    path = sqlite_path(url)
    if path is not None:
        _private_file(path)
    if url.startswith("sqlite"):
        wait_ms = BUSY_TIMEOUT_MS if lock_wait is None else int(lock_wait * 1000)
        pragmas = {**SQLITE_PRAGMAS, "busy_timeout": wait_ms}
        # The writer takes the write lock as its transaction begins (BEGIN IMMEDIATE), so it
        # waits out another writer (a replaced store finishing its batch). Begun deferred, its
        # first read took a shared lock, and SQLite refuses at once to raise that while another
        # holds the write lock ("database is locked"): waiting there could deadlock
        # (sqlite3_busy_handler). Nested transactions are savepoints and take no lock.
        db: peewee.Database = _connect(
            url, pragmas=pragmas, timeout=wait_ms / 1000, lock_type="IMMEDIATE"
        )
        point_readers(url)
        if lock_wait is not None:  # this thread's reader runs the DDL below: no longer either
            database.execute_sql(f"PRAGMA busy_timeout = {wait_ms}")
    else:
        db = _connect(url, field_types=WIDE_FIELD_TYPES)
        database.initialize(db)
    track(db)
    try:
        # The models are bound to ``database`` (the readers'), which runs their DDL: in one
        # transaction, a new database gets its tables and indexes in one commit, not one
        # journal written, synced and deleted per statement (SQLite's DDL is transactional).
        with db.connection_context():
            with database.atomic():
                db.create_tables(MODELS, safe=True)
            _add_missing_columns(db)
    except peewee.PeeweeException as exc:
        raise StoreError(f"cannot open the store at {url}: {exc}") from exc
    return db


def _connect(url: str, **params: Any) -> peewee.Database:
    """The database at ``url``; a ``sqlite:///`` file by its path as written: a state
    directory named with ``?`` or ``#`` is a path, where peewee's URL parser would take a
    query (connection arguments: the store failed to start) or a fragment (another file,
    outside the state directory, was written)."""
    path = sqlite_path(url)
    if path is not None:
        return peewee.SqliteDatabase(str(path), **params)
    db: peewee.Database = connect(url, **params)
    return db


def point_readers(url: str) -> None:
    """Point ``models.database`` at ``url`` for the readers (connecting lazily, per thread):
    done before anything else, so a store that cannot be opened makes reads fail with its
    reason, not with "uninitialized proxy"."""
    reader: peewee.Database = _connect(url, pragmas=READER_PRAGMAS)
    database.initialize(reader)
    track(reader)


def _private_file(path: Path) -> None:
    """Create the database file 0600 (SQLite gives its journal the same mode), or make an
    existing one 0600: what the daemon stores is nobody else's, whatever the directory."""
    # A folder made here (an offline command before any daemon ran) is as private as the
    # state directory a daemon makes; an existing one keeps its mode.
    _durable_mkdir(path.parent)
    with contextlib.suppress(OSError):  # unwritable: opening it says so, with the reason
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        if created:  # its first commit is durable only once its name is
            fsync_dir(path.parent)


def _durable_mkdir(folder: Path) -> None:
    """``mkdir -p`` whose new entries survive a power cut (each parent fsynced)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for made in missing:
        fsync_dir(made.parent)


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


def corruption(path: Path, lock_wait: float = 5.0) -> str:
    """Why the SQLite file at ``path`` is not a sound database ("" when it is, or when it
    cannot be told: missing, unreadable or locked for ``lock_wait`` s is not corrupt)."""
    if not path.exists() or path.stat().st_size == 0:
        return ""
    try:
        # Read-write, so that the journal a killed writer left (a hot journal) is rolled
        # back first, as any opener must; a read-only connection could not check the file.
        conn = sqlite3.connect(path, timeout=lock_wait)
    except sqlite3.Error:
        return ""
    try:
        conn.execute("PRAGMA mmap_size=0")
        conn.execute("PRAGMA synchronous=full")  # a hot journal rolled back stays rolled back
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        return str(exc) if is_corrupt(exc) else ""
    finally:
        conn.close()
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    return "; ".join(problems[:3])


def leave_wal(path: Path, lock_wait: float = 5.0) -> str:
    """Switch a database left in WAL mode (by an older daemon) to the rollback journal before
    anything else opens it; answers why that cannot be done ("" when done or not needed).
    "Database is locked" is not an answer: another process reads it, try again later."""
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except OSError:
        return ""
    if header[18:20] != b"\x02\x02":  # the file format bytes of a WAL database
        return ""
    try:
        conn = sqlite3.connect(path, timeout=lock_wait)
        try:
            conn.execute("PRAGMA synchronous=full")  # the checkpoint into the file is durable
            mode = str(conn.execute("PRAGMA journal_mode=truncate").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return "" if "locked" in str(exc) else f"it cannot leave WAL mode: {exc}"
    return "" if mode == "truncate" else f"it cannot leave WAL mode (still {mode})"


def fault_text(exc: BaseException) -> str:
    """What went wrong, in words: a failed write's own error, not the failed rollback that
    SQLite reports after it ("cannot rollback - no transaction is active": a statement that
    failed on I/O has already ended its transaction)."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "no transaction is active" not in text:
            return text or type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def is_corrupt(exc: BaseException) -> bool:
    """Whether ``exc`` (a sqlite3 or peewee error) says the file is not a sound database."""
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB):
            return True
        text = str(seen)
        if "malformed" in text or "not a database" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def set_aside(path: Path) -> Path:
    """Rename the database file with its journals to ``<name>.unusable-<time>``; answers the
    new name of the database file. When a journal cannot follow, the file goes back and
    OSError is raised (SQLite would replay that journal onto a new file). A ``-shm`` that
    cannot be moved stays: a database without WAL never reads it."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.unusable-{stamp}")
    os.replace(path, target)
    try:
        for suffix in ("-journal", "-wal"):
            _move_if_present(path, target, suffix)
    except OSError:
        os.replace(target, path)
        raise
    with contextlib.suppress(OSError):
        _move_if_present(path, target, "-shm")
    # The renames are durable before a new file takes the old name: after a power cut the
    # directory holds the moved file and the new one, never the corrupt one under either.
    fsync_dir(path.parent)
    return target


def _move_if_present(path: Path, target: Path, suffix: str) -> None:
    source = path.with_name(path.name + suffix)
    if source.exists():
        os.replace(source, target.with_name(target.name + suffix))
