"""The store: single writer, batched inserts, read back; the schema migrates forward."""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.app import start_root
from gaia_actors.errors import InvalidMessage, StoreError
from gaia_actors.messages import (
    Crash,
    Event,
    Flush,
    GetState,
    Insert,
    InsertNow,
    Prune,
    Subscribe,
    Update,
    fields_of,
)
from gaia_actors.settings import Settings, load
from gaia_actors.store.database import open_database
from gaia_actors.store.models import EventRow, HealthCheck, Pipeline, closing_connections
from supervisors import Registry
from tests.conftest import wait_until
from tests.gaia_actors.conftest import write_config
from tests.gaia_actors.listener import Listener


def test_batched_inserts_are_written_and_read_back(tree: tuple[Any, Any]) -> None:
    registry, _ = tree
    for i in range(1200):
        registry.tell(
            "store",
            Insert(
                "health_checks",
                fields_of(ts=time.time(), env=f"e{i % 3}", status="healthy", latency_ms=float(i)),
            ),
        )
    registry.ask("store", Flush())
    assert HealthCheck.select().count() == 1200
    assert HealthCheck.select().where(HealthCheck.env == "e1").count() == 400
    state = registry.ask("store", Flush())
    assert state == 0  # nothing left queued


def test_insert_now_returns_the_id_and_update_applies_in_order(tree: tuple[Any, Any]) -> None:
    registry, _ = tree
    row_id = registry.ask(
        "store",
        InsertNow(
            "pipelines", fields_of(kind="dev_to_staging", status="running", started=time.time())
        ),
    )
    assert isinstance(row_id, int)
    registry.ask("store", Update("pipelines", row_id, fields_of(status="succeeded")))
    assert Pipeline.get_by_id(row_id).status == "succeeded"


def test_a_write_asked_of_a_hung_store_is_not_applied_after_the_ask_timed_out(
    tree: tuple[Any, Any],
) -> None:
    """An asker told "no reply" must be able to trust it: the hung store, once awake, drops
    the write instead of applying it behind the asker's back (a retry cannot write it twice)."""
    from gaia_actors.messages import Hang
    from supervisors import AskTimeout

    registry, _ = tree
    row_id = registry.ask("store", InsertNow("pipelines", pipeline_row("k")))
    registry.tell("store", Hang(1.0))
    with pytest.raises(AskTimeout):
        registry.ask("store", InsertNow("pipelines", pipeline_row("late")), timeout=0.2)
    with pytest.raises(AskTimeout):
        registry.ask("store", Update("pipelines", row_id, fields_of(status="late")), timeout=0.2)
    registry.tell("store", Update("pipelines", row_id, fields_of(error="told")))  # no asker
    registry.ask("store", Flush(), timeout=10)  # after the hang and everything queued
    assert Pipeline.select().where(Pipeline.kind == "late").count() == 0
    row = Pipeline.get_by_id(row_id)
    assert (row.status, row.error) == ("running", "told")


@pytest.mark.serial  # 6,000 queued inserts must fit in the store's 3 s ping timeout
def test_pruning_gives_the_freed_pages_back_to_the_file_system(
    tree: tuple[Any, Any], settings: Settings
) -> None:
    registry, _ = tree
    old = time.time() - 400 * 86400  # beyond every retention
    for i in range(6000):
        row = fields_of(ts=old, env="e", name=f"m{i}", labels={"pad": "x" * 200}, value=1.0)
        registry.tell("store", Insert("metric_samples", row))
    registry.ask("store", Flush())
    db = settings.state_dir / "gaia.db"

    def pages() -> tuple[int, int]:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return (conn.execute("PRAGMA page_count").fetchone()[0],
                    conn.execute("PRAGMA freelist_count").fetchone()[0])  # fmt: skip

    full, _ = pages()
    assert registry.ask("store", Prune()) == 6000
    after, free = pages()
    assert free == 0
    assert after < full / 2  # the file shrank (once checkpointed); nothing left as free pages
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental


