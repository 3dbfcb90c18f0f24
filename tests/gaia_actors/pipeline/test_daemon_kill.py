"""The real daemon, SIGKILLed in the middle of a promotion: at the next start the promotion is
``interrupted``, its stage's leftover processes are killed, and the target that already ran
the unconfirmed release is back on the one it had before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.console.client import Client
from gaia_actors.errors import ControlError
from gaia_actors.layout import Layout
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import health, kill_services, load_settings
from tests.gaia_actors.environments.test_daemon_restart import Daemon
from tests.gaia_actors.pipeline.conftest import (
    pid_alive,
    read_pid,
    release_source,
    write_pipeline_config,
)


def ask(daemon: Daemon, actor: str, message: str, **fields: Any) -> Any:
    with Client.connect(daemon.settings.socket_path) as client:
        return client.ask(actor, message, fields, timeout=10)


def ask_or_none(daemon: Daemon, actor: str, message: str, **fields: Any) -> Any:
    try:
        return ask(daemon, actor, message, **fields)
    except ControlError:
        return None  # not up yet, or restarting


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    source = release_source(tmp_path / "source")
    hold = {
        "kind": "command",
        "name": "acceptance",
        "command": ["sh", "-c", f"sleep 120 & echo $! > {tmp_path / 'sleeper.pid'}; wait"],
    }
    stages = [{"kind": "build", "deploy": False}, {"kind": "deploy"}, hold]
    config = write_pipeline_config(
        tmp_path,
        source,
        {"dev_to_staging": stages},
        envs=("dev", "staging"),
        extra='[metrics]\nlisten = ""\n',
    )
    settings = load_settings(tmp_path, config)
    running = Daemon(tmp_path, config, settings)
    try:
        yield running
    finally:
        running.close()
        kill_services([Layout.of(settings, env).data for env in settings.environments])


def serves(daemon: Daemon, env: str, release: str | None) -> bool:
    answer = health(daemon.settings.environments[env].port)
    return answer is not None and answer[0] == 200 and answer[1].get("release") == release


def test_a_daemon_killed_mid_promotion_leaves_consistent_environments(
    tmp_path: Path, daemon: Daemon
) -> None:
    staging = Layout.of(daemon.settings, "staging")
    daemon.start()
    old = staging.current_release()
    wait_until(lambda: serves(daemon, "staging", old), timeout=20)
    (tmp_path / "source" / "MARKER").write_text("two\n")

    started = ask(daemon, "pipeline", "Promote", what="dev")
    pipeline_id = started["pipeline_id"]
    sleeper = wait_until(lambda: read_pid(tmp_path / "sleeper.pid"), timeout=30)
    assert isinstance(sleeper, int)
    new = staging.current_release()
    assert new != old  # deployed, and the promotion is still running its last stage
    daemon.kill()
    assert pid_alive(sleeper)  # nobody was left to kill it

    daemon.start()

    def recovered() -> dict[str, Any] | None:
        shown = ask_or_none(daemon, "pipeline", "GetPipelineHistory", pipeline_id=pipeline_id)
        return shown if shown and shown["recovery"] not in ("", "pending") else None

    promotion = wait_until(recovered, timeout=60)
    assert isinstance(promotion, dict)
    assert promotion["status"] == "interrupted"
    assert "daemon stopped" in promotion["error"]
    assert promotion["recovery"] == "rolled back"
    assert promotion["rollback"] == "code"
    stages = {s["name"]: s for s in promotion["stages"]}
    assert stages["deploy"]["status"] == "passed"
    assert stages["acceptance"]["status"] == "interrupted"
    assert stages["rollback"]["status"] == "passed"
    assert not pid_alive(sleeper)  # the leftover stage was killed at the start
    assert staging.current_release() == old
    wait_until(lambda: serves(daemon, "staging", old), timeout=20)
    failed = daemon.log_events("pipeline.failed")
    assert [(e["pipeline_id"], e["status"]) for e in failed] == [(pipeline_id, "interrupted")]
    assert ask(daemon, "pipeline", "GetPipelineStatus")["running"] == []
