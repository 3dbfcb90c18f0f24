"""``improve`` from the command line: through a running daemon, and on its own (offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.gaia_actors.control.test_control import REPO, DaemonProcess
from tests.gaia_actors.improve.conftest import write

MODULE = "def f(x):\n    # TODO: later\n    return x\n"


def improve_config(target: Path) -> str:
    return f"""
[logging]
console = "off"
[store]
flush_interval = 0.05
[metrics]
listen = ""
[improve]
target = "{target}"
workers = 2
batch_size = 2
tests = "none"
linters = []
fixers = []
"""


def small_tree(root: Path) -> Path:
    for i in range(6):
        write(root, f"pkg/m{i}.py", MODULE)
    return root


def test_improve_through_the_daemon_streams_progress_and_returns_the_cycle(
    tmp_path: Path,
) -> None:
    target = small_tree(tmp_path / "src")
    daemon = DaemonProcess(tmp_path, improve_config(target)).start()
    try:
        done = daemon.cli("improve", "--json")
        history = daemon.cli("improve", "--history")
    finally:
        assert daemon.stop() == 0, daemon.output()

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["cycle_id"], result["status"], result["files"]) == (1, "succeeded", 6)
    assert {f["where"] for f in result["top_findings"]} == {f"pkg/m{i}.py:2" for i in range(6)}
    progress = [json.loads(line)["progress"]["message"] for line in done.stderr.splitlines()]
    assert "analyse [##############################] 100% 6/6 files" in progress
    assert progress[-1].startswith("persist done in")
    assert history.returncode == 0, history.stderr
    assert history.stdout.startswith(f"improvement cycles of {target} (oldest first):\n")


def test_improve_without_a_daemon_runs_the_cycle_here_and_history_compares_two(
    tmp_path: Path,
) -> None:
    target = small_tree(tmp_path / "src")
    config = tmp_path / "gaia.toml"
    config.write_text(improve_config(target), encoding="utf-8")
    env = {**os.environ, "GAIA_STATE_DIR": str(tmp_path / "state")}
    env.pop("GAIA_CONFIG", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "run.py", "--config", str(config), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    first = cli("improve")
    write(target, "pkg/m0.py", MODULE.replace("TODO", "FIXME"))
    second = cli("improve")
    history = cli("improve", "--history")

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"improvement cycle #1 of {target}: succeeded in ")
    assert "findings   6 (6 medium)" in first.stdout
    assert "... analyse [" in first.stderr
    assert second.returncode == 0, second.stderr
    assert "with cycle #1: 1 new, 1 fixed, 5 unchanged findings" in second.stdout
    assert history.returncode == 0, history.stderr
    assert "cycle #2 against #1: 1 new, 1 fixed, 5 unchanged findings" in history.stdout
    assert "  new: high fixme pkg/m0.py:2 # FIXME: later" in history.stdout
    assert "  fixed: medium todo pkg/m0.py:2 # TODO: later" in history.stdout