def test_prune_keeps_the_newest_promotions_and_any_unfinished_one(tmp_path: Path) -> None:
    from gaia_actors.app import start_root
    from gaia_actors.settings import load
    from gaia_actors.store.models import Stage
    from supervisors import Registry

    config = tmp_path / "gaia.toml"
    config.write_text("[pipeline]\nkeep = 3\n", encoding="utf-8")
    settings = load(config, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})
    registry = Registry()
    root = start_root(settings, registry, capabilities=())
    try:
        statuses = ["running", "interrupted", "failed", "succeeded", "succeeded", "succeeded",
                    "succeeded", "succeeded"]  # fmt: skip
        ids = []
        for i, status in enumerate(statuses):
            recovery = "pending" if status == "interrupted" else ""
            row = fields_of(kind="k", status=status, started=float(i), recovery=recovery)
            ids.append(registry.ask("store", InsertNow("pipelines", row)))
            stage = fields_of(pipeline_id=ids[-1], position=1, name="s", kind="command",
                              status="passed")  # fmt: skip
            registry.ask("store", InsertNow("stages", stage))
        assert registry.ask("store", Prune()) == 2 * 3  # #3, #4, #5 and their stages
        kept = sorted(row.id for row in Pipeline.select())
        assert kept == [ids[0], ids[1], *ids[5:]]  # unfinished ones, then the newest 3
        assert sorted(row.pipeline_id for row in Stage.select()) == kept
    finally:
        root.stop(block=True, timeout=10)


def pipeline_row(kind: str) -> Any:
    return fields_of(kind=kind, status="running", started=1.0)


def db_fds(settings: Settings) -> int:
    """Descriptors this process holds on the store's database file."""
    path = str(settings.state_dir / "gaia.db")
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}") == path
    return count


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Nothing left to the cycle collector: what is not closed stays open."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_gc")
def test_reader_threads_and_crashed_store_generations_leave_no_connection_open(
    tree: tuple[Any, Any], settings: Settings
) -> None:
    registry, _ = tree

    @closing_connections
    def read() -> None:
        assert Pipeline.select().count() >= 0

    def in_threads(count: int) -> None:
        for _ in range(count):  # as control requests and pipeline runs do, one thread each
            thread = threading.Thread(target=read)
            thread.start()
            thread.join(10)

    # The store's own connection, plus at most one: SQLite keeps a closed connection's
    # descriptor while another connection of the process holds a lock on the file, and
    # reuses it for the next open. Left to the collector, there would be one per thread.
    # A descriptor left open stays: the count is waited for, as another connection of the
    # process (the store writing) may hold one for a moment.
    in_threads(20)
    wait_until(lambda: db_fds(settings) <= 2, timeout=5, what="at most two descriptors")
    for generation in (2, 3):
        registry.tell("store", Crash("leak check"))
        wait_until(lambda g=generation: registry.node("store").generation == g)
        registry.ask("store", Flush())
    wait_until(lambda: db_fds(settings) <= 2, timeout=5, what="at most two descriptors")


def test_unknown_table_is_refused_without_killing_the_store(tree: tuple[Any, Any]) -> None:
    registry, _ = tree
    with pytest.raises(InvalidMessage, match="unknown table 'nope'"):
        registry.ask("store", Insert("nope", ()))
    registry.tell("store", Insert("nope", ()))  # told: logged and dropped, not a crash
    registry.ask("store", Flush())
    assert registry.node("store").restarts == 0


def test_bus_stores_and_delivers_events(tree: tuple[Any, Any]) -> None:
    registry, _ = tree
    registry.tell("bus", Event("test.happened", env="dev", data=fields_of(n=1)))
    registry.ask("store", Flush())
    wait_until(lambda: EventRow.select().where(EventRow.name == "test.happened").count() == 1)
    row = EventRow.get(EventRow.name == "test.happened")
    assert row.env == "dev"
    assert row.data["n"] == 1


def test_bus_delivers_matching_events_to_subscribers(tree: tuple[Any, Any]) -> None:
    registry, _ = tree
    seen: list[Event] = []
    with Listener(registry, seen.append) as listener:
        registry.tell("bus", Subscribe(listener.name, ("health.*",)))
        registry.tell("bus", Event("health.changed"))
        registry.tell("bus", Event("stage.started"))
        registry.tell("bus", Event("health.checked"))
        wait_until(lambda: len(seen) == 2)
        assert [e.name for e in seen] == ["health.changed", "health.checked"]
        registry.tell(
            "bus", Subscribe("nobody", ("*",))
        )  # a subscriber that is not running is harmless
        registry.tell("bus", Event("health.changed"))
        wait_until(lambda: len(seen) == 3)


