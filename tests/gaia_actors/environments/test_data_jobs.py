"""Data jobs run off the environment actor's mailbox: a slow backup is not a hung actor."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gaia_actors import process
from gaia_actors.environments import backups
from gaia_actors.errors import Busy
from gaia_actors.events import EnvironmentEvent, SupervisorEvent
from gaia_actors.layout import actor_name
from gaia_actors.messages import RestoreBackup, TakeBackup
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import EnvTree, demo_source, free_port

StartTree = Callable[..., EnvTree]
PING_TIMEOUT = 0.3
STOP_GRACE = 0.2
# The liveness timeout the environments supervisor gives its children (a stop's worst case on
# top of the configured one), which a backup here outlasts.
EFFECTIVE_PING_TIMEOUT = STOP_GRACE + process.KILL_TIMEOUT + PING_TIMEOUT


class Asked:
    """An ask running in a thread: its reply, or what it raised."""

    def __init__(self, tree: EnvTree, message: object) -> None:
        self.reply: Any = None
        self.error: Exception | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(tree, message), daemon=True).start()

    def _run(self, tree: EnvTree, message: object) -> None:
        try:
            self.reply = tree.ask("prod", message, timeout=60)
        except Exception as exc:  # handed to the test, which raises it
            self.error = exc
        finally:
            self.done.set()

    def result(self) -> Any:
        assert self.done.wait(30), "no reply"
        if self.error is not None:
            raise self.error
        return self.reply


def locked_ledger(data_dir: Path) -> sqlite3.Connection:
    """A database in rollback-journal mode that another program holds an exclusive write
    transaction on: nothing can read it, a backup included, until that commits."""
    path = data_dir / "ledger.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, note TEXT)")
        db.execute("INSERT INTO entries (note) VALUES ('opening')")
    db.close()
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO entries (note) VALUES ('committed while the backup waited')")
    return writer


def test_a_backup_slower_than_the_liveness_timeout_keeps_the_actor_and_its_answers(
    tmp_path: Path, env_tree: StartTree
) -> None:
    source = demo_source(tmp_path / "src")
    env: dict[str, object] = {"port": free_port(), "source": str(source), "stop_grace": STOP_GRACE}
    tree = env_tree(
        {"prod": env}, supervision={"ping_interval": 0.05, "ping_timeout": PING_TIMEOUT}
    )
    tree.wait_healthy("prod")
    writer = locked_ledger(tree.layout("prod").data)
    try:
        first = Asked(tree, TakeBackup("manual"))
        wait_until(lambda: tree.status("prod").operation == "backup", timeout=10)
        second = Asked(tree, TakeBackup("manual"))  # waits its turn behind the first
        with pytest.raises(Busy, match="backup"):
            tree.ask("prod", RestoreBackup(""))
        held_until = time.monotonic() + EFFECTIVE_PING_TIMEOUT + 1.0
        answers = 0
        while time.monotonic() < held_until:
            started = time.monotonic()
            assert tree.status("prod").operation == "backup"
            assert time.monotonic() - started < 1.0
            answers += 1
            time.sleep(0.1)  # a pace for the status queries, not a wait for the backup
        assert not first.done.is_set()
        writer.execute("COMMIT")
    finally:
        writer.close()

    taken, again = first.result(), second.result()
    assert taken["verified"]
    assert again["verified"]
    assert taken["backup"] < again["backup"]  # one after the other
    ledger = backups.load_backup(Path(taken["path"])).path / "ledger.db"
    with sqlite3.connect(ledger) as copy:
        assert copy.execute("SELECT count(*) FROM entries").fetchone()[0] == 2
    copy.close()
    assert answers > EFFECTIVE_PING_TIMEOUT / 0.5
    assert tree.events.names(SupervisorEvent.CHILD_HUNG) == []
    node = tree.registry.node(actor_name("prod"))
    assert node is not None
    assert node.generation == 1
    assert tree.status("prod").operation is None


def test_a_service_that_dies_during_a_backup_is_restarted_only_once_the_backup_is_done(
    tmp_path: Path, env_tree: StartTree
) -> None:
    source = demo_source(tmp_path / "src")
    tree = env_tree({"prod": {"port": free_port(), "source": str(source)}})
    before = tree.wait_healthy("prod")
    assert before.pid is not None
    writer = locked_ledger(tree.layout("prod").data)
    try:
        taken = Asked(tree, TakeBackup("manual"))
        wait_until(lambda: tree.status("prod").operation == "backup", timeout=10)
        mark = tree.events.mark()
        os.kill(before.pid, signal.SIGKILL)
        wait_until(lambda: tree.status("prod").state == "stopped", timeout=10)
        # The exit waits for the backup: no failure, restart or ladder step touches the data
        # under it (the actor that answered is still the first generation).
        assert tree.events.names(EnvironmentEvent.EXITED) == []
        assert tree.events.names(SupervisorEvent.CHILD_FAILED) == []
        writer.execute("COMMIT")
    finally:
        writer.close()

    assert taken.result()["verified"]
    exited = tree.events.wait_for(EnvironmentEvent.EXITED, after=mark)
    backed_up = tree.events.wait_for(EnvironmentEvent.BACKUP, after=mark)
    names = [e.name for e in tree.events.events[mark:]]
    assert names.index(backed_up.name) < names.index(exited.name)
    assert tree.wait_healthy("prod", pid_not=before.pid).release == before.release
