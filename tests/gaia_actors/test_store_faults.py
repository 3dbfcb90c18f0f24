"""Supervision survives the store's own faults (real daemon, real files): an unwritable
journal, a store file deleted while running, an immutable ``-shm`` of an old WAL store, and a
corrupt store at start. The daemon keeps supervising, reports the fault, and recovers."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest

from gaia_actors.console.client import Client
from gaia_actors.layout import Layout
from gaia_actors.store.database import fault_text
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import (
    demo_source,
    free_port,
    health,
    kill_services,
    load_settings,
    pids_with_data_dir,
    write_config,
)
from tests.gaia_actors.environments.test_daemon_restart import REPO, Daemon


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` cannot be opened for writing, even by root (immutable), until the block ends."""
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {made.stderr.decode().strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o000)
        try:
            yield
        finally:
            path.chmod(mode)


@contextlib.contextmanager
def unwritable_between_writes(database: Path) -> Iterator[None]:
    """The rollback journal of ``database`` made unwritable between two write transactions
    (this takes the write lock for it, once the store's transaction ends, when the journal is
    empty). Made so in the middle of one, the journal would keep that transaction's pages: a
    hot journal that no reader can roll back, so every new read of the store would fail
    ("unable to open database file") until the journal is writable again."""
    journal = database.with_name(database.name + "-journal")
    with contextlib.ExitStack() as held:
        writer = sqlite3.connect(database, timeout=30, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            held.enter_context(unwritable(journal))
            assert journal.stat().st_size == 0
        finally:
            writer.close()  # its transaction wrote nothing: the store writes next
        yield


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    source = demo_source(tmp_path / "src")
    envs = {"dev": {"port": free_port(), "source": str(source)}}
    config = write_config(tmp_path, envs, extra='[metrics]\nlisten = ""\n')
    settings = load_settings(tmp_path, config)
    running = Daemon(tmp_path, config, settings)
    try:
        yield running
    finally:
        running.close()
        kill_services([Layout.of(settings, "dev").data])


def service_pid(daemon: Daemon) -> int | None:
    """The dev service's pid once it answers its health check."""
    answer = health(daemon.settings.environments["dev"].port)
    pids = pids_with_data_dir(Layout.of(daemon.settings, "dev").data)
    return pids[0] if answer is not None and answer[0] == 200 and len(pids) == 1 else None


def running(daemon: Daemon) -> bool:
    return daemon.proc is not None and daemon.proc.poll() is None


def store_state(daemon: Daemon) -> dict[str, Any]:
    with Client.connect(daemon.settings.socket_path) as client:
        state: dict[str, Any] = client.ask("store", "GetState", timeout=5)
        return state


def stored_events(daemon: Daemon, name: str) -> int:
    """Rows of event ``name`` in the store (0 while it has no file or no table yet)."""
    uri = f"file:{daemon.settings.state_dir / 'gaia.db'}?mode=ro"  # never creates the file
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            query = "SELECT count(*) FROM events WHERE name = ?"
            return int(conn.execute(query, (name,)).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def cli(daemon: Daemon, *args: str) -> str:
    """The CLI's output for ``args`` (it must succeed)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--config", str(daemon.config), *args],
        capture_output=True,
        text=True,
        env=daemon.environ,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def store_status(daemon: Daemon) -> dict[str, Any]:
    with Client.connect(daemon.settings.socket_path) as client:
        status: dict[str, Any] = client.command("status", {})["store"]
        return status


def test_an_unwritable_journal_degrades_the_store_and_supervision_goes_on(daemon: Daemon) -> None:
    daemon.start()
    first = wait_until(lambda: service_pid(daemon), timeout=20)
    store = daemon.settings.state_dir / "gaia.db"
    wait_until(store.with_name("gaia.db-journal").exists, timeout=10)  # kept between writes

    with unwritable_between_writes(store):
        # The kill makes events to write (a quiet daemon may write nothing for seconds), and
        # supervision still restarts the service.
        os.kill(int(str(first)), signal.SIGKILL)
        wait_until(lambda: daemon.log_events("store.degraded"), timeout=20)
        second = wait_until(lambda: (pid := service_pid(daemon)) != first and pid, timeout=20)
        assert second
        assert "store: DEGRADED" in cli(daemon, "status")
        held = store_state(daemon)
        assert held["fault"]
        assert held["held"] > 0
        assert held["lost"] == 0

    wait_until(lambda: daemon.log_events("store.recovered"), timeout=20)
    state = store_state(daemon)
    assert (state["fault"], state["held"], state["lost"]) == ("", 0, 0)
    # What happened meanwhile was held and written once the journal could be written again.
    assert stored_events(daemon, "store.degraded") == 1
    assert stored_events(daemon, "environment.exited") >= 1
    assert running(daemon)
    assert store_status(daemon)["status"] == "ok"


def test_a_store_file_deleted_while_running_is_replaced(daemon: Daemon) -> None:
    daemon.start()
    wait_until(lambda: service_pid(daemon), timeout=20)
    store = daemon.settings.state_dir / "gaia.db"
    store.unlink()

    wait_until(lambda: daemon.log_events("store.file_replaced"), timeout=10)
    os.kill(int(str(service_pid(daemon))), signal.SIGKILL)
    wait_until(lambda: stored_events(daemon, "environment.exited") >= 1, timeout=20)
    assert running(daemon)


def _wal_store(path: Path) -> None:
    """A store left by a daemon that used WAL: its -shm stays beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE leftover (x)")
    conn.commit()
    conn.close()
    path.with_name(path.name + "-shm").write_bytes(b"")


def test_an_immutable_shm_beside_an_old_wal_store_is_no_sigbus(daemon: Daemon) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a file immutable needs root")
    store = daemon.settings.state_dir / "gaia.db"
    _wal_store(store)
    with unwritable(store.with_name("gaia.db-shm")):
        daemon.start()
        moved = wait_until(lambda: daemon.log_events("store.set_aside"), timeout=10)
        assert isinstance(moved, list)
        assert len(moved) == 1
        assert "cannot leave WAL mode" in moved[0]["problem"]
        wait_until(lambda: service_pid(daemon), timeout=20)  # supervising, storing
        assert stored_events(daemon, "store.set_aside") == 1
        assert running(daemon)
    assert store.read_bytes()[18:20] == b"\x01\x01"  # a new store, not WAL: no -shm to map
    with sqlite3.connect(moved[0]["moved_to"]) as conn:  # the old one kept, with its table
        assert conn.execute("SELECT count(*) FROM leftover").fetchone() == (0,)


def _store_with_history(path: Path) -> None:
    """A store with some history in it (enough pages for garbage to land among the tables)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE incidents (id INTEGER PRIMARY KEY, env TEXT, detail TEXT)")
        rows = [("dev", "x" * 200)] * 500
        conn.executemany("INSERT INTO incidents (env, detail) VALUES (?, ?)", rows)
        conn.commit()


@pytest.mark.parametrize("where", ["header", "pages"])
def test_a_corrupt_store_at_start_is_set_aside_and_a_new_one_used(
    daemon: Daemon, where: str
) -> None:
    store = daemon.settings.state_dir / "gaia.db"
    _store_with_history(store)
    with store.open("r+b") as handle:  # 8 KiB of garbage over the header or over the tables
        handle.seek(0 if where == "header" else 8192)
        handle.write(os.urandom(8192))

    daemon.start()

    moved = wait_until(lambda: daemon.log_events("store.set_aside"), timeout=10)
    assert isinstance(moved, list)
    assert len(moved) == 1, moved
    assert Path(moved[0]["moved_to"]).exists()
    assert ".recover" in moved[0]["fix"]
    wait_until(lambda: service_pid(daemon), timeout=20)
    cli(daemon, "incidents")  # reads the new store: no internal error
    with Client.connect(daemon.settings.socket_path) as client:
        failover = next(n for n in client.actors() if n["name"] == "failover")
        status = client.command("status", {})
    assert (failover["restarts"], failover["state"]) == (0, "running")
    assert status["store"]["set_aside"] == [moved[0]["moved_to"]]
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_a_failed_write_is_told_by_its_own_error_not_by_the_rollback_after_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gaia.db"
    db = peewee.SqliteDatabase(str(path), pragmas={"journal_mode": "truncate"})
    db.execute_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    journal = tmp_path / "gaia.db-journal"
    journal.unlink(missing_ok=True)  # kept (truncated) between write transactions
    journal.mkdir()  # SQLite cannot open its journal
    with pytest.raises(peewee.OperationalError) as failed, db.atomic():
        db.execute_sql("INSERT INTO t (v) VALUES (1)")
    # SQLite raises its failed rollback; the write's own error is what an operator needs.
    assert "no transaction is active" in str(failed.value)
    assert fault_text(failed.value) == "disk I/O error"
    assert fault_text(peewee.OperationalError("database is locked")) == "database is locked"
