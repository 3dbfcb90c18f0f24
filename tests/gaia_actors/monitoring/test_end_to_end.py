"""A hung demo environment goes through failover to recovery: the real environment actor under
the real ``environments`` supervisor, the real monitoring actors, a real demo process whose
/health is hung with its admin fault knob."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaia_actors.messages import Flush, GetHealth, GetIncidents
from tests.conftest import wait_until
from tests.gaia_actors.monitoring.conftest import Tree, make_settings

REPO = Path(__file__).resolve().parents[3]
PROCESS_ENV = {
    "PORT": "{port}",
    "DATA_DIR": "{data_dir}",
    "RELEASE_ID": "{release_id}",
    "ENV_NAME": "{name}",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def hang_health(port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/fault",
        json.dumps({"hang": True}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["hang"] is True


def test_a_hung_environment_is_failed_over_and_recovers_in_a_new_process(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    source = tmp_path / "demo"
    shutil.copytree(
        REPO / "demo", source, ignore=shutil.ignore_patterns("__pycache__", "tests", "tools")
    )
    port = free_port()
    environment: dict[str, Any] = {
        "source": str(source),
        "env": PROCESS_ENV,
        "build": [],  # the demo runs from source: no compileall, the test stays fast
        "startsecs": 0.3,
        "stop_grace": 2.0,
    }
    overrides = {
        "env.x": environment,
        "monitor": {"read_timeout": 0.2},
        "failover": {"down_checks": 2, "start_grace": 30.0},
    }
    settings = make_settings(tmp_path, {"x": port}, overrides)
    tree = start_tree(settings, environments=True)
    started = tree.events.wait_for("environment.started", "x")
    first_pid = started.get("pid")
    wait_until(lambda: tree.ask("monitor", GetHealth("x")).status == "healthy", 10.0)

    hang_health(port)

    triggered = tree.events.wait_for("failover.triggered", "x")
    assert triggered.get("cause") == "hung"
    assert triggered.get("pid") == first_pid
    restarted = tree.events.wait_for(
        "environment.started", "x", lambda e: e.get("pid") != first_pid
    )
    recovered = tree.events.wait_for("incident.recovered", "x")
    snapshot = tree.ask("monitor", GetHealth("x"))
    assert (snapshot.status, snapshot.pid) == ("healthy", restarted.get("pid"))
    tree.ask("store", Flush())
    incident = tree.ask("failover", GetIncidents("x"))[0]
    assert (incident["cause"], incident["status"], incident["failovers"]) == (
        "hung",
        "recovered",
        1,
    )
    assert incident["time_to_detect"] > 2 * 0.2  # two checks, each waiting out its timeout
    assert incident["time_to_recover"] > 0
    assert incident["time_to_recover"] == recovered.get("time_to_recover")
    assert "restart(s) by the supervisor" in incident["detail"]
