"""The daemon as a subprocess, SIGKILLed: its environments' processes are adopted, and
``current`` is never missing or dangling, even when the kill lands in the middle of a deploy.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from gaia_actors.console.client import Client
from gaia_actors.environments import builds, releases
from gaia_actors.errors import ControlError
from gaia_actors.layout import Layout
from gaia_actors.settings import Settings
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import (
    REPO,
    demo_source,
    free_port,
    health,
    kill_services,
    load_settings,
    pids_with_data_dir,
    serving,
    write_config,
)


class Daemon:
    """``python run.py`` on a config in tmp_path; output to files (a full pipe would block it)."""

    def __init__(self, tmp_path: Path, config: Path, settings: Settings) -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: IO[bytes] = open(tmp_path / "daemon.out", "ab")  # noqa: SIM115 - closed in close()
        self.environ = {**os.environ, "GAIA_STATE_DIR": str(settings.state_dir)}
        self._offset = 0
        self._records: list[dict[str, Any]] = []

    def log_events(self, name: str) -> list[dict[str, Any]]:
        """The daemon log's records named ``name`` (read incrementally: tests poll this)."""
        path = self.settings.log_path
        if path.exists():
            with path.open("rb") as log:
                log.seek(self._offset)
                chunk = log.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits
            self._offset += len(complete)
            for line in complete.splitlines():
                try:
                    self._records.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by SIGKILL
        return [r for r in self._records if r.get("event") == name]

    def start(self) -> None:
        starts = len(self.log_events("daemon.started"))
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "run.py"), "--config", str(self.config)],
            stdout=self.output,
            stderr=self.output,
            env=self.environ,
            cwd=self.tmp_path,
        )
        proc = self.proc
        wait_until(
            lambda: len(self.log_events("daemon.started")) > starts or proc.poll() is not None,
            timeout=30,
        )
        assert proc.poll() is None, (self.tmp_path / "daemon.out").read_text()[-3000:]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(REPO / "run.py"), "--config", str(self.config), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.environ,
            cwd=self.tmp_path,
        )

    def status(self, env: str) -> dict[str, Any]:
        with Client.connect(self.settings.socket_path) as client:
            result: dict[str, Any] = client.ask(f"environment.{env}", "GetEnvStatus", timeout=5)
            return result

    def status_or_none(self, env: str) -> dict[str, Any] | None:
        """The status, or None while the actor restarts (or the daemon is not up yet)."""
        try:
            return self.status(env)
        except ControlError:
            return None

    def close(self) -> None:
        self.stop()
        self.output.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    source = demo_source(tmp_path / "src")
    envs = {
        "prod": {
            "port": free_port(),
            "source": str(source),
            "deploy_timeout": 10.0,
            "stop_grace": 2.0,
        }
    }
    config = write_config(tmp_path, envs, extra="[control]\n")
    settings = load_settings(tmp_path, config)
    d = Daemon(tmp_path, config, settings)
    try:
        yield d
    finally:
        d.close()
        kill_services([Layout.of(settings, "prod").data])


def running_release(pid: int) -> str:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).name
    except OSError:
        return ""  # exited


def wait_serving_current(daemon: Daemon, layout: Layout) -> dict[str, Any]:
    """Wait until the one process of the environment serves the release ``current`` names."""
    port = daemon.settings.environments[layout.name].port

    def ready() -> dict[str, Any] | None:
        current = layout.current_release()
        if current is None or not serving(port, current):
            return None
        status = daemon.status_or_none(layout.name)
        if status is None or not status["healthy"] or status["release"] != current:
            return None
        return status

    result = wait_until(ready, timeout=30, interval=0.05)
    assert isinstance(result, dict)
    return result


def test_restarted_daemon_adopts_the_live_process(daemon: Daemon) -> None:
    layout = Layout.of(daemon.settings, "prod")
    daemon.start()
    first = wait_serving_current(daemon, layout)
    assert not first["adopted"]

    daemon.kill()
    assert serving(daemon.settings.environments["prod"].port)  # the service outlives the daemon
    daemon.start()

    second = wait_serving_current(daemon, layout)
    assert second["adopted"]
    assert second["pid"] == first["pid"]
    assert pids_with_data_dir(layout.data) == [first["pid"]]  # no second process
    assert len(daemon.log_events("environment.started")) == 2

    # The adopted process is watched like a child: its death is seen and repaired.
    os.kill(first["pid"], signal.SIGKILL)

    def replaced() -> dict[str, Any] | None:
        status = daemon.status_or_none("prod")
        if status is None or not status["healthy"] or status["pid"] in (None, first["pid"]):
            return None
        return status

    third = wait_until(replaced, timeout=20, interval=0.05)
    assert isinstance(third, dict)
    assert not third["adopted"]
    assert pids_with_data_dir(layout.data) == [third["pid"]]


