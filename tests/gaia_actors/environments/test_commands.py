"""The environment commands (gaia_actors.environments.commands) through CommandContext, as the
control server runs them: backup, backups, restore, build, deploy, rollback, logs, kill, reset."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gaia_actors.console import cli
from gaia_actors.control.commands import CommandContext, UsageError
from gaia_actors.environments import builds, releases
from gaia_actors.environments import commands as env
from gaia_actors.errors import ControlError, EnvironmentFailure, Rejected
from gaia_actors.messages import Deploy
from supervisors import Registry
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import (
    EnvTree,
    demo_source,
    free_port,
    health,
    http_json,
    load_settings,
    serving,
    write_config,
)

StartTree = Callable[..., EnvTree]


def items(port: int) -> int:
    answer = health(port)
    assert answer is not None
    return int(answer[1]["items"])


def add_item(port: int, name: str) -> None:
    assert http_json(port, "POST", "/items", {"name": name, "value": 1})[0] == 201


@pytest.fixture
def two_envs(tmp_path: Path, env_tree: StartTree) -> tuple[EnvTree, Path]:
    source = demo_source(tmp_path / "src")
    tree = env_tree(
        {
            "prod": {"port": free_port(), "source": str(source)},
            "dev": {"port": free_port(), "source": str(source), "reset_on_error": True},
        }
    )
    tree.wait_healthy("prod")
    tree.wait_healthy("dev")
    return tree, source


def test_backup_list_restore_and_logs(two_envs: tuple[EnvTree, Path]) -> None:
    tree, _ = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    offline = CommandContext(tree.settings, None)
    port = tree.port("prod")
    add_item(port, "kept")

    taken = env.backup(ctx, "prod")
    add_item(port, "lost")
    listed = env.list_backups(offline, "prod")  # offline too: it reads the files
    restored = env.restore(ctx, "prod", taken["backup"])

    assert taken["verified"]
    assert [b["backup"] for b in listed] == [taken["backup"]]
    assert listed[0]["verified"]
    assert restored["backup"] == taken["backup"]
    assert restored["skipped"] == []
    tree.wait_healthy("prod")
    assert items(port) == 1

    # The output reaches the log through the log pump, after the answers, and a request
    # answered earlier may be logged a little later: wait for a recognisable last request
    # and for the daemon's tail and the files' tail (offline) to agree.
    assert http_json(port, "GET", "/items/424242")[0] == 404

    def settled() -> list[str] | None:
        lines: list[str] = env.logs(ctx, "prod", n=3)
        marked = any('"/items/424242"' in line for line in lines)
        return lines if marked and env.logs(offline, "prod", n=3) == lines else None

    lines = wait_until(settled, timeout=10)
    assert isinstance(lines, list)
    assert len(lines) == 3
    assert all('"event": "http.request"' in line for line in lines)


def test_build_deploy_rollback_kill(two_envs: tuple[EnvTree, Path]) -> None:
    tree, source = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    first = tree.status("prod").release
    with pytest.raises(Rejected, match="no release older than"):
        env.rollback(ctx, "prod")
    (source / "MARKER").write_text("v2\n")  # new content: a new release id

    built = env.build(ctx, "prod")
    deployed = env.deploy(ctx, "prod", built["release"])

    assert deployed["outcome"] == "succeeded"
    assert serving(tree.port("prod"), built["release"])
    rolled = env.rollback(ctx, "prod")
    assert rolled["release"] == first
    assert serving(tree.port("prod"), first)
    with pytest.raises(
        UsageError, match=f"no release 'nope'; releases: {built['release']}, {first}"
    ):
        env.rollback(ctx, "prod", "nope")

    before = tree.status("prod").pid
    assert env.kill(ctx, "prod") == {"env": "prod", "killed": before}
    assert tree.wait_healthy("prod", pid_not=before).release == first


def test_reset_refused_without_reset_on_error_and_done_with_it(
    two_envs: tuple[EnvTree, Path],
) -> None:
    tree, _ = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    add_item(tree.port("prod"), "precious")
    add_item(tree.port("dev"), "scratch")

    with pytest.raises(EnvironmentFailure, match="reset_on_error = false"):
        env.reset(ctx, "prod")
    result = env.reset(ctx, "dev")

    assert items(tree.port("prod")) == 1
    assert tree.node_state("prod") == "running"
    assert result["outcome"] == "succeeded"
    assert Path(result["saved_copy"]).is_dir()
    tree.wait_healthy("dev")
    assert items(tree.port("dev")) == 0


def test_unknown_environment_and_no_daemon(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"prod": {"port": free_port(), "source": str(tmp_path)}})
    settings = load_settings(tmp_path, config)
    with pytest.raises(UsageError, match="no environment 'qa'"):
        env.backup(CommandContext(settings, Registry()), "qa")
    with pytest.raises(ControlError, match="needs a running daemon"):
        env.backup(CommandContext(settings, None), "prod")


def forged_release(tmp_path: Path, source: Path, release_id: str) -> Path:
    """A complete release directory whose RELEASE.json claims ``release_id``."""
    built = builds.build_release(source, tmp_path / "forge")
    manifest = json.loads((built.path / releases.MANIFEST).read_text())
    (built.path / releases.MANIFEST).write_text(json.dumps({**manifest, "id": release_id}))
    return built.path


@pytest.mark.parametrize(
    "release_id", ["../../../../escaped", "/tmp/escaped-abs", "a/b", "..", ".hidden", "x" * 200]
)
def test_a_release_id_that_is_not_a_name_is_refused_and_nothing_is_written(
    two_envs: tuple[EnvTree, Path], tmp_path: Path, release_id: str
) -> None:
    tree, source = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    before = tree.status("prod")
    forged = forged_release(tmp_path, source, release_id)
    outside = set(tmp_path.rglob("*escaped*"))
    state = tree.settings.state_dir

    with pytest.raises(UsageError, match="is not a release directory") as refused:
        env.deploy(ctx, "prod", str(forged))

    assert "not a name" in str(refused.value) or "characters long" in str(refused.value)
    # The actor refuses it too, whoever asks.
    with pytest.raises(Rejected, match="cannot deploy"):
        tree.ask("prod", Deploy(str(forged)))
    assert set(tmp_path.rglob("*escaped*")) == outside == set()
    assert not Path("/tmp/escaped-abs").exists()
    assert sorted(p.name for p in (state / "environments" / "prod" / "releases").iterdir()) == [
        before.release
    ]
    after = tree.status("prod")
    assert (after.pid, after.release) == (before.pid, before.release)


def test_unknown_backup_or_release_fails_before_the_process_is_touched(
    two_envs: tuple[EnvTree, Path],
) -> None:
    tree, _ = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    taken = env.backup(ctx, "prod")
    # The backup's event reaches the test through the bus; it must not count as a later one.
    tree.events.wait_for("environment.backup", lambda e: e.get("backup") == taken["backup"])
    before = tree.status("prod")
    mark = tree.events.mark()

    with pytest.raises(UsageError, match=f"no backup 'typo'; backups: {taken['backup']}"):
        env.restore(ctx, "prod", "typo")
    with pytest.raises(UsageError, match=r"no backup '\.\./backups'"):
        env.restore(ctx, "prod", "../backups")
    with pytest.raises(UsageError, match=f"no release 'typo'; releases: {before.release}"):
        env.deploy(ctx, "prod", "typo")
    with pytest.raises(UsageError, match="no environment 'nope'; environments: prod, dev"):
        env.build(ctx, "nope")
    with pytest.raises(UsageError, match="give a backup or --undo, not both"):
        env.restore(ctx, "prod", taken["backup"], undo=True)

    after = tree.status("prod")
    assert (after.pid, after.uptime > before.uptime) == (before.pid, True)
    assert not [e for e in tree.events.names()[mark:] if e.startswith("environment.")]


def test_exit_code_2_for_an_unknown_backup(two_envs: tuple[EnvTree, Path]) -> None:
    tree, _ = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    with pytest.raises(UsageError) as refused:
        env.restore(ctx, "prod", "../../etc")
    assert cli.exit_code(refused.value) == cli.EXIT_USAGE
