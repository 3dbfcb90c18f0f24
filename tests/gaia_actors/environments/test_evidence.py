"""The recovery ladder reads the evidence before it touches data (real processes, real SQLite).

A cause the environment cannot fix (its port held by another program, a command that is not
installed, an unknown placeholder) blocks it with that reason and leaves its data alone; it
starts again by itself once the cause is gone. Data is replaced only when it fails its
check, and then the replaced data is kept, named, and put back with ``restore --undo``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gaia_actors.control.commands import CommandContext, UsageError
from gaia_actors.environments import commands as env_commands
from gaia_actors.environments.tree import actor_name
from gaia_actors.layout import Layout
from gaia_actors.messages import TakeBackup
from gaia_actors.monitoring import commands as monitoring_commands
from gaia_actors.monitoring.views import render_status
from gaia_actors.settings import Settings
from gaia_actors.store.models import Incident
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import EnvTree, demo_source, free_port
from tests.gaia_actors.environments.test_environment import add_items, item_count

StartTree = Callable[..., EnvTree]
# Binds the port the moment it is free: started before its holder is killed, it is listening
# long before a restarted service (a new Python process) tries to.
SQUATTER = """
import errno, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
print("waiting", flush=True)
while True:
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
        break
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        time.sleep(0.001)
s.listen()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def squatter() -> Iterator[Callable[[int], subprocess.Popen[str]]]:
    """Starts another program that listens on a port as soon as it is free (until the test
    ends it); it has said ``waiting`` when started, and says ``ready`` once it listens."""
    started: list[subprocess.Popen[str]] = []

    def start(port: int) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", SQUATTER, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(5)


def env(tmp_path: Path, **keys: object) -> dict[str, object]:
    return {"port": free_port(), "source": str(demo_source(tmp_path / "src")), **keys}


def with_command(env_name: str, *argv: str) -> Callable[[Settings], Settings]:
    """Settings whose environment runs ``argv`` (set after loading: a config file with a
    typo in it may be refused at load, and this is about a daemon that runs one anyway)."""

    def adjust(settings: Settings) -> Settings:
        config = dataclasses.replace(settings.environments[env_name], command=argv)
        return dataclasses.replace(
            settings, environments={**settings.environments, env_name: config}
        )

    return adjust


