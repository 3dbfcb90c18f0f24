"""The environment commands (gaia_actors.environments.commands) through CommandContext, as the
control server runs them: backup, backups, restore, build, deploy, rollback, logs, kill, reset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gaia_actors.commands import CommandContext, UsageError
from gaia_actors.environments import commands as env
from gaia_actors.errors import ControlError, EnvironmentFailure, Rejected
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
    with pytest.raises(
        UsageError, match=f"no release 'nope'; releases: {built['release']}, {first}"
    ):
        env.rollback(ctx, "prod", "nope")

    before = tree.status("prod")["pid"]
    assert env.kill(ctx, "prod") == {"env": "prod", "killed": before}
    assert tree.wait_healthy("prod", pid_not=before)["release"] == first


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
