"""The store: one database, one writer.

``open_database`` (gaia_actors/store/database.py) connects and brings the schema up to date. The
``Store`` actor is the single writer: rows arrive as ``Insert`` tells, are buffered, and
written with ``insert_many`` in one transaction per flush (every ``flush_interval``, or at
``batch_size`` rows); a told ``Update`` joins that transaction. A commit is durable (fsynced,
see database.py) and so costs a few ms: a write that must answer at once (``InsertNow``, an
asked ``Update``) commits what is held in the same transaction, never one commit per row.

A storage fault (disk full, a read-only or unwritable file, a deleted or corrupt database, a
file another process keeps locked) never stops the store, so it never takes supervision down
with it: the store reports it (``store.degraded``, its state, ``status``), holds what it
could not write (up to ``MAX_HELD``, then counts what it drops as lost), retries with
backoff, opens a new file when the old one was deleted, sets a corrupt one aside, and reports
``store.recovered``. Only ``InsertNow``, which must answer an id, fails meanwhile
(``StoreError``)."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

import peewee

from gaia_actors.actor import GaiaActor
from gaia_actors.errors import InvalidMessage, StoreError
from gaia_actors.events import StoreEvent
from gaia_actors.messages import Fields, Flush, Insert, InsertNow, Prune, Update
from gaia_actors.outbox import outbox_for
from gaia_actors.settings import Settings
from gaia_actors.store import batch, retention
from gaia_actors.store.batch import model_for
from gaia_actors.store.database import (
    corruption,
    fault_text,
    is_corrupt,
    leave_wal,
    open_database,
    point_readers,
    set_aside,
    sqlite_path,
)
from supervisors import Link

T = TypeVar("T")

MAX_HELD = 100_000  # rows and updates held while the store cannot write; beyond, lost (counted)
RETRY_MIN = 0.5  # seconds before the first new attempt after a storage fault; doubles
RETRY_MAX = 10.0
LOCK_WAIT_MAX = 10.0  # seconds a write waits for another connection's lock, at most
SYNCHRONOUS_LEVELS = {0: "off", 1: "normal", 2: "full", 3: "extra"}  # sqlite.org/pragma.html


class Store(GaiaActor):
    """The single writer. Reads go straight to ``gaia_actors.store.models`` from any thread."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.path = sqlite_path(settings.database_url)
        self.pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.updates: list[tuple[str, int, dict[str, Any]]] = []  # held while faulty
        self.count = 0
        self.written = 0
        self.commits = 0  # transactions committed: each one's fsyncs are the cost of durability
        self.rejected = 0  # rows and updates SQLite refused (a constraint, a value), not written
        self.lost = 0
        self.db: peewee.Database | None = None
        self.inode: int | None = None
        self.fault = ""  # why the store cannot write now ("" when it can)
        self.fault_since: float | None = None
        self.retry_at = 0.0
        self.retry_delay = RETRY_MIN
        self.set_aside: list[str] = []  # corrupt files moved out of the way
        self.issued: dict[str, int] = {}  # the highest id InsertNow answered, per table
        self.floors: dict[str, int] = {}  # ``issued`` when a new file replaced a lost one
        # A lock another process holds (a write transaction left open in ``sqlite3``, a
        # backup) is waited for a quarter of the liveness ping's timeout per statement, then
        # it is a storage fault like any other (held, retried): the store is never taken for
        # hung and replaced, with the bus and every service after it, for a lock it waits on.
        self.lock_wait = min(settings.supervision.ping_timeout / 4, LOCK_WAIT_MAX)

    def on_start(self) -> None:
        self._open()  # a storage fault does not stop the start: the store runs degraded
        self.every(self.settings.store.flush_interval, Flush())
        self.every(3600.0, Prune(), first=60.0)

    def salvage(self, message: Any) -> None:
        match message:  # rows told before this generation ended: written before it closes
            case Insert(table=table, values=values):
                self._queue(table, values)
            case Update(table=table, row_id=row_id, values=values):
                self._update(table, row_id, values)

    def on_terminate(self) -> None:
        self._flush(force=True)  # after a crash too: what was queued is not lost with the actor
        if self.count or self.updates:
            self.log.error(
                "store.final_flush_failed",
                rows=self.count + len(self.updates),
                error=self.fault,
                consequence="held for the store's next generation",
            )
            self._hand_over()
        self._close()

    def _hand_over(self) -> None:
        """Tell what this generation could not write to the next one, in the order it would
        have been written, through the registry's outbox (which holds it while none runs)."""
        outbox = outbox_for(self.registry)
        for table, rows in self.pending.items():
            for values in rows:
                outbox.tell(self.name, Insert(table, tuple(sorted(values.items()))))
        for table, row_id, values in self.updates:
            outbox.tell(self.name, Update(table, row_id, tuple(sorted(values.items()))))
        self.pending, self.count, self.updates = defaultdict(list), 0, []

    @property
    def _db(self) -> peewee.Database:
        # Writes go through this generation's own connection, never the shared proxy: a hung
        # older generation that wakes while its successor re-points the proxy must not end a
        # transaction on the wrong database (which left a write lock held for good).
        assert self.db is not None, "the store writes only once open"
        return self.db

    def receive(self, message: Any) -> Any:
        match message:
            case Insert(table=table, values=values):
                self._queue(table, values)
            case InsertNow(table=table, values=values):
                return self._insert_now(table, values)
            case Update(table=table, row_id=row_id, values=values, reply_by=reply_by):
                return self._update(table, row_id, values, asked=reply_by is not None)
            case Flush():
                if self.db is not None and self._inode() != self.inode:
                    self._ready()  # deleted or replaced: noticed even when nothing is written
                return self._flush()
            case Prune():
                return self._prune_if_writable()
            case _:
                return self.unhandled(message)
        return None

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "pending": self.count,
            "written": self.written,
            "commits": self.commits,
            "rejected": self.rejected,
            "url": self.settings.database_url,
            "fault": self.fault,
            "faulty_since": self.fault_since,
            "held": self.count + len(self.updates) if self.fault else 0,  # kept for a retry
            "lost": self.lost,
            "set_aside": list(self.set_aside),
            "synchronous": self._synchronous(),
        }

    def _synchronous(self) -> str:
        """The writer connection's ``synchronous`` level in effect ("full": every commit is
        on disk before it returns); "" when closed or not SQLite."""
        if not isinstance(self.db, peewee.SqliteDatabase):
            return ""
        db: Any = self.db  # peewee's methods are untyped
        try:
            level = int(db.execute_sql("PRAGMA synchronous").fetchone()[0])
        except peewee.PeeweeException:
            return ""
        return SYNCHRONOUS_LEVELS.get(level, str(level))

    # Writing

    def _queue(self, table: str, values: Fields) -> None:
        model_for(table)
        if self.count + len(self.updates) >= MAX_HELD:
            self._lose(f"{table} row")
            return
        self.pending[table].append(dict(values))
        self.count += 1
        self._flush_if_full()

    def _flush_if_full(self) -> None:
        if self.count + len(self.updates) >= self.settings.store.batch_size:
            self._flush()

    def _flush(self, force: bool = False) -> int:
        """Write what is held; answers how many rows, 0 when there was nothing or the store
        is faulty (it tries again once ``retry_at`` has passed, or at once when ``force``d)."""
        if not self.count and not self.updates:
            return 0
        if self.fault and not force and time.monotonic() < self.retry_at:
            return 0
        before = self.written
        try:
            self._attempt(lambda: self._commit(lambda: None))
        except StoreError:
            return 0
        return self.written - before

    def _commit(self, write: Callable[[], T]) -> T:
        """Write what is held, then ``write``, in one transaction: one commit, whose fsyncs
        are what makes it survive a power cut, for the whole batch. What is held is let go
        only once it is committed."""
        with self._db.atomic():
            refused_rows, refused_updates = batch.write(
                self._db, self.pending, self.updates, self.floors, self._refused
            )
            result = write()
        self.commits += 1
        for table in self.pending:
            self.floors.pop(table, None)  # its newest row is now above the floor
        self.written += self.count - refused_rows
        self.rejected += refused_rows + refused_updates
        self.pending, self.count, self.updates = defaultdict(list), 0, []
        return result

    def _insert_now(self, table: str, values: Fields) -> int:
        """Write the row now, after (and with) what is held, and answer its id: committed,
        so durable, before the asker hears of it."""
        model = model_for(table)

        def insert() -> int:
            row = batch.above_floor(self._db, self.floors, table, dict(values))
            return int(model.insert(row).execute(self._db))

        row_id = self._attempt(lambda: self._commit(insert))
        self.written += 1
        self.issued[table] = max(self.issued.get(table, 0), row_id)
        self.floors.pop(table, None)
        return row_id

    def _update(self, table: str, row_id: int, values: Fields, asked: bool = False) -> int:
        """Apply an update after everything queued. Asked, it is committed (with what is held)
        before the answer, the rows changed; told, it joins the batch, as a row does. While
        the store cannot write it is held, in order, and 0 rows are answered."""
        model = model_for(table)
        if asked:
            try:
                return self._attempt(
                    lambda: self._commit(
                        lambda: batch.write_update(self._db, table, row_id, dict(values))
                    )
                )
            except StoreError:
                pass
        else:
            try:
                model.update(
                    dict(values)
                )  # a bad field is the sender's error, now, not the batch's
            except ValueError as exc:
                raise InvalidMessage("Update", str(exc), "values") from exc
        if self.count + len(self.updates) >= MAX_HELD:
            self._lose(f"{table} update")
        else:
            self.updates.append((table, row_id, dict(values)))
            self._flush_if_full()
        return 0

    # Storage faults

    def _attempt(self, write: Callable[[], T]) -> T:
        """Run ``write`` on an open, current database. A storage fault marks the store
        faulty and raises ``StoreError``; success after a fault reports the recovery."""
        if not self._ready():
            raise StoreError(f"the store cannot write: {self.fault}")
        try:
            result = write()
        except peewee.DatabaseError as exc:
            if not (isinstance(exc, peewee.OperationalError) or is_corrupt(exc)):
                raise  # a bad row, not a bad store: the caller's error
            self._fail(exc)
            raise StoreError(f"the store cannot write: {self.fault}") from exc
        self._recovered()
        return result

    def _ready(self) -> bool:
        """Open the database if it is not, or again if its file was deleted or replaced."""
        if self.db is not None and self.path is not None and self._inode() != self.inode:
            self.publish(
                StoreEvent.FILE_REPLACED,
                level="error",
                path=str(self.path),
                consequence="a new store file is created; what the old one held is not in it",
            )
            self.floors = dict(self.issued)
            self._close()
        return self.db is not None or self._open()

    def _open(self) -> bool:
        try:
            if self.path is not None:
                point_readers(self.settings.database_url)
            self._set_aside_if_unusable()
            self.db = open_database(self.settings.database_url, self.lock_wait)
            self.inode = self._inode()
        except (StoreError, OSError, peewee.PeeweeException) as exc:
            self._fail(exc)
            return False
        return True

    def _set_aside_if_unusable(self) -> None:
        """A database file that fails SQLite's ``quick_check``, or a WAL one that cannot leave
        WAL mode (its ``-shm`` unwritable: every reader would map it), is renamed and a new
        one made: supervision needs a store it can write more than the history it held."""
        if self.path is None:
            return
        problem = corruption(self.path, self.lock_wait) or leave_wal(self.path, self.lock_wait)
        if not problem:
            return
        moved = set_aside(self.path)
        self.set_aside.append(str(moved))
        self.floors = dict(self.issued)
        # Published (the bus logs it once it runs, and stores it in the new file).
        self.publish(
            StoreEvent.SET_ASIDE,
            level="error",
            path=str(self.path),
            moved_to=str(moved),
            problem=problem,
            fix="a new store was created; the old history is in the moved file "
            "(sqlite3 FILE .recover can salvage rows from it)",
        )

    def _fail(self, exc: BaseException) -> None:
        reason = fault_text(exc)
        corrupt = is_corrupt(exc)
        self._close()  # the next attempt opens again: new pragmas, a new file if it was lost
        if self.fault:
            self.retry_delay = min(self.retry_delay * 2, RETRY_MAX)
        else:
            self.fault_since, self.retry_delay = time.time(), RETRY_MIN
            self.publish(StoreEvent.DEGRADED, level="error", error=reason, path=str(self.path))
        self.fault = reason
        # A corrupt file is set aside and a new one written at the very next attempt.
        self.retry_at = 0.0 if corrupt else time.monotonic() + self.retry_delay

    def _recovered(self) -> None:
        if not self.fault:
            return
        seconds = round(time.time() - (self.fault_since or time.time()), 3)
        self.fault, self.fault_since = "", None
        self.publish(StoreEvent.RECOVERED, level="warning", seconds=seconds, lost=self.lost)

    def _lose(self, what: str) -> None:
        self.lost += 1
        if self.lost == 1 or self.lost % 1000 == 0:
            self.log.error("store.records_lost", lost=self.lost, last=what, held=MAX_HELD)

    def _inode(self) -> int | None:
        if self.path is None:
            return None
        try:
            return os.stat(self.path).st_ino
        except OSError:
            return None

    def _close(self) -> None:
        db, self.db = self.db, None
        if db is not None:
            try:
                db.close()
            except peewee.PeeweeException as exc:
                self.log.warning("store.close_failed", error=str(exc))

    def _prune_if_writable(self) -> int:
        """Prune by retention; a faulty store prunes at the next hour (told by a timer: a
        storage fault here must not end the actor and what it holds)."""
        if self.fault:
            return 0
        try:
            removed, freed = self._attempt(lambda: retention.prune(self._db, self.settings))
        except StoreError:
            return 0
        if removed:
            self.log.info("store.pruned", rows=removed, pages_freed=freed)
        return removed

    def _refused(self, table: str, exc: BaseException) -> None:
        self.log.error("store.write_rejected", table=table, error=str(exc))


__all__ = ["MAX_HELD", "Store", "model_for", "open_database"]