FLOOD_CONFIG = """
[store]
flush_interval = 0.05
batch_size = 50
[supervision]
ping_interval = 0.05
ping_timeout = 0.5
"""


# A 0.5 s ping timeout for every actor: the store's flushes (synced to disk) must keep within
# it, which other workers' load on the CPU and the disk stretches; the store's batches are
# small for it (a flush of 500 rows took 0.06-0.23 s alone).
@pytest.mark.serial
def test_a_bus_behind_a_deep_backlog_is_not_replaced_and_stores_every_event(
    tmp_path: Path,
) -> None:
    # The bus takes several ping timeouts to work through thousands of queued events: its
    # pings wait behind them, yet it finishes events all along, so it is busy, not hung.
    config = write_config(tmp_path, FLOOD_CONFIG)
    settings = load(config, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})
    # A full garbage collection stops every thread while it walks the heap; a test worker's
    # heap (every earlier test's objects) made one pause the store past a 0.2 s timeout.
    # Frozen, those objects are not walked: a collection sees this test's own.
    gc.freeze()
    registry = Registry()
    root = start_root(settings, registry, capabilities=())
    count = 15_000
    try:
        began = time.monotonic()
        for i in range(count):
            registry.tell("bus", Event("test.flood", data=fields_of(i=i)))
        registry.ask("bus", GetState(), timeout=60)  # answered once the backlog is through
        drained = time.monotonic() - began
        registry.ask("store", Flush(), timeout=60)
        stored = EventRow.select().where(EventRow.name == "test.flood").count()
        bus = registry.node("bus")
    finally:
        root.stop(block=True, timeout=10)
        gc.unfreeze()
    print(f"drained {count} events in {drained:.2f} s")
    assert drained > 2 * settings.supervision.ping_timeout
    assert bus is not None
    assert (bus.generation, bus.restarts) == (1, 0)
    assert stored == count


