"""The environment commands (gaia_actors.environments.commands) through CommandContext, as the
control server runs them: backup, backups, restore, build, deploy, rollback, logs, kill, reset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gaia_actors.commands import CommandContext, UsageError
from gaia_actors.environments import commands as env
from gaia_actors.errors import ControlError, EnvironmentFailure, Rejected
from tests.gaia_actors.environments.conftest import (
    EnvTree,
    demo_source,
    free_port,
    health,
    http_json,
    serving,
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


def test_backup_list_and_restore(two_envs: tuple[EnvTree, Path]) -> None:
    tree, _ = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    port = tree.port("prod")
    add_item(port, "kept")

    taken = env.backup(ctx, "prod")
    add_item(port, "lost")
    listed = env.list_backups(CommandContext(tree.settings, None), "prod")  # offline too
    restored = env.restore(ctx, "prod", taken["backup"])

    assert taken["verified"]
    assert [b["backup"] for b in listed] == [taken["backup"]]
    assert listed[0]["verified"]
    assert restored["backup"] == taken["backup"]
    assert restored["skipped"] == []
    tree.wait_healthy("prod")
    assert items(port) == 1


def test_build_deploy_rollback(two_envs: tuple[EnvTree, Path]) -> None:
    tree, source = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    first = tree.status("prod")["release"]
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
    with pytest.raises(Rejected, match="no release 'nope'"):
        env.rollback(ctx, "prod", "nope")


def test_logs_online_and_offline(two_envs: tuple[EnvTree, Path]) -> None:
    tree, _ = two_envs
    http_json(tree.port("prod"), "GET", "/items")

    online = env.logs(CommandContext(tree.settings, tree.registry), "prod", n=3)
    offline = env.logs(CommandContext(tree.settings, None), "prod", n=3)

    assert len(online) == 3
    assert offline[-1] == online[-1]
    assert any("http.request" in line for line in online)


def test_kill_is_recovered(two_envs: tuple[EnvTree, Path]) -> None:
    tree, _ = two_envs
    before = tree.status("prod")["pid"]

    result = env.kill(CommandContext(tree.settings, tree.registry), "prod")

    assert result == {"env": "prod", "killed": before}
    assert tree.wait_healthy("prod", pid_not=before)["pid"] != before


def test_reset_refused_without_reset_on_error(two_envs: tuple[EnvTree, Path]) -> None:
    tree, _ = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    add_item(tree.port("prod"), "precious")

    with pytest.raises(EnvironmentFailure, match="reset_on_error = false"):
        env.reset(ctx, "prod")

    assert items(tree.port("prod")) == 1
    assert tree.node_state("prod") == "running"


def test_reset_starts_a_reset_on_error_environment_empty(
    two_envs: tuple[EnvTree, Path],
) -> None:
    tree, _ = two_envs
    ctx = CommandContext(tree.settings, tree.registry)
    add_item(tree.port("dev"), "scratch")

    result = env.reset(ctx, "dev")

    assert result["outcome"] == "succeeded"
    assert Path(result["saved_copy"]).is_dir()
    tree.wait_healthy("dev")
    assert items(tree.port("dev")) == 0


def test_unknown_environment_and_no_daemon(two_envs: tuple[EnvTree, Path]) -> None:
    tree, _ = two_envs
    with pytest.raises(UsageError, match="no environment 'qa'"):
        env.backup(CommandContext(tree.settings, tree.registry), "qa")
    with pytest.raises(ControlError, match="needs a running daemon"):
        env.backup(CommandContext(tree.settings, None), "prod")
