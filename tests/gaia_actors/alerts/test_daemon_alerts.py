"""Alerts through the real daemon: pending notifications survive a SIGKILL and go out once
after the next start, with their id; delivery failures show in /metrics; the root's
escalation is the last thing the daemon sends."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_until
from tests.gaia_actors.alerts.loopback import HookServer, hook_server

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def hook() -> Iterator[HookServer]:
    with hook_server() as server:
        yield server


def _config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "gaia.toml"
    path.write_text(
        '[logging]\nconsole = "json"\n[metrics]\nlisten = "127.0.0.1:0"\n' + extra
        + "[alerts]\ngroup_wait = 0.05\nretry_initial = 0.05\nretry_max = 0.2\n"
        + f"[[alerts.receivers]]\nname = 'ops'\nkind = 'webhook'\nurl = '{url}'\n"
        + "min_severity = 'info'\ntimeout = 5\n",
        encoding="utf-8",
    )  # fmt: skip
    return path


def _environ(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "GAIA_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO)}


def _log(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "state" / "logs" / "gaia.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def _start(tmp_path: Path, config: Path, marks: int) -> subprocess.Popen[bytes]:
    """A daemon, once it has logged its ``marks + 1``-th start."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "run.py"), "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_environ(tmp_path),
        cwd=tmp_path,
    )
    started = lambda: sum(e["event"] == "daemon.started" for e in _log(tmp_path)) > marks  # noqa: E731
    wait_until(lambda: started() or proc.poll() is not None, timeout=30)
    assert proc.poll() is None
    return proc


def _notifications(tmp_path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(tmp_path / "state" / "gaia.db") as db:
        query = "SELECT uid, state, attempts FROM notifications ORDER BY id"
        return [(str(u), str(s), int(a)) for u, s, a in db.execute(query)]


def _metrics(tmp_path: Path) -> str:
    address = next(
        e["address"] for e in reversed(_log(tmp_path)) if e["event"] == "metrics.listening"
    )
    return requests.get(f"http://{address}/metrics", timeout=5).text


def test_a_notification_pending_at_a_sigkill_is_sent_once_after_the_next_start(
    tmp_path: Path, hook: HookServer
) -> None:
    hook.answer(*[503] * 100_000)  # the receiver is down
    config = _config(tmp_path, hook.url())
    daemon = _start(tmp_path, config, 0)
    try:
        subprocess.run(
            [sys.executable, str(REPO / "run.py"), "--config", str(config), "send", "bus",
             "Event", "name=alert.improve_regressed", "level=warning"],
            env=_environ(tmp_path), check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        wait_until(lambda: any(a >= 2 for _, _, a in _notifications(tmp_path)), timeout=20)
        wait_until(lambda: 'result="failed"' in _metrics(tmp_path), timeout=10)
        assert 'gaia_alert_notifications_total{receiver="ops",result="failed"}' in _metrics(
            tmp_path
        )
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    ((uid, state, _),) = _notifications(tmp_path)
    assert state == "pending"
    hook.answer()  # the receiver is back
    daemon = _start(tmp_path, config, 1)
    try:
        wait_until(lambda: _notifications(tmp_path)[0][1] == "delivered", timeout=20)
        assert hook.ids() == [uid]
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0


def test_the_root_escalation_is_sent_before_the_daemon_exits(
    tmp_path: Path, hook: HookServer
) -> None:
    config = _config(
        tmp_path,
        hook.url(),
        "[supervision]\nmax_restarts = 1\nbackoff_initial = 0.01\nbackoff_max = 0.02\n",
    )
    script = (
        "import sys; from gaia_actors import app; from gaia_actors.console.cli import main;"
        "from tests.gaia_actors import failing_capability;"
        "app.CAPABILITIES.append(failing_capability);"
        "sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "--config", str(config), "run"],
        capture_output=True, timeout=60, env=_environ(tmp_path), cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    (body,) = hook.received
    (alert,) = body["alerts"]
    assert (alert["name"], alert["severity"]) == ("daemon_escalated", "critical")
    assert "the daemon is exiting: services" in alert["summary"]
    events = [e["event"] for e in _log(tmp_path)]
    assert events.index("daemon.last_alert") < events.index("daemon.stopped")
    assert _notifications(tmp_path)[0][1] == "delivered"
