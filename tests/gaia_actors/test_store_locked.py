"""A store file another process holds locked (an operator's ``sqlite3`` session in a write
transaction, a backup tool) for longer than the liveness ping timeout: a storage fault the store
reports, holds its rows through and retries, never a hang that replaces it (and, with it, the
bus and every service after it in the tree)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia_actors.app import start_root
from gaia_actors.errors import StoreError
from gaia_actors.messages import Flush, GetState, Insert, InsertNow, fields_of
from gaia_actors.settings import load
from gaia_actors.store.models import HealthCheck
from supervisors import Registry
from tests.conftest import wait_until
from tests.gaia_actors.conftest import write_config

# Long enough that one synced commit on a loaded disk, or a full collection of a big test
# process's heap, is not taken for a hang; the lock is held four times as long.
PING_TIMEOUT = 0.5
LOCK_SECONDS = 4 * PING_TIMEOUT

# Holds a write transaction (SQLite's RESERVED lock: readers go on, no other writer can
# start) on the file for argv[2] seconds, then commits.
HOLDER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO events (ts, name, level, actor, env, data)"
                 " VALUES (1, 'lock.holder', 'info', '', '', '{}')")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    """
)


@contextlib.contextmanager
def write_locked(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holds ``path``'s write lock for ``seconds`` (from when this yields)."""
    command = [sys.executable, "-c", HOLDER, str(path), str(seconds)]
    holder = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=10)


def _check(i: int) -> Insert:
    return Insert("health_checks", fields_of(ts=float(i), env="locked", status="healthy"))


def test_a_store_locked_by_another_process_is_degraded_not_hung_and_loses_no_row(
    tmp_path: Path,
) -> None:
    text = (
        "[store]\nflush_interval = 0.05\n"
        f"[supervision]\nping_interval = 0.05\nping_timeout = {PING_TIMEOUT}\n"
    )
    settings = load(
        write_config(tmp_path, text), environ={"GAIA_STATE_DIR": str(tmp_path / "state")}
    )
    registry = Registry()
    root = start_root(settings, registry, capabilities=())
    try:
        registry.ask("store", Flush())
        with write_locked(settings.state_dir / "gaia.db", LOCK_SECONDS) as holder:
            for i in range(100):
                registry.tell("store", _check(i))
            wait_until(lambda: registry.ask("store", GetState())["fault"], what="the lock seen")
            began = time.monotonic()
            with pytest.raises(StoreError, match="locked"):  # an answer, not a wait for the lock
                registry.ask("store", InsertNow("pipelines", fields_of(kind="k", status="s")))
            assert time.monotonic() - began < PING_TIMEOUT
            for i in range(100, 200):
                registry.tell("store", _check(i))
            holder.wait(timeout=30)  # the lock held its whole time, then let go
        wait_until(lambda: not registry.ask("store", GetState())["fault"], what="recovered")
        registry.ask("store", Flush())
        state = registry.ask("store", GetState())
        store = registry.node("store")
        written = HealthCheck.select().where(HealthCheck.env == "locked").count()
    finally:
        root.stop(block=True, timeout=10)
    assert store is not None
    assert (store.generation, store.restarts) == (1, 0), store.last_error
    assert (written, state["lost"]) == (200, 0)
