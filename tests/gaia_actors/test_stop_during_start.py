"""A daemon told to stop (Ctrl-C, SIGTERM) while an environment's first build runs stops at
once, on a real daemon process: the build's process group is killed, no half-made release
is left, nothing is parked or alerted on, and the next start builds and comes up healthy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.gaia_actors.control.test_control import CONFIG, REPO, DaemonProcess
from tests.gaia_actors.environments.conftest import DEMO, PROCESS_ENV, free_port

STOPPED_WITHIN = 5.0  # seconds from the signal to the daemon's exit (the build sleeps 25)


def slow_build_config(root: Path) -> str:
    """One environment whose build writes its pid to ``build.pid`` and, while ``slow``
    exists, sleeps 25 s."""
    code = (
        "import os, pathlib, time; "
        f"pathlib.Path({str(root / 'build.pid')!r}).write_text(str(os.getpid())); "
        f"time.sleep(25 if os.path.exists({str(root / 'slow')!r}) else 0)"
    )
    return CONFIG + (
        f'[environments.dev]\nport = {free_port()}\nsource = "{DEMO}"\n'
        f'build = ["{{python}}", "-c", {json.dumps(code)}]\nenv = {PROCESS_ENV}\n'
    )


def gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)  # the build leads its own process group
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_during_the_first_build_ends_it_at_once(tmp_path: Path, signum: int) -> None:
    daemon = DaemonProcess(tmp_path, slow_build_config(tmp_path))
    (tmp_path / "slow").touch()
    pidfile = tmp_path / "build.pid"
    with (tmp_path / "daemon.out").open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "run.py", "--config", str(daemon.config)],
            cwd=REPO,
            env=daemon.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text() != "", timeout=30)
        build_pid = int(pidfile.read_text())
        signalled = time.monotonic()
        process.send_signal(signum)
        code = process.wait(timeout=STOPPED_WITHIN)
        stopped_in = time.monotonic() - signalled
        print(f"stopped {stopped_in:.2f}s after the signal")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert code == 0, daemon.output()
    assert stopped_in < STOPPED_WITHIN
    wait_until(lambda: gone(build_pid), timeout=2)
    releases = daemon.state_dir / "environments" / "dev" / "releases"
    assert not releases.exists() or not list(releases.iterdir())  # no temp dir left
    events = [json.loads(line) for line in (daemon.state_dir / "logs" / "gaia.jsonl").open()]
    names = {e.get("event") for e in events}
    assert not names & {"supervisor.child_failed", "supervisor.child_parked", "env.failed"}
    assert not [e for e in events if e.get("level") in ("error", "critical")], events[-20:]
    assert "daemon.stopped" in names
    assert "daemon.started" not in names  # a start that was stopped is not announced
    assert "daemon.start_interrupted" in names

    # The next start builds (quickly now) and the environment comes up healthy.
    (tmp_path / "slow").unlink()
    pidfile.unlink()
    daemon.start()
    try:
        wait_until(lambda: dev_status(daemon) == "healthy", timeout=30)
        assert pidfile.exists()  # built again, not left half-made
    finally:
        assert daemon.stop() == 0, daemon.output()


def dev_status(daemon: DaemonProcess) -> str:
    result = daemon.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["environments"]
    return str(next(r for r in rows if r["env"] == "dev")["status"])