def test_a_daemon_restarted_with_another_command_restarts_the_adopted_process(
    daemon: Daemon,
) -> None:
    layout = Layout.of(daemon.settings, "prod")
    daemon.start()
    first = wait_serving_current(daemon, layout)
    recorded = json.loads(layout.started_with.read_text())
    assert recorded["argv"][-1] == "server.py"
    assert recorded["env"]["LOG_LEVEL"] == "info"

    daemon.kill()
    text = daemon.config.read_text()
    daemon.config.write_text(text.replace('LOG_LEVEL = "info"', 'LOG_LEVEL = "debug"', 1))
    daemon.start()

    def replaced() -> dict[str, Any] | None:
        status = daemon.status_or_none("prod")
        if status is None or not status["healthy"] or status["pid"] in (None, first["pid"]):
            return None
        return status

    second = wait_until(replaced, timeout=30, interval=0.05)
    assert isinstance(second, dict)
    assert not second["adopted"]
    [changed] = daemon.log_events("environment.config_changed")
    assert changed["pid"] == first["pid"]
    assert '"LOG_LEVEL": "info"' in changed["was"]
    assert '"LOG_LEVEL": "debug"' in changed["now"]
    assert b"LOG_LEVEL=debug" in Path(f"/proc/{second['pid']}/environ").read_bytes().split(b"\0")
    assert pids_with_data_dir(layout.data) == [second["pid"]]


def test_the_cli_refuses_unknown_backups_and_releases_with_exit_2_and_prod_keeps_running(
    daemon: Daemon, tmp_path: Path
) -> None:
    layout = Layout.of(daemon.settings, "prod")
    daemon.start()
    first = wait_serving_current(daemon, layout)
    forged = builds.build_release(demo_source(tmp_path / "forged-src"), tmp_path / "forge")
    manifest = json.loads((forged.path / releases.MANIFEST).read_text())
    (forged.path / releases.MANIFEST).write_text(json.dumps({**manifest, "id": "../../../x"}))

    # (Every other refusal is checked on the command functions, in test_commands.py.)
    for args in (("restore", "prod", "typo"), ("deploy", "prod", str(forged.path))):
        assert daemon.cli(*args).wait(timeout=30) == 2, args

    status = daemon.status("prod")
    assert (status["pid"], status["release"]) == (first["pid"], first["release"])
    assert not (tmp_path / "x").exists()
    assert daemon.log_events("environment.stopped") == []


class CurrentWatcher:
    """Reads ``current`` in a loop; records every moment it is missing or dangling."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.problems: list[str] = []
        self.reads = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        # Samples every millisecond (a busy loop would starve the daemon on a small machine).
        while not self.stop.wait(0.001):
            self.reads += 1
            try:
                target = os.readlink(self.layout.current)
            except OSError as exc:
                self.problems.append(f"current unreadable: {exc}")
                continue
            if not (self.layout.root / target / releases.MANIFEST).is_file():
                self.problems.append(f"current -> {target} is not a complete release")

    def __enter__(self) -> CurrentWatcher:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _release_process_running(layout: Layout, release: str) -> bool:
    return any(running_release(pid) == release for pid in layout.service_pids())


def reach_kill_point(
    daemon: Daemon, layout: Layout, label: str, target: str, *, deploys: int, rng: random.Random
) -> None:
    def deploy_started() -> bool:
        return len(daemon.log_events("environment.deploy_started")) > deploys

    if label == "current switched":
        wait_until(lambda: layout.current_release() == target, timeout=20, interval=0.002)
    elif label == "new process runs":
        wait_until(lambda: _release_process_running(layout, target), timeout=20, interval=0.002)
    else:
        wait_until(deploy_started, timeout=20, interval=0.002)
    if label == "random":
        # The delay only picks the kill point; nothing waits on it for a result.
        threading.Event().wait(rng.uniform(0.0, 0.4))


def test_current_survives_a_sigkilled_daemon_mid_deploy(tmp_path: Path, daemon: Daemon) -> None:
    layout = Layout.of(daemon.settings, "prod")
    daemon.start()
    first = wait_serving_current(daemon, layout)
    built = builds.build_release(demo_source(tmp_path / "v2", marker="v2"), tmp_path / "built")
    paths = {first["release"]: layout.releases / first["release"], built.id: built.path}
    rng = random.Random()
    # Where the kill lands: after the deploy reached the daemon, after the switch of
    # `current`, once the new release's process runs, and a random moment after the start.
    kill_points = ["deploy started", "current switched", "new process runs", "random"]
    with CurrentWatcher(layout) as watcher:
        for label in kill_points:
            target = next(r for r in paths if r != layout.current_release())
            deploys = len(daemon.log_events("environment.deploy_started"))
            client = daemon.cli("deploy", "prod", str(paths[target]))
            reach_kill_point(daemon, layout, label, target, deploys=deploys, rng=rng)
            daemon.kill()
            client.wait(timeout=20)
            daemon.start()

            status = wait_serving_current(daemon, layout)

            current = layout.current_release()
            assert current in paths, label
            assert status["release"] == current, label
            pids = pids_with_data_dir(layout.data)
            assert pids == [status["pid"]], (label, pids)
            assert running_release(status["pid"]) == current, label
            answer = health(daemon.settings.environments["prod"].port)
            assert answer is not None
            assert answer[1]["release"] == current
    assert watcher.reads > 100
    assert watcher.problems == []
