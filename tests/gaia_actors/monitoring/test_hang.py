"""A hung service is caught within one read timeout plus a few re-checks; a slow one that still
answers is never failed over; a single blip is still smoothed. Real demo processes (their fault
knobs) and a real loopback server, with the monitor and the failover agent as actors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gaia_actors import process
from gaia_actors.messages import CheckNow, Fail, Flush, GetHealth, GetIncidents
from gaia_actors.monitoring.snapshot import HealthSnapshot
from gaia_actors.settings import Settings
from supervisors import ChildSpec
from tests.conftest import wait_until
from tests.gaia_actors.monitoring.conftest import Tree, make_settings, write_own_pidfile
from tests.gaia_actors.monitoring.hostile import Hang, HostileServer, Respond, Script, Switch
from tests.gaia_actors.monitoring.test_failover import FakeEnvironment
from tests.gaia_actors.monitoring.test_monitor import free_port

REPO = Path(__file__).resolve().parents[3]
READ_TIMEOUT = 1.0
RECHECK = 0.1
INTERVAL = 1.0
# The shipped shape, scaled down: three checks to call it down and three to fail it over.
TIMING: dict[str, dict[str, Any]] = {
    "monitor": {
        "interval": INTERVAL,
        "connect_timeout": 0.5,
        "read_timeout": READ_TIMEOUT,
        "latency_degraded": 0.2,
        "failure_threshold": 3,
        "success_threshold": 2,
        "recheck_interval": RECHECK,
    },
    "failover": {"down_checks": 3, "start_grace": 0.0},
}
# Three hung checks one after another would take 3 read timeouts; re-checked, they end within
# one read timeout and two re-check intervals (and a round's processing).
DETECT_BOUND = READ_TIMEOUT + 2 * RECHECK + 0.5


class Watched:
    """The monitor and failover agent over environment ``x``, and the Fails ``x`` received."""

    def __init__(self, tree: Tree, fails: list[Fail], received: threading.Event) -> None:
        self.tree, self.fails, self.received = tree, fails, received

    def status(self) -> str:
        snapshot: HealthSnapshot = self.tree.ask("monitor", GetHealth("x"))
        return str(snapshot.status)

    def incidents(self) -> list[dict[str, Any]]:
        self.tree.ask("store", Flush())
        rows: list[dict[str, Any]] = self.tree.ask("failover", GetIncidents("x"))
        return rows


@pytest.fixture
def watch(start_tree: Callable[..., Tree]) -> Callable[[Settings], Watched]:
    def start(settings: Settings) -> Watched:
        fails: list[Fail] = []
        received = threading.Event()
        fake = ChildSpec(
            "environment.x", lambda link: FakeEnvironment.start(link, fails, received, False)
        )
        tree = start_tree(settings, actors=("monitor", "failover"), extra=[fake])
        return Watched(tree, fails, received)

    return start


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Settings, int]]:
    """A real demo service as environment ``x`` (its pid file in x's directory)."""
    port = free_port()
    settings = make_settings(tmp_path, {"x": port}, TIMING)
    env_dir = settings.env_dir("x")
    env_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PORT": str(port), "DATA_DIR": str(env_dir / "data")}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "demo" / "server.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    start_time = process.proc_start_time(proc.pid)
    assert start_time is not None
    process.write_pidfile(env_dir / "pid", proc.pid, start_time)
    yield settings, port
    proc.kill()  # a hung demo parks its requests; nothing here needs a clean stop
    proc.wait(timeout=10)


def fault(port: int, knobs: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/fault", json.dumps(knobs).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_a_hung_demo_is_failed_over_within_a_read_timeout_and_two_rechecks(
    demo: tuple[Settings, int], watch: Callable[[Settings], Watched]
) -> None:
    settings, port = demo
    w = watch(settings)
    wait_until(lambda: w.status() == "healthy", 15.0)
    hung_at = time.time()
    fault(port, {"hang": True})
    assert w.received.wait(10), "environment.x never got a Fail"
    failed_at = time.time()
    assert w.fails[0].cause == "hung"
    assert "3 consecutive checks" in w.fails[0].reason
    rows = wait_until(lambda: [r for r in w.incidents() if r["detected"] is not None], 5.0)
    assert isinstance(rows, list)
    incident = rows[0]
    assert incident["started"] >= hung_at - 0.05  # the first check that hung
    assert READ_TIMEOUT <= incident["time_to_detect"] <= DETECT_BOUND
    assert failed_at - hung_at <= INTERVAL + DETECT_BOUND


def test_a_slow_demo_under_load_is_never_failed_over(
    demo: tuple[Settings, int], watch: Callable[[Settings], Watched]
) -> None:
    settings, port = demo
    w = watch(settings)
    wait_until(lambda: w.status() == "healthy", 15.0)
    fault(port, {"slow": 0.3})  # slower than a re-check, well within the read timeout
    rounds = w.tree.state("monitor")["rounds"]

    def get(_: int) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/items?limit=10", timeout=5):
            pass

    with ThreadPoolExecutor(8) as pool:  # the pipeline's load stage: 8 connections
        list(pool.map(get, range(60)))
    w.tree.wait_rounds(2)
    assert w.tree.state("monitor")["rounds"] >= rounds + 2
    assert w.status() == "degraded"  # slow answers: degraded by latency, never down
    assert w.tree.events.named("failover.triggered") == []
    downs = [e for e in w.tree.events.named("health.changed") if e.get("new") == "down"]
    assert downs == []
    assert w.fails == []


def test_a_single_hung_check_is_smoothed_by_its_recheck(
    tmp_path: Path, watch: Callable[[Settings], Watched]
) -> None:
    health = Script([Respond(), Hang()], Respond())  # the second check hangs, no other
    server = HostileServer({"/health": health})
    server.start()
    try:
        settings = make_settings(tmp_path, {"x": server.port}, TIMING)
        write_own_pidfile(settings, "x")
        w = watch(settings)
        wait_until(lambda: health.served >= 4, 10.0)
        w.tree.wait_rounds(2)
        assert w.status() == "healthy"
        assert w.tree.events.named("health.changed", "x")[-1].get("new") == "healthy"
        assert [e for e in w.tree.events.named("health.changed") if e.get("new") != "healthy"] == []
        assert w.fails == []
    finally:
        server.stop()


def test_an_error_answer_is_rechecked_at_the_recheck_interval(
    tmp_path: Path, watch: Callable[[Settings], Watched]
) -> None:
    health = Switch(Respond())
    server = HostileServer({"/health": health})
    server.start()
    try:
        overrides = {**TIMING, "monitor": {**TIMING["monitor"], "interval": 30.0}}
        settings = make_settings(tmp_path, {"x": server.port}, overrides)
        write_own_pidfile(settings, "x")
        w = watch(settings)
        wait_until(lambda: w.status() == "healthy", 10.0)
        health.set(Respond(503, b"{}"))
        w.tree.ask("monitor", CheckNow())
        # One check per 30 s interval would take a minute to see three 503s.
        assert w.received.wait(10), "environment.x never got a Fail"
        assert w.fails[0].cause == "error"
        rows = wait_until(lambda: [r for r in w.incidents() if r["detected"] is not None], 5.0)
        assert isinstance(rows, list)
        assert rows[0]["time_to_detect"] <= 2 * RECHECK + 0.5
    finally:
        server.stop()


def test_a_down_environment_answering_again_is_rechecked_until_up(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    health = Switch(Respond())
    server = HostileServer({"/health": health})
    server.start()
    try:
        overrides = {**TIMING, "monitor": {**TIMING["monitor"], "interval": 30.0}}
        settings = make_settings(tmp_path, {"x": server.port}, overrides)
        write_own_pidfile(settings, "x")
        fails: list[Fail] = []
        received = threading.Event()
        # Told Fail, it reports a start, as a restarted environment actor does.
        fake = ChildSpec(
            "environment.x", lambda link: FakeEnvironment.start(link, fails, received, True)
        )
        tree = start_tree(settings, actors=("monitor", "failover"), extra=[fake])
        w = Watched(tree, fails, received)
        wait_until(lambda: w.status() == "healthy", 10.0)
        health.set(Respond(503, b"{}"))
        tree.ask("monitor", CheckNow())
        assert received.wait(10), "environment.x never got a Fail"
        health.set(Respond())  # the restarted service answers
        tree.events.wait_for("incident.recovered", "x")
        rows = wait_until(lambda: [r for r in w.incidents() if r["recovered"] is not None], 5.0)
        assert isinstance(rows, list)
        # Two answering checks to be up: the second one a re-check away, not an interval.
        assert rows[0]["time_to_recover"] < 2.0
    finally:
        server.stop()


def test_more_failures_than_one_round_holds_are_counted_over_the_next_rounds(
    tmp_path: Path, watch: Callable[[Settings], Watched]
) -> None:
    server = HostileServer({"/health": Hang()})
    server.start()
    try:
        monitor = {"connect_timeout": 0.1, "read_timeout": 0.3, "interval": 30.0}
        overrides = {
            "monitor": {**TIMING["monitor"], **monitor},
            "failover": {"down_checks": 12, "start_grace": 0.0},
        }
        settings = make_settings(tmp_path, {"x": server.port}, overrides)
        write_own_pidfile(settings, "x")
        w = watch(settings)
        # A round holds 1 + (0.1 + 0.3) / 0.1 = 5 checks of x; the other 7 come at the re-check
        # pace, not one per 30 s interval.
        assert w.received.wait(10), "environment.x never got a Fail"
        assert "12 consecutive checks" in w.fails[0].reason
    finally:
        server.stop()
