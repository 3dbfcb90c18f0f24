"""Backups of a live demo database while it is written to, and restores of them."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from gaia_actors.environments import backups, restores
from gaia_actors.messages import Event, RestoreBackup, TakeBackup
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import (
    EnvTree,
    demo_source,
    free_port,
    http_json,
)

StartTree = Callable[..., EnvTree]


class Writer:
    """POSTs items one after another on a keep-alive connection until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.written = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            while not self.stop.is_set():
                body = json.dumps({"name": f"w-{self.written + 1}", "value": self.written + 1})
                conn.request("POST", "/items", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                if response.status != 201:
                    self.errors.append(f"HTTP {response.status}")
                    return
                self.written += 1
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(repr(exc))
        finally:
            conn.close()

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def items_in(db_file: Path, *, immutable: bool = True) -> list[tuple[int, str, int]]:
    """The rows of a database file; ``immutable`` (for backups: no -wal/-shm, not a byte
    changed) or, for a live-looking directory, a normal open that reads its WAL."""
    uri = f"{db_file.as_uri()}?immutable=1" if immutable else db_file.as_uri()
    connection = sqlite3.connect(uri, uri=True)
    try:
        return connection.execute("SELECT id, name, value FROM items ORDER BY id").fetchall()
    finally:
        connection.close()


def assert_consistent(rows: list[tuple[int, str, int]]) -> None:
    """One writer, in order: a consistent snapshot is exactly items 1..N, each complete."""
    assert rows
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert all(name == f"w-{value}" and value == ident for ident, name, value in rows)


def test_backups_under_concurrent_writes_verify_and_restore_consistently(
    tmp_path: Path, env_tree: StartTree
) -> None:
    source = demo_source(tmp_path / "src")
    tree = env_tree({"prod": {"port": free_port(), "source": str(source), "backup_keep": 2}})
    port = tree.port("prod")
    layout = tree.layout("prod")
    tree.wait_healthy("prod")

    taken = []
    with Writer(port) as writer:
        wait_until(lambda: writer.written >= 20 or writer.errors, timeout=10)
        for _ in range(3):
            before = writer.written
            taken.append(tree.ask("prod", TakeBackup("test")))
            # Each backup is taken while the writer goes on (it never waits for one).
            wait_until(lambda b=before: writer.written > b + 5 or writer.errors, timeout=10)
        assert writer.errors == []
    final = writer.written

    assert all(b["verified"] and b["integrity"] == "ok" for b in taken)
    counts = []
    for backup in taken[-2:]:  # backup_keep = 2: the oldest was pruned
        record = backups.load_backup(Path(backup["path"]))
        assert backups.verify_backup(record)
        rows = items_in(record.path / "app.db")
        assert_consistent(rows)
        counts.append(len(rows))
    assert not Path(taken[0]["path"]).exists()
    assert [b.id for b in backups.list_backups(layout.backups)] == [
        taken[2]["backup"],
        taken[1]["backup"],
    ]
    assert 0 < counts[0] < counts[1] < final

    result = tree.ask("prod", RestoreBackup(taken[1]["backup"]))

    assert result["outcome"] == "succeeded"
    assert result["backup"] == taken[1]["backup"]
    tree.wait_healthy("prod")
    status, body = http_json(port, "GET", "/items?limit=1000")
    assert status == 200
    served = [(i["id"], i["name"], i["value"]) for i in body["items"]]
    assert len(served) == counts[0]
    assert_consistent(served)
    saved = Path(result["saved_copy"])
    assert len(items_in(saved / "app.db", immutable=False)) == final  # kept whole


def test_a_restore_cut_short_by_a_crash_is_finished_at_start(
    tmp_path: Path, env_tree: StartTree
) -> None:
    envs = {"prod": {"port": free_port(), "source": str(demo_source(tmp_path / "src"))}}
    first = env_tree(envs)
    first.wait_healthy("prod")
    layout = first.layout("prod")
    for i in range(1, 4):
        assert http_json(first.port("prod"), "POST", "/items", {"name": f"w-{i}", "value": i})[0]
    taken = first.ask("prod", TakeBackup("test"))
    first.stop()
    # The state a daemon SIGKILLed inside restore() leaves: the backup staged and synced,
    # data/ moved aside, the final rename not done.
    staging = layout.data.with_name("data.restoring.tmp")
    staging.mkdir()
    (staging / "app.db").write_bytes((Path(taken["path"]) / "app.db").read_bytes())
    layout.data.rename(layout.data.with_name("data.replaced-crash"))

    second = env_tree(envs)
    second.wait_healthy("prod")

    assert not staging.exists()
    assert items_in(layout.data / "app.db", immutable=False)
    status, body = http_json(second.port("prod"), "GET", "/items")
    assert status == 200
    assert [i["name"] for i in body["items"]] == ["w-1", "w-2", "w-3"]
    second.events.wait_for("environment.restore_finished")  # the bus may carry it later


def test_repair_data_removes_an_unfinished_staging_copy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "app.db").write_bytes(b"live")
    staging = tmp_path / "data.restoring.tmp"
    staging.mkdir()
    (staging / "app.db").write_bytes(b"half")

    assert not restores.repair_data(data)

    assert not staging.exists()
    assert (data / "app.db").read_bytes() == b"live"
    assert not restores.repair_data(data)  # nothing to do


def test_scheduled_backups_are_taken_verified_and_pruned_by_count(
    tmp_path: Path, env_tree: StartTree
) -> None:
    source = demo_source(tmp_path / "src")
    env = {"port": free_port(), "source": str(source), "backup_schedule": "0.2", "backup_keep": 2}
    tree = env_tree({"prod": env})
    layout = tree.layout("prod")

    def scheduled() -> list[Event]:
        found = tree.events.matching("environment.backup")
        return [e for e in found if e.get("reason") == "scheduled"]

    wait_until(lambda: len(scheduled()) >= 3, timeout=10)

    tree.stop()  # no backup in flight while the directory is looked at

    taken = scheduled()
    assert all(e.get("verified") for e in taken)
    kept = backups.list_backups(layout.backups)
    assert [b.id for b in kept] == [str(e.get("backup")) for e in reversed(taken[-2:])]
    assert all(backups.verify_backup(b) for b in kept)