def make_db(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO things (name) VALUES (?)", [(f"t{i}",) for i in range(rows)])
    db.close()


def count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        result = int(db.execute("SELECT count(*) FROM things").fetchone()[0])
    db.close()
    return result


# --------------------------------------------------------------------------- blocked


def test_a_port_squatter_blocks_the_environment_which_resumes_with_its_data_once_freed(
    tmp_path: Path, env_tree: StartTree, squatter: Callable[[int], subprocess.Popen[str]]
) -> None:
    tree = env_tree({"prod": env(tmp_path)})
    port = tree.port("prod")
    before = tree.wait_healthy("prod")
    add_items(port, 5, "kept")
    tree.ask("prod", TakeBackup("before"))
    add_items(port, 2, "after-backup")
    # The first restart comes at once: the squatter, already waiting, takes the port before
    # the restarted service can.
    other = squatter(port)

    os.kill(before.pid, signal.SIGKILL)
    assert other.stdout is not None
    assert other.stdout.readline().strip() == "ready"

    blocked = tree.events.wait_for("environment.blocked", timeout=15)
    reason = str(blocked.get("reason"))
    assert f"port {port} on 127.0.0.1 is held by pid {other.pid} (python" in reason
    assert tree.node_state("prod") == "blocked"
    node = tree.registry.node(actor_name("prod"))
    assert node is not None
    assert node.last_error == f"blocked: {reason}"  # what `status` shows in its actors table
    assert tree.events.matching("supervisor.ladder_step") == []  # no budget burnt, no ladder
    assert list(tree.layout("prod").root.glob("data.replaced-*")) == []

    other.kill()
    other.wait(5)

    tree.events.wait_for("environment.unblocked", timeout=10)
    after = tree.wait_healthy("prod", pid_not=before.pid)
    assert after.release == before.release
    assert item_count(port) == 7


def test_an_unknown_placeholder_blocks_dev_without_resetting_its_data(
    tmp_path: Path, env_tree: StartTree
) -> None:
    keys = env(tmp_path, reset_on_error=True)
    tree = env_tree(
        {"dev": keys},
        adjust=with_command("dev", "{python}", "server.py", "--port={nosuch}"),
    )

    blocked = tree.events.wait_for("environment.blocked", timeout=15)

    reason = str(blocked.get("reason"))
    assert "environments.dev.command: unknown placeholder '{nosuch}'" in reason
    assert "{port}" in reason  # the placeholders that do exist
    assert tree.node_state("dev") == "blocked"
    assert tree.events.matching("supervisor.ladder_step") == []
    assert tree.events.matching("environment.reset") == []
    # An operator reset starts it again (blocked again: the typo is still there), data kept.
    mark = tree.events.mark()
    result = env_commands.reset(CommandContext(tree.settings, tree.registry), "dev")
    assert (result["reset"], result["data_reset"]) == ("restarted from BLOCKED", False)
    tree.events.wait_for("environment.blocked", after=mark)
    assert tree.events.matching("alert.data_replaced") == []


def test_data_is_untouched_when_a_typo_blocks_a_restarted_daemon(
    tmp_path: Path, env_tree: StartTree
) -> None:
    keys = env(tmp_path, reset_on_error=True)
    first = env_tree({"dev": keys})
    first.wait_healthy("dev")
    add_items(first.port("dev"), 4)
    first.stop()

    tree = env_tree({"dev": keys}, adjust=with_command("dev", "{python}", "{srever}.py"))
    blocked = tree.events.wait_for("environment.blocked", timeout=15)

    assert "{srever}" in str(blocked.get("reason"))
    layout = tree.layout("dev")
    assert list(layout.root.glob("data.replaced-*")) == []
    with sqlite3.connect(f"{(layout.data / 'app.db').as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM items").fetchone()[0] == 4
    db.close()


def test_a_missing_command_blocks_with_its_name(tmp_path: Path, env_tree: StartTree) -> None:
    tree = env_tree(
        {"prod": env(tmp_path)}, adjust=with_command("prod", "gaia-no-such-program", "x")
    )

    blocked = tree.events.wait_for("environment.blocked", timeout=15)

    assert "command 'gaia-no-such-program' is not installed" in str(blocked.get("reason"))
    assert tree.node_state("prod") == "blocked"


# --------------------------------------------------------------------------- data replaced


def corrupt(layout: Layout) -> None:
    for side in ("app.db-wal", "app.db-shm"):
        (layout.data / side).unlink(missing_ok=True)
    (layout.data / "app.db").write_bytes(b"this is not a database " * 200)


def test_a_corrupt_database_is_restored_and_the_replaced_data_kept_named_and_undoable(
    tmp_path: Path, env_tree: StartTree
) -> None:
    tree = env_tree({"prod": env(tmp_path)})
    layout = tree.layout("prod")
    port = tree.port("prod")
    before = tree.wait_healthy("prod")
    add_items(port, 3)
    backup = tree.ask("prod", TakeBackup("before"))

    os.kill(before.pid, signal.SIGSTOP)  # no write may land between the damage and the kill
    corrupt(layout)
    os.kill(before.pid, signal.SIGKILL)

    replaced = tree.events.wait_for("alert.data_replaced", timeout=20)
    status = tree.wait_healthy("prod", pid_not=before.pid)
    assert item_count(port) == 3
    assert replaced.level == "critical"
    assert replaced.get("kind") == "restore"
    assert replaced.get("backup") == backup["backup"]
    assert "app.db: not an SQLite database" in str(replaced.get("why"))
    saved = Path(str(replaced.get("saved_copy")))
    assert saved.is_dir()
    assert (saved / "app.db").read_bytes().startswith(b"this is not a database")
    assert replaced.get("undo") == "python run.py restore prod --undo"
    # The exit showed the data fails its check: the ladder restored at once, instead of
    # restarting the service on the broken file (where it stays up, answering 503).
    assert tree.events.matching("supervisor.restart") == []
    assert [str(e.get("step")) for e in tree.events.matching("supervisor.ladder_step")] == [
        "restore"
    ]
    assert status.replaced_data == (str(saved),)
    assert status.undo == "python run.py restore prod --undo"
    shown = monitoring_commands.status(CommandContext(tree.settings, tree.registry))
    assert [e["replaced_data"] for e in shown["environments"]] == [[str(saved)]]
    assert f"prod: replaced data kept in {saved} (undo: python run.py restore prod --undo)" in (
        render_status(shown)
    )
    incident = wait_until(
        lambda: Incident.get_or_none(Incident.env == "prod", Incident.cause == "data_replaced")
    )
    assert str(saved) in incident.detail
    assert "restore prod --undo" in incident.detail


def test_restore_undo_puts_the_replaced_data_back(tmp_path: Path, env_tree: StartTree) -> None:
    tree = env_tree({"prod": env(tmp_path)})
    port = tree.port("prod")
    tree.wait_healthy("prod")
    ctx = CommandContext(tree.settings, tree.registry)
    add_items(port, 2, "old")
    env_commands.backup(ctx, "prod")
    add_items(port, 3, "new")

    restored = env_commands.restore(ctx, "prod")
    assert item_count(port) == 2
    undone = env_commands.restore(ctx, "prod", undo=True)

    assert undone["outcome"] == "succeeded"
    tree.wait_healthy("prod")
    assert item_count(port) == 5
    assert undone["put_back"] == restored["saved_copy"]
    assert not Path(restored["saved_copy"]).exists()
    assert Path(undone["saved_copy"]).is_dir()  # the restored data, kept in turn
    tree.events.wait_for("environment.undone")  # carried by the bus after the answer


def test_nothing_to_undo_is_a_usage_error(tmp_path: Path, env_tree: StartTree) -> None:
    tree = env_tree({"prod": env(tmp_path)})
    before = tree.wait_healthy("prod")
    ctx = CommandContext(tree.settings, tree.registry)

    with pytest.raises(UsageError, match="no replaced data to put back"):
        env_commands.restore(ctx, "prod", undo=True)
    assert tree.status("prod").pid == before.pid


# --------------------------------------------------------------------------- data loss


def wait_for_loss(tree: EnvTree) -> dict[str, object]:
    event = tree.events.wait_for("alert.data_loss", timeout=10)
    return {"lost": list(event.get("lost")), "action": event.get("action"), "level": event.level}


def test_a_deleted_database_is_data_loss_shown_in_status(
    tmp_path: Path, env_tree: StartTree
) -> None:
    tree = env_tree({"prod": env(tmp_path, data_check_interval=0.1)})
    layout = tree.layout("prod")
    tree.wait_healthy("prod")
    add_items(tree.port("prod"), 2)
    wait_until(lambda: tree.status("prod").watched == ("app.db",))

    for name in ("app.db", "app.db-wal", "app.db-shm"):
        (layout.data / name).unlink(missing_ok=True)

    loss = wait_for_loss(tree)
    assert loss["lost"] == ["app.db disappeared"]
    assert loss["level"] == "critical"
    assert "restore_on_data_loss is off" in str(loss["action"])
    status = tree.status("prod")
    assert status.data_loss is not None
    assert status.data_loss.lost == ("app.db disappeared",)
    incident = wait_until(
        lambda: Incident.get_or_none(Incident.env == "prod", Incident.cause == "data_loss")
    )
    assert "app.db disappeared" in incident.detail


def test_a_database_deleted_under_the_service_is_restored_and_its_rows_rescued(
    tmp_path: Path, env_tree: StartTree
) -> None:
    keys = env(tmp_path, data_check_interval=0.1, restore_on_data_loss=True)
    tree = env_tree({"prod": keys})
    layout = tree.layout("prod")
    port = tree.port("prod")
    tree.wait_healthy("prod")
    add_items(port, 2, "backed-up")
    tree.ask("prod", TakeBackup("before"))
    add_items(port, 3, "after-the-backup")
    wait_until(lambda: tree.status("prod").watched == ("app.db",))

    for name in ("app.db", "app.db-wal", "app.db-shm"):
        (layout.data / name).unlink(missing_ok=True)

    replaced = tree.events.wait_for("alert.data_replaced", timeout=15)
    tree.wait_healthy("prod")
    assert item_count(port) == 2  # the backup
    assert "app.db" in list(replaced.get("rescued"))
    saved = Path(str(replaced.get("saved_copy")))
    with sqlite3.connect(saved / "app.db") as kept:  # the deleted file, copied from the process
        assert kept.execute("SELECT count(*) FROM items").fetchone()[0] == 5
    kept.close()


def test_a_database_replaced_by_an_empty_one_is_restored_when_configured(
    tmp_path: Path, env_tree: StartTree
) -> None:
    keys = env(tmp_path, data_check_interval=0.1, restore_on_data_loss=True)
    tree = env_tree({"prod": keys})
    layout = tree.layout("prod")
    tree.wait_healthy("prod")
    # A second database of the service (rollback journal, so the file is all of it), made
    # elsewhere and renamed in: the watch sees it complete.
    make_db(layout.root / "extra.tmp", 5)
    os.replace(layout.root / "extra.tmp", layout.data / "extra.sqlite")
    tree.ask("prod", TakeBackup("before"))
    wait_until(lambda: "extra.sqlite" in tree.status("prod").watched)
    make_db(layout.root / "empty.tmp", 0)

    os.replace(layout.root / "empty.tmp", layout.data / "extra.sqlite")

    loss = wait_for_loss(tree)
    assert loss["lost"] == ["extra.sqlite was replaced by a database without rows in things"]
    assert "restoring the newest verified backup" in str(loss["action"])
    replaced = tree.events.wait_for("alert.data_replaced", timeout=15)
    assert "data loss: extra.sqlite was replaced" in str(replaced.get("why"))
    tree.wait_healthy("prod")
    assert count(layout.data / "extra.sqlite") == 5
    saved = Path(str(replaced.get("saved_copy")))
    assert count(saved / "extra.sqlite") == 0  # what it replaced is kept


# --------------------------------------------------------------------------- databases


def test_sqlite_and_nested_databases_are_backed_up_and_a_foreign_file_is_refused(
    tmp_path: Path, env_tree: StartTree
) -> None:
    tree = env_tree({"prod": env(tmp_path)})
    layout = tree.layout("prod")
    tree.wait_healthy("prod")
    ctx = CommandContext(tree.settings, tree.registry)
    make_db(layout.data / "extra.sqlite", 3)
    make_db(layout.data / "tenants" / "a" / "t.db", 2)

    taken = env_commands.backup(ctx, "prod")

    listed = env_commands.list_backups(ctx, "prod")
    assert listed[0]["backup"] == taken["backup"]
    assert listed[0]["databases"] == ["app.db", "extra.sqlite", "tenants/a/t.db"]
    assert listed[0]["verifies_now"]
    backup_dir = Path(taken["path"])
    assert count(backup_dir / "tenants" / "a" / "t.db") == 2
    # A backup changed after it was taken no longer verifies, and says why.
    with open(backup_dir / "extra.sqlite", "r+b") as copy:
        copy.seek(120)
        copy.write(b"\xff" * 32)
    again = env_commands.list_backups(ctx, "prod")[0]
    assert not again["verifies_now"]
    assert "extra.sqlite: sha256 mismatch" in again["problem"]

    (layout.data / "notes.db").write_text("plain text, not SQLite\n")
    with pytest.raises(Exception, match=r"notes\.db: matches the environment's databases"):
        env_commands.backup(ctx, "prod")


def test_a_backup_schedule_with_nothing_to_back_up_is_reported(
    tmp_path: Path, env_tree: StartTree
) -> None:
    keys = env(tmp_path, backup_schedule="3600", databases=["*.nomatch"])
    tree = env_tree({"prod": keys})

    event = tree.events.wait_for("environment.nothing_to_back_up", timeout=15)

    assert "matches databases = ['*.nomatch']" in str(event.get("note"))
    assert tree.status("prod").backup_note == event.get("note")


def test_a_healthy_release_that_now_crashes_parks_with_its_data_untouched(
    tmp_path: Path, env_tree: StartTree
) -> None:
    tree = env_tree({"prod": env(tmp_path)})
    layout = tree.layout("prod")
    port = tree.port("prod")
    before = tree.wait_healthy("prod")
    add_items(port, 5)
    tree.ask("prod", TakeBackup("before"))
    add_items(port, 2, "after-the-backup")
    # The release that was healthy now fails on start (as if something it needs went away).
    (layout.current / "FAULT").write_text("crash_on_start\n")

    os.kill(before.pid, signal.SIGKILL)

    failed = tree.events.wait_for("environment.failed", timeout=30)
    reason = str(failed.get("reason"))
    assert f"the current release {before.release} is the last that was healthy" in reason
    assert "the live data verifies (1 database(s) pass quick_check)" in reason
    assert tree.events.matching("alert.data_replaced") == []
    assert list(layout.root.glob("data.replaced-*")) == []
    with sqlite3.connect(f"{(layout.data / 'app.db').as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM items").fetchone()[0] == 7
    db.close()
