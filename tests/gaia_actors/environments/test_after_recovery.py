"""What follows a recovery is judged on its own (real processes, real SQLite).

A service that is healthy again after a ladder step has ended that failure: the next one is
a new failure, restarted within the budget, not the ladder step's failure (which would take
the next step, up to parking the environment although restarts work). And data replaced on
purpose is the data-loss watch's baseline at once: a database lost right after a restore is
data loss, even before the watch's next look.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

from gaia_actors.control.commands import CommandContext
from gaia_actors.environments import commands as env_commands
from gaia_actors.messages import Fail
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import EnvTree
from tests.gaia_actors.environments.test_environment import add_items, item_count
from tests.gaia_actors.environments.test_evidence import corrupt, env, wait_for_loss

StartTree = Callable[..., EnvTree]


def test_a_failure_soon_after_a_ladder_restore_that_got_healthy_is_restarted_not_parked(
    tmp_path: Path, env_tree: StartTree
) -> None:
    # stable_after is 10 s: the kill below comes well within it.
    tree = env_tree({"prod": env(tmp_path)})
    layout, port = tree.layout("prod"), tree.port("prod")
    first = tree.wait_healthy("prod")
    add_items(port, 2)
    env_commands.backup(CommandContext(tree.settings, tree.registry), "prod")
    os.kill(first.pid, signal.SIGSTOP)
    corrupt(layout)
    os.kill(first.pid, signal.SIGKILL)
    tree.events.wait_for("supervisor.ladder_step_done", timeout=20)
    restored = tree.wait_healthy("prod", pid_not=first.pid)
    # The actor told its supervisor it is proven before its status said healthy, and tells
    # it of the kill after that: the supervisor hears them in that order.
    mark = tree.events.mark()

    os.kill(restored.pid, signal.SIGKILL)  # a new failure, on data that verifies

    tree.events.wait_for("supervisor.restart", timeout=10, after=mark)
    assert tree.events.matching("supervisor.child_proven", env=None)
    again = tree.wait_healthy("prod", pid_not=restored.pid)
    assert again.release == restored.release
    assert item_count(port) == 2
    assert [str(e.get("step")) for e in tree.events.matching("supervisor.ladder_step")] == [
        "restore"
    ]
    assert tree.events.matching("environment.failed") == []
    assert tree.node_state("prod") == "running"


def test_a_database_deleted_right_after_a_restore_is_data_loss(
    tmp_path: Path, env_tree: StartTree
) -> None:
    # Looks 2 s apart: the deletion comes before the first look after the restore.
    tree = env_tree({"prod": env(tmp_path, data_check_interval=2.0)})
    layout, port = tree.layout("prod"), tree.port("prod")
    tree.wait_healthy("prod")
    add_items(port, 2)
    ctx = CommandContext(tree.settings, tree.registry)
    env_commands.backup(ctx, "prod")
    env_commands.restore(ctx, "prod")

    for name in ("app.db", "app.db-wal", "app.db-shm"):
        (layout.data / name).unlink(missing_ok=True)

    assert wait_for_loss(tree)["lost"] == ["app.db disappeared"]


def test_a_service_failed_over_on_a_deleted_database_is_a_data_loss_with_its_rows_rescued(
    tmp_path: Path, env_tree: StartTree
) -> None:
    # The watch looks every 3 s: the failover's Fail comes before its next look, as a
    # failover on HTTP 503 (three checks 0.25 s apart) can.
    keys = env(tmp_path, data_check_interval=3.0, restore_on_data_loss=True)
    tree = env_tree({"prod": keys})
    layout, port = tree.layout("prod"), tree.port("prod")
    before = tree.wait_healthy("prod")
    add_items(port, 2, "backed-up")
    env_commands.backup(CommandContext(tree.settings, tree.registry), "prod")
    add_items(port, 3, "after-the-backup")
    wait_until(lambda: tree.status("prod").watched == ("app.db",), timeout=5)
    for name in ("app.db", "app.db-wal", "app.db-shm"):
        (layout.data / name).unlink(missing_ok=True)

    tree.registry.tell("environment.prod", Fail("health down for 3 checks", cause="error"))

    replaced = tree.events.wait_for("alert.data_replaced", timeout=15)
    tree.wait_healthy("prod", pid_not=before.pid)
    assert wait_for_loss(tree)["lost"] == ["app.db disappeared"]
    assert "app.db" in list(replaced.get("rescued"))
    saved = Path(str(replaced.get("saved_copy")))
    with sqlite3.connect(saved / "app.db") as kept:  # the deleted file, copied from the process
        assert kept.execute("SELECT count(*) FROM items").fetchone()[0] == 5
    kept.close()
    assert item_count(port) == 2
    assert tree.events.matching("supervisor.ladder_step") == []
