"""The real daemon, SIGKILLed in the middle of a promotion: at the next start the promotion is
``interrupted``, its stage's leftover processes are killed, and the target that already ran
the unconfirmed release is back on the one it had before (issue 4, part 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from gaia_actors.client import Client
from gaia_actors.environments.layout import Layout
from gaia_actors.errors import ControlError
from gaia_actors.settings import Settings
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import (
    REPO,
    health,
    kill_services,
    load_settings,
)
from tests.gaia_actors.pipeline.conftest import (
    pid_alive,
    read_pid,
    release_source,
    write_pipeline_config,
)


class Daemon:
    """``python run.py`` on a config in tmp_path, its output in a file."""

    def __init__(self, tmp_path: Path, config: Path, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.cwd = tmp_path
        self.output: IO[bytes] = open(tmp_path / "daemon.out", "ab")  # noqa: SIM115 - closed in close()
        self.environ = {**os.environ, "GAIA_STATE_DIR": str(settings.state_dir)}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        starts = len(self.log_events("daemon.started"))
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "run.py"), "--config", str(self.config)],
            stdout=self.output,
            stderr=self.output,
            env=self.environ,
            cwd=self.cwd,
        )
        proc = self.proc
        wait_until(
            lambda: len(self.log_events("daemon.started")) > starts or proc.poll() is not None,
            timeout=30,
        )
        assert proc.poll() is None, (self.cwd / "daemon.out").read_text()[-3000:]

    def log_events(self, name: str) -> list[dict[str, Any]]:
        path = self.settings.log_path
        if not path.exists():
            return []
        records = []
        for line in path.read_bytes().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by SIGKILL
        return [r for r in records if r.get("event") == name]

    def ask(self, actor: str, message: str, **fields: Any) -> Any:
        with Client.connect(self.settings.socket_path) as client:
            return client.ask(actor, message, fields, timeout=10)

    def ask_or_none(self, actor: str, message: str, **fields: Any) -> Any:
        try:
            return self.ask(actor, message, **fields)
        except ControlError:
            return None  # not up yet, or restarting

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.output.close()


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

    started = daemon.ask("pipeline", "Promote", what="dev")
    pipeline_id = started["pipeline_id"]
    sleeper = wait_until(lambda: read_pid(tmp_path / "sleeper.pid"), timeout=30)
    assert isinstance(sleeper, int)
    new = staging.current_release()
    assert new != old  # deployed, and the promotion is still running its last stage
    daemon.kill()
    assert pid_alive(sleeper)  # nobody was left to kill it

    daemon.start()

    def recovered() -> dict[str, Any] | None:
        shown = daemon.ask_or_none("pipeline", "GetPipelineHistory", pipeline_id=pipeline_id)
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
    assert daemon.ask("pipeline", "GetPipelineStatus")["running"] == []