def test_open_database_adds_missing_columns(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # an older schema without later columns
        conn.execute(
            "CREATE TABLE health_checks (id INTEGER PRIMARY KEY, ts REAL, env TEXT, status TEXT)"
        )
        conn.execute("INSERT INTO health_checks (ts, env, status) VALUES (1.0, 'prod', 'down')")
    open_database(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(health_checks)")}
        assert {"latency_ms", "rss_bytes", "release"} <= columns
        assert conn.execute("SELECT status FROM health_checks").fetchall() == [("down",)]
    # The file format bytes say "rollback journal" (2 would be WAL, whose -shm SQLite maps).
    assert path.read_bytes()[18:20] == b"\x01\x01"


def test_a_write_transaction_waits_for_another_writers_instead_of_failing(tmp_path: Path) -> None:
    """The store's writer reads before it writes (ids above a lost file's); begun deferred, it
    held a read lock that SQLite refuses at once to raise while another connection holds the
    write lock, so a replaced store finishing its batch made the new one fail."""
    path = tmp_path / "gaia.db"
    writer = open_database(f"sqlite:///{path}")
    writer.execute_sql("CREATE TABLE rows (name TEXT)")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO rows VALUES ('old')")
    finisher = threading.Timer(0.3, other.execute, args=("COMMIT",))
    finisher.start()
    try:
        with writer.atomic():
            seen = writer.execute_sql("SELECT count(*) FROM rows").fetchone()[0]
            writer.execute_sql("INSERT INTO rows VALUES ('new')")
    finally:
        finisher.join()
        other.close()
        writer.close()
    assert seen == 1  # it waited for the other transaction's commit, then read its row
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM rows").fetchall() == [("old",), ("new",)]


def test_a_hung_store_replaced_and_waking_later_loses_no_row_and_leaves_no_lock(
    tmp_path: Path,
) -> None:
    """A hung store is replaced; when the old one wakes, it writes what it had queued with its
    own connection and stops, and the new one keeps writing (no 'database is locked')."""
    from gaia_actors.app import start_root
    from gaia_actors.messages import Hang
    from gaia_actors.settings import load
    from supervisors import Registry

    config = tmp_path / "gaia.toml"
    config.write_text(
        "[store]\nflush_interval = 0.05\n[supervision]\nping_interval = 0.05\nping_timeout = 0.3\n",
        encoding="utf-8",
    )
    settings = load(config, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})
    registry = Registry()
    root = start_root(settings, registry, capabilities=())
    try:
        old = registry.lookup("store")
        registry.tell("store", Hang(1.5))
        for i in range(50):  # queued behind the hang, in the old generation's inbox
            registry.tell(
                "store", Insert("health_checks", fields_of(ts=float(i), env="old", status="x"))
            )
        wait_until(lambda: registry.is_running("store") and registry.lookup("store") is not old)
        for i in range(50):
            registry.tell(
                "store", Insert("health_checks", fields_of(ts=float(i), env="new", status="x"))
            )
        registry.ask("store", Flush())
        # It woke, wrote what it had queued (as it ends: after it stopped counting as alive),
        # and let go of the write lock with that commit.
        wait_until(lambda: HealthCheck.select().where(HealthCheck.env == "old").count() == 50)
        wait_until(lambda: not old.is_alive(), timeout=10)
        registry.ask("store", InsertNow("pipelines", fields_of(kind="k", status="s", started=1.0)))
        assert HealthCheck.select().where(HealthCheck.env == "new").count() == 50
    finally:
        root.stop(block=True, timeout=10)


def test_store_writes_through_its_own_connection_not_the_shared_proxy(
    tree: tuple[Any, Any], settings: Settings, tmp_path: Path
) -> None:
    """The proxy may be re-pointed by a newer generation at any moment (even mid-transaction);
    a store's writes must stay on the database it opened."""
    registry, _ = tree
    other = tmp_path / "other.db"
    open_database(f"sqlite:///{other}")  # re-points the shared proxy elsewhere
    try:
        registry.tell("store", Insert("health_checks", fields_of(ts=1.0, env="mine", status="x")))
        registry.ask("store", Flush())
    finally:
        open_database(settings.database_url)
    with sqlite3.connect(settings.state_dir / "gaia.db") as conn:
        assert conn.execute("SELECT count(*) FROM health_checks WHERE env='mine'").fetchone() == (
            1,
        )
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT count(*) FROM health_checks").fetchone() == (0,)


def _check(at: float, env: str = "held") -> Insert:
    return Insert("health_checks", fields_of(ts=at, env=env, status="healthy"))


def test_a_store_that_cannot_write_holds_a_bounded_backlog_then_writes_it(
    tree: tuple[Any, Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, _ = tree
    monkeypatch.setattr("gaia_actors.store.actor.MAX_HELD", 50)
    registry.ask("store", InsertNow("pipelines", pipeline_row("dev_to_staging")))
    journal = settings.state_dir / "gaia.db-journal"
    journal.unlink(missing_ok=True)
    journal.mkdir()  # SQLite cannot open its journal: no write transaction can start
    with pytest.raises(StoreError, match="cannot write"):
        registry.ask("store", InsertNow("pipelines", pipeline_row("dev_to_staging")))
    changed = registry.ask("store", Update("pipelines", 1, fields_of(status="failed")))
    assert changed == 0  # held, in order, for when the store can write
    for i in range(60):
        registry.tell("store", _check(float(i)))
    state = registry.ask("store", GetState())
    assert state["fault"]
    assert state["held"] == 50
    assert state["lost"] >= 10  # the rows beyond the bound (and the events about the fault)

    journal.rmdir()

    wait_until(lambda: not registry.ask("store", GetState())["fault"], timeout=10)
    registry.ask("store", Flush())
    assert HealthCheck.select().where(HealthCheck.env == "held").count() >= 40
    assert Pipeline.get_by_id(1).status == "failed"
    lost = registry.ask("store", GetState())["lost"]
    registry.tell("store", _check(99.0, "after"))
    registry.ask("store", Flush())
    assert HealthCheck.select().where(HealthCheck.env == "after").count() == 1
    assert registry.ask("store", GetState())["lost"] == lost  # nothing lost once it writes
