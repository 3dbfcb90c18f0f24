"""EnvironmentActor on real demo processes: restart, recovery ladder, deploy, adoption.

Each test runs a real tree (store, bus, environments supervisor) on a config in tmp_path,
with demo processes on free loopback ports (see conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gaia_actors import process
from gaia_actors.control.commands import CommandContext
from gaia_actors.environments import builds, releases
from gaia_actors.environments import commands as env_commands
from gaia_actors.environments.tree import actor_name
from gaia_actors.errors import Busy, EnvironmentFailure, Rejected
from gaia_actors.layout import Layout
from gaia_actors.messages import (
    Crash,
    Deploy,
    GetEnvStatus,
    Hang,
    ResetData,
    RestoreBackup,
    Rollback,
    TakeBackup,
)
from gaia_actors.store.models import Deployment
from supervisors import NotRunning
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import (
    EnvTree,
    demo_source,
    free_port,
    health,
    http_json,
    load_settings,
    pids_with_data_dir,
    serving,
    write_config,
)

StartTree = Callable[..., EnvTree]


def one_env(tmp_path: Path, **keys: object) -> dict[str, dict[str, object]]:
    source = keys.pop("source", None) or demo_source(tmp_path / "src")
    return {"prod": {"port": free_port(), "source": str(source), **keys}}


def test_sigkilled_process_is_restarted_and_healthy_again(
    tmp_path: Path, env_tree: StartTree
) -> None:
    tree = env_tree(one_env(tmp_path))
    before = tree.wait_healthy("prod")
    mark = tree.events.mark()

    os.kill(before.pid, signal.SIGKILL)

    exited = tree.events.wait_for("environment.exited", after=mark)
    assert exited.get("pid") == before.pid
    assert exited.get("code") == -signal.SIGKILL
    after = tree.wait_healthy("prod", pid_not=before.pid)
    assert after.release == before.release
    assert not after.adopted
    assert pids_with_data_dir(tree.layout("prod").data) == [after.pid]
    assert serving(tree.port("prod"), before.release)
    node = tree.registry.node(actor_name("prod"))
    assert node is not None
    assert node.restarts == 1


def add_items(port: int, count: int, prefix: str = "item") -> None:
    for i in range(count):
        status, _ = http_json(port, "POST", "/items", {"name": f"{prefix}-{i}", "value": i})
        assert status == 201


def item_count(port: int) -> int:
    answer = health(port)
    assert answer is not None
    assert answer[0] == 200, answer
    return int(answer[1]["items"])


def in_order(names: list[str], expected: list[str]) -> bool:
    """``expected`` is a subsequence of ``names``."""
    remaining = iter(names)
    return all(any(name == want for name in remaining) for want in expected)


def ladder_steps(tree: EnvTree) -> list[str]:
    return [str(e.get("step")) for e in tree.events.matching("supervisor.ladder_step")]


def test_a_crashing_release_is_rolled_back_and_data_that_verifies_is_kept(
    tmp_path: Path, env_tree: StartTree
) -> None:
    tree = env_tree(one_env(tmp_path))
    layout = tree.layout("prod")
    good = tree.wait_healthy("prod")
    add_items(tree.port("prod"), 3, "backed-up")
    tree.ask("prod", TakeBackup("before the bad release"))
    add_items(tree.port("prod"), 2, "after-the-backup")
    # The current release becomes one that crashes on start, as if switched by a deploy
    # whose verdict never came: every restart now fails until the ladder rolls back.
    bad = builds.build_release(
        demo_source(tmp_path / "bad-src", fault="crash_on_start"), layout.releases
    )
    releases.switch_current(layout.root, bad.id)
    mark = tree.events.mark()

    os.kill(good.pid, signal.SIGKILL)

    tree.events.wait_for("supervisor.ladder_step_done", lambda e: e.get("step") == "rollback")
    recovered = tree.wait_healthy("prod", pid_not=good.pid)
    assert recovered.release == good.release
    assert layout.current_release() == good.release
    assert item_count(tree.port("prod")) == 5  # nothing written after the backup is lost
    # The actor answers healthy before the bus has carried its event to this log.
    tree.events.wait_for("environment.healthy", lambda e: e.get("pid") == recovered.pid, after=mark)
    names = tree.events.names()[mark:]
    assert in_order(
        names,
        [
            "environment.exited",  # the kill
            "supervisor.restart",
            "environment.exited",  # the bad release, twice: the budget is spent
            "supervisor.restart",
            "environment.exited",
            "supervisor.ladder_step",  # restore: the live data verifies, so it is skipped
            "supervisor.ladder_step_skipped",
            "supervisor.ladder_step",  # rollback
            "environment.rolled_back",
            "supervisor.ladder_step_done",
            "environment.started",
            "environment.healthy",
        ],
    ), names
    assert ladder_steps(tree) == ["restore", "rollback"]
    skipped = tree.events.matching("supervisor.ladder_step_skipped")[0]
    assert "the live data verifies (1 database(s) pass quick_check)" in str(skipped.get("reason"))
    assert tree.events.matching("environment.restored") == []
    assert tree.events.matching("alert.data_replaced") == []
    assert list(layout.root.glob("data.replaced-*")) == []
    crashes = [e for e in tree.events.matching("environment.exited") if e.get("pid") != good.pid]
    assert len(crashes) == 2  # the skipped restore costs no restart
    assert all(e.get("release") == bad.id for e in crashes)
    # A crash is a failed start when it came within startsecs (0.5 s here); a loaded machine
    # can take longer than that to reach the crash, so the flag is checked against the uptime.
    assert all(e.get("failed_start") == (e.get("uptime") < 0.5) for e in crashes)
    assert tree.events.matching("environment.rolled_back")[0].get("release") == good.release


def test_everything_failing_parks_failed_until_reset(tmp_path: Path, env_tree: StartTree) -> None:
    crashing = demo_source(tmp_path / "src", fault="crash_on_start")
    tree = env_tree({"dev": {"port": free_port(), "source": str(crashing), "reset_on_error": True}})
    layout = tree.layout("dev")

    failed = tree.events.wait_for("environment.failed", timeout=20)

    assert tree.node_state("dev") == "failed"
    assert failed.level == "critical"
    assert "reset dev" in str(failed.get("action"))
    assert "exited" in str(failed.get("error"))  # "during start" unless the machine is slow
    assert ladder_steps(tree) == ["reset", "rollback"]
    assert "no release to roll back to (no release has been healthy)" in str(failed.get("reason"))
    assert "the live data verifies" in str(failed.get("reason"))
    names = tree.events.names()
    assert in_order(
        names,
        [
            "supervisor.ladder_step",  # reset: nothing fails its check, so nothing is reset
            "supervisor.ladder_step_skipped",
            "supervisor.ladder_step",  # rollback: no release was ever healthy
            "supervisor.child_parked",
            "environment.failed",
        ],
    ), names
    assert tree.events.matching("environment.reset") == []
    assert pids_with_data_dir(layout.data) == []
    with pytest.raises(NotRunning):
        tree.status("dev")

    # The operator fixes the cause (a good release), then resets.
    fixed = builds.build_release(demo_source(tmp_path / "fixed"), layout.releases)
    releases.switch_current(layout.root, fixed.id)
    ctx = CommandContext(tree.settings, tree.registry)
    result = env_commands.reset(ctx, "dev")

    assert result["reset"] == "restarted from FAILED"
    assert result["data_reset"]
    assert Path(result["saved_copy"]).is_dir()  # the old data, kept
    replaced = tree.events.wait_for("alert.data_replaced")
    assert replaced.get("saved_copy") == result["saved_copy"]
    status = tree.wait_healthy("dev")
    assert status.release == fixed.id
    tree.events.wait_for("supervisor.child_reset")  # the bus may carry it after the answer


def test_restore_skips_a_corrupt_newest_backup(tmp_path: Path, env_tree: StartTree) -> None:
    tree = env_tree(one_env(tmp_path))
    port = tree.port("prod")
    tree.wait_healthy("prod")
    ctx = CommandContext(tree.settings, tree.registry)
    add_items(port, 2, "older")
    older = env_commands.backup(ctx, "prod")
    add_items(port, 3, "newer")
    newer = env_commands.backup(ctx, "prod")
    assert older["verified"]
    assert newer["verified"]
    with open(newer["path"] + "/app.db", "r+b") as db:  # flip bytes inside the copy
        db.seek(200)
        db.write(b"\xff" * 64)

    result = env_commands.restore(ctx, "prod")

    assert result["backup"] == older["backup"]
    assert len(result["skipped"]) == 1
    assert result["skipped"][0].startswith(newer["backup"])
    assert "sha256 mismatch" in result["skipped"][0]
    assert result["outcome"] == "succeeded"
    tree.wait_healthy("prod")
    assert item_count(port) == 2
    restored = tree.events.wait_for("environment.restored")  # carried by the bus after the answer
    assert list(restored.get("skipped")) == result["skipped"]


def assert_back_on_old(tree: EnvTree, old: dict[str, Any], bad: releases.Release) -> None:
    layout = tree.layout("prod")
    assert layout.current_release() == old.release
    status = tree.wait_healthy("prod")
    assert status.release == old.release
    assert status.operation is None
    assert serving(tree.port("prod"), old.release)
    assert (layout.releases / bad.id).is_dir()  # imported, kept for inspection
    # The deploy's reply can come before the bus hands this log its last event.
    tree.events.wait_for("environment.deploy_reverted")
    names = tree.events.names("environment.deploy*")
    assert names == [
        "environment.deploy_started",
        "environment.deploy_failed",
        "environment.deploy_reverted",
    ]
    assert tree.node_state("prod") == "running"  # a reverted deploy is not a crash


def test_unhealthy_deploy_switches_back_and_the_old_release_serves(
    tmp_path: Path, env_tree: StartTree
) -> None:
    # The unhealthy release takes the whole deploy_timeout, the old one's restart must fit it.
    tree = env_tree(one_env(tmp_path, deploy_timeout=3.0))
    old = tree.wait_healthy("prod")
    # Built elsewhere (as the pipeline builds in another environment) and deployed by path.
    bad = builds.build_release(
        demo_source(tmp_path / "bad-src", fault="unhealthy"), tmp_path / "elsewhere"
    )
    outcome: list[BaseException] = []

    def deploy() -> None:
        try:
            tree.ask("prod", Deploy(str(bad.path), pipeline_id=3))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=deploy)
    worker.start()
    try:
        # While the deploy waits for its verdict the mailbox answers, and refuses a second.
        tree.events.wait_for("environment.deploy_started")
        assert tree.status("prod").operation == "deploy"
        with pytest.raises(Busy, match="a deploy of"):
            tree.ask("prod", Rollback())
        with pytest.raises(Busy):
            tree.ask("prod", RestoreBackup())
    finally:
        worker.join(timeout=30)

    assert len(outcome) == 1
    assert isinstance(outcome[0], EnvironmentFailure)
    assert f"deploy of {bad.id} failed" in str(outcome[0])
    assert f"back on {old.release}" in str(outcome[0])
    assert_back_on_old(tree, old, bad)
    row = wait_until(lambda: Deployment.select().where(Deployment.env == "prod").first())
    assert isinstance(row, Deployment)
    assert (row.release_id, row.previous, row.status) == (bad.id, old.release, "reverted")
    assert row.pipeline_id == 3


def test_deploy_that_crashes_on_start_switches_back(tmp_path: Path, env_tree: StartTree) -> None:
    tree = env_tree(one_env(tmp_path))
    old = tree.wait_healthy("prod")
    bad = builds.build_release(
        demo_source(tmp_path / "bad-src", fault="crash_on_start"), tmp_path / "elsewhere"
    )

    with pytest.raises(EnvironmentFailure, match=f"deploy of {bad.id} failed") as failure:
        tree.ask("prod", Deploy(str(bad.path)))

    assert "exited with code 1" in str(failure.value)
    assert_back_on_old(tree, old, bad)


def test_successful_deploy_then_rollback(tmp_path: Path, env_tree: StartTree) -> None:
    tree = env_tree(one_env(tmp_path))
    layout = tree.layout("prod")
    old = tree.wait_healthy("prod")
    new = builds.build_release(demo_source(tmp_path / "new", marker="v2"), tmp_path / "built")

    result = tree.ask("prod", Deploy(str(new.path), pipeline_id=7))

    assert result["outcome"] == "succeeded"
    assert result["release"] == new.id
    assert result["previous"] == old.release
    assert releases.last_healthy(layout.root) == new.id
    assert serving(tree.port("prod"), new.id)

    back = env_commands.rollback(CommandContext(tree.settings, tree.registry), "prod")

    assert back["release"] == old.release
    assert serving(tree.port("prod"), old.release)
    assert layout.current_release() == old.release


def test_actor_crash_adopts_the_live_process(tmp_path: Path, env_tree: StartTree) -> None:
    tree = env_tree(one_env(tmp_path))
    before = tree.wait_healthy("prod")
    layout = tree.layout("prod")
    # It passed its start-up check: recorded for the failover agent's start grace.
    assert process.read_pidfile(layout.verified) == process.read_pidfile(layout.pidfile)

    tree.registry.tell(actor_name("prod"), Crash("test"))

    wait_until(lambda: (n := tree.registry.node(actor_name("prod"))) and n.generation == 2)
    after = tree.wait_healthy("prod")
    assert after.pid == before.pid
    assert after.adopted
    assert pids_with_data_dir(tree.layout("prod").data) == [before.pid]


def test_a_reused_pid_is_not_adopted(tmp_path: Path, env_tree: StartTree) -> None:
    envs = one_env(tmp_path)
    settings = load_settings(tmp_path, write_config(tmp_path, envs))
    layout = Layout.of(settings, "prod")
    layout.root.mkdir(parents=True)
    stranger = subprocess.Popen(  # an unrelated live process that now holds the recorded pid
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        real_start = process.proc_start_time(stranger.pid)
        assert real_start is not None
        process.write_pidfile(layout.pidfile, stranger.pid, real_start - 100)

        tree = env_tree(envs)
        status = tree.wait_healthy("prod")

        assert not status.adopted
        assert status.pid != stranger.pid
        assert process.read_pidfile(layout.pidfile) == process.PidRecord(
            status.pid, process.proc_start_time(status.pid) or 0
        )
        tree.stop()  # stopping the environment must not touch the stranger either
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_stray_process_without_pid_file_is_stopped_not_fought(
    tmp_path: Path, env_tree: StartTree
) -> None:
    # What a daemon killed between spawning a process and writing its pid file leaves
    # behind: a service of this environment, on its port, that no pid file names.
    envs = one_env(tmp_path)
    settings = load_settings(tmp_path, write_config(tmp_path, envs))
    layout = Layout.of(settings, "prod")
    layout.make_dirs()
    release = builds.build_release(layout.source, layout.releases)
    releases.switch_current(layout.root, release.id)
    stray = process.spawn(
        layout.argv(release.id),
        cwd=layout.current,
        env=layout.process_env(release.id),
        log=layout.log_sink,
    )
    wait_until(lambda: serving(settings.environments["prod"].port), timeout=10)

    tree = env_tree(envs)
    status = tree.wait_healthy("prod")

    assert stray.wait(5)
    assert status.pid != stray.pid
    stopped = tree.events.matching("environment.stray_stopped")
    assert [e.get("pid") for e in stopped] == [stray.pid]
    assert pids_with_data_dir(layout.data) == [status.pid]
    assert tree.node_state("prod") == "running"


STUBBORN_SERVICE = """
import http.server, json, os, signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL, after stop_grace, ends it


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok", "release": os.environ["RELEASE_ID"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Health).serve_forever()
"""


def test_a_slow_stop_inside_a_handler_is_not_taken_for_a_hung_actor(
    tmp_path: Path, env_tree: StartTree
) -> None:
    source = tmp_path / "stubborn"
    source.mkdir()
    (source / "svc.py").write_text(STUBBORN_SERVICE)
    env = {
        "port": free_port(),
        "source": str(source),
        "command": ["{python}", "svc.py"],
        "reset_on_error": True,
        "stop_grace": 1.0,
    }
    # A ping timeout shorter than the stop: the handler that stops the process blocks the
    # mailbox for stop_grace, which must not count as hung.
    tree = env_tree({"dev": env}, supervision={"ping_interval": 0.05, "ping_timeout": 0.3})
    before = tree.wait_healthy("dev")

    result = tree.ask("dev", ResetData())

    assert result["outcome"] == "succeeded"
    assert tree.wait_healthy("dev").pid != before.pid
    assert tree.events.names("supervisor.child_hung") == []
    node = tree.registry.node(actor_name("dev"))
    assert node is not None
    assert node.generation == 1


def test_status_of_a_process_that_died_before_its_exit_is_handled(
    tmp_path: Path, env_tree: StartTree
) -> None:
    tree = env_tree(one_env(tmp_path))
    pid = tree.wait_healthy("prod").pid
    ref = tree.registry.lookup(actor_name("prod"))
    # Queue, in this order: a pause, the status query, then (by killing) the exit message.
    ref.tell(Hang(0.8))
    reply = ref.ask(GetEnvStatus(), block=False)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=0.5)  # reaped meanwhile

    status = reply.get(timeout=10)

    assert status.healthy is False
    assert status.pid is None
    assert status.state == "stopped"


def test_an_incomplete_release_is_refused_before_anything_stops(
    tmp_path: Path, env_tree: StartTree
) -> None:
    tree = env_tree(one_env(tmp_path))
    layout = tree.layout("prod")
    old = tree.wait_healthy("prod")
    (layout.releases / "half-copied").mkdir()  # a release directory without its manifest
    (tmp_path / "not-a-release").mkdir()

    with pytest.raises(Rejected, match="no release 'half-copied'"):
        tree.ask("prod", Deploy("half-copied"))
    with pytest.raises(Rejected, match="no release 'half-copied'"):
        tree.ask("prod", Rollback("half-copied"))
    with pytest.raises(Rejected, match="cannot deploy"):
        tree.ask("prod", Deploy(str(tmp_path / "not-a-release")))

    status = tree.status("prod")
    assert status.pid == old.pid
    assert status.operation is None
    assert layout.current_release() == old.release


def test_a_release_that_cannot_be_spawned_is_switched_back_at_once(
    tmp_path: Path, env_tree: StartTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = env_tree(one_env(tmp_path))
    layout = tree.layout("prod")
    old = tree.wait_healthy("prod")
    new = builds.build_release(demo_source(tmp_path / "new", marker="v2"), tmp_path / "built")
    real_spawn = process.spawn

    def spawn(argv: Any, cwd: Any, env: Any = None, log: Any = None, **kw: Any) -> Any:
        if env is not None and env.get("RELEASE_ID") == new.id:  # fault injection
            raise process.SpawnError(argv, Path(cwd), "injected: exec failed")
        return real_spawn(argv, cwd, env, log, **kw)

    monkeypatch.setattr(process, "spawn", spawn)

    with pytest.raises(EnvironmentFailure, match="injected: exec failed") as failure:
        tree.ask("prod", Deploy(str(new.path)))

    assert f"back on {old.release}" in str(failure.value)
    assert layout.current_release() == old.release
    status = tree.wait_healthy("prod")
    assert status.release == old.release
    assert status.operation is None
    assert tree.node_state("prod") == "running"
    monkeypatch.setattr(process, "spawn", real_spawn)
    assert tree.ask("prod", Deploy(new.id))["outcome"] == "succeeded"  # not left Busy
