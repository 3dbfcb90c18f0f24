"""FailoverAgent through real actors: a hung environment is failed over, incidents recorded,
flapping damped, alerts raised."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gaia_actors import process
from gaia_actors.actor import GaiaActor
from gaia_actors.messages import Crash, Event, Fail, Flush, GetIncidents, InsertNow, fields_of
from gaia_actors.settings import Settings
from gaia_actors.store.models import Incident
from supervisors import ChildSpec, Link
from tests.conftest import wait_until
from tests.gaia_actors.monitoring.conftest import Tree, make_settings, write_own_pidfile
from tests.gaia_actors.monitoring.hostile import Hang, HostileServer, Respond, Switch


class FakeEnvironment(GaiaActor):
    """Stands in for ``environment.x``: records every Fail it is told, and reports a start
    (as a restarted environment actor adopting the process in the pid file would)."""

    def __init__(
        self, link: Link, fails: list[Fail], received: threading.Event, restarts: bool
    ) -> None:
        super().__init__(link)
        self.fails = fails
        self.received = received
        self.restarts = restarts

    def receive(self, message: Any) -> Any:
        if isinstance(message, Fail):
            self.fails.append(message)
            self.received.set()
            if self.restarts:
                self.publish("environment.started", env="x", pid=os.getpid(), adopted=True)
            return None
        return self.unhandled(message)


class Harness:
    """A hostile /health for environment ``x``, the tree, and what ``environment.x`` received."""

    def __init__(self, tree: Tree, health: Switch, fails: list[Fail], received: threading.Event):
        self.tree = tree
        self.health = health
        self.fails = fails
        self.received = received

    def incidents(self) -> list[dict[str, Any]]:
        self.tree.ask("store", Flush())
        rows: list[dict[str, Any]] = self.tree.ask("failover", GetIncidents("x"))
        return rows

    def publish(self, name: str, **data: Any) -> None:
        self.tree.registry.tell("bus", Event(name, env="x", data=fields_of(**data)))


@pytest.fixture
def harness(tmp_path: Path, start_tree: Callable[..., Tree]) -> Iterator[Callable[..., Harness]]:
    servers: list[HostileServer] = []

    def make(
        behaviour: Any = None,
        pidfile: Callable[[Settings], object] = lambda s: write_own_pidfile(s, "x"),
        restarts: bool = True,
        **overrides: Any,
    ) -> Harness:
        health = Switch(behaviour or Hang())
        server = HostileServer({"/health": health})
        server.start()
        servers.append(server)
        # A hung check costs its read timeout: keep it short unless a test needs otherwise.
        overrides.setdefault("monitor", {"read_timeout": 0.1})
        settings = make_settings(tmp_path, {"x": server.port}, overrides)
        pidfile(settings)
        fails: list[Fail] = []
        received = threading.Event()
        fake = ChildSpec(
            "environment.x",
            lambda link: FakeEnvironment.start(link, fails, received, restarts),
        )
        tree = start_tree(settings, actors=("monitor", "failover"), extra=[fake])
        return Harness(tree, health, fails, received)

    yield make
    for server in servers:
        server.stop()


def test_a_hung_environment_is_failed_over_and_recovery_verified_by_health(
    harness: Callable[..., Harness],
) -> None:
    # The restart is reported by the test, once it has read the open incident: reported at
    # once, the hung /health would fail the "restarted" process over again before the test
    # could make it answer.
    h = harness(Hang(), restarts=False)
    assert h.received.wait(10), "environment.x never got a Fail"
    fail = h.fails[0]
    assert fail.cause == "hung"
    assert "2 consecutive checks while process" in fail.reason
    triggered = h.tree.events.wait_for("failover.triggered", "x")
    assert triggered.level == "warning"
    opened = wait_until(h.incidents)
    assert isinstance(opened, list)
    assert (opened[0]["cause"], opened[0]["status"]) == ("hung", "open")
    h.health.set(Respond())  # the restarted process answers
    h.publish("environment.started", pid=os.getpid(), adopted=True)
    h.tree.events.wait_for("incident.recovered", "x")
    incident = wait_until(lambda: [i for i in h.incidents() if i["status"] == "recovered"])
    assert isinstance(incident, list)
    row = incident[0]
    assert row["time_to_detect"] > 0.1  # at least two checks that each waited 0.1 s
    assert row["time_to_recover"] > 0
    outage = row["recovered"] - row["started"]
    assert row["time_to_detect"] + row["time_to_recover"] == pytest.approx(outage, abs=1e-3)
    assert row["failovers"] == 1
    assert len(h.fails) == 1


@pytest.mark.parametrize(
    "answer",
    [Respond(503, b"{}"), Respond(200, b'{"status": "down"}')],
    ids=["503", "down body"],
)
def test_an_environment_answering_errors_fails_over_as_an_error_not_hung(
    harness: Callable[..., Harness], answer: Respond
) -> None:
    h = harness(answer)
    assert h.received.wait(10), "environment.x never got a Fail"
    assert h.fails[0].cause == "error"
    assert h.tree.events.wait_for("failover.triggered", "x").get("cause") == "error"


def test_answers_of_the_failed_process_are_no_recovery(harness: Callable[..., Harness]) -> None:
    h = harness(Hang(), restarts=False)
    assert h.received.wait(10)
    h.health.set(Respond())  # the failed process answers again (a demo does, shutting down)
    h.tree.events.wait_for("health.changed", "x", lambda e: e.get("new") == "healthy")
    h.tree.wait_rounds(2)
    assert h.tree.events.named("incident.recovered") == []
    assert h.tree.state("failover")["environments"]["x"]["open_incident"] == "hung"
    h.publish("environment.started", pid=os.getpid(), adopted=True)  # back under its actor
    h.tree.events.wait_for("incident.recovered", "x")


def spawn_and_reap() -> int:
    """The pid of a process that has exited (so nothing alive answers to it)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def young_process(settings: Settings) -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    start = process.proc_start_time(child.pid)
    assert start is not None
    path = settings.env_dir("x") / "pid"
    path.parent.mkdir(parents=True)
    process.write_pidfile(path, child.pid, start)
    return child


def test_a_dead_process_is_left_to_its_environment_actor(harness: Callable[..., Harness]) -> None:
    def dead(settings: Settings) -> None:
        path = settings.env_dir("x") / "pid"
        path.parent.mkdir(parents=True)
        process.write_pidfile(path, spawn_and_reap(), 1)

    h = harness(Hang(), pidfile=dead)
    h.tree.events.wait_for("health.changed", "x", lambda e: e.get("new") == "down")
    h.tree.wait_rounds(3)
    assert h.fails == []
    assert h.tree.state("failover")["environments"]["x"]["failed_checks"] == 0


def test_a_process_younger_than_the_start_grace_is_not_failed_over(
    harness: Callable[..., Harness],
) -> None:
    children: list[subprocess.Popen[bytes]] = []
    h = harness(
        Hang(), pidfile=lambda s: children.append(young_process(s)), failover={"start_grace": 30.0}
    )
    try:
        h.tree.events.wait_for("health.changed", "x", lambda e: e.get("new") == "down")
        h.tree.wait_rounds(3)
        assert h.fails == []
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_a_young_process_that_passed_its_start_up_check_is_failed_over_when_it_hangs(
    harness: Callable[..., Harness],
) -> None:
    """Its environment actor saw it healthy (the ``verified`` file names it): the start grace
    is over, so a hang right after start is caught in N checks, not after the grace, even by
    an agent that started after that check."""
    children: list[subprocess.Popen[bytes]] = []

    def verified_young_process(settings: Settings) -> None:
        child = young_process(settings)
        children.append(child)
        record = process.read_pidfile(settings.env_dir("x") / "pid")
        assert record is not None
        process.write_pidfile(settings.env_dir("x") / "verified", child.pid, record.start_time)

    h = harness(Hang(), pidfile=verified_young_process, failover={"start_grace": 30.0})
    try:
        assert h.received.wait(10), "environment.x never got a Fail"
        assert f"while process {children[0].pid} is alive" in h.fails[0].reason
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_flapping_is_damped_and_alerted_once(harness: Callable[..., Harness]) -> None:
    h = harness(Hang(), failover={"flap_max": 1, "flap_window": 60.0})
    assert h.received.wait(10)
    wait_until(lambda: h.tree.state("failover")["suppressed"] >= 2, 10.0)
    alert = h.tree.events.wait_for("alert.flapping", "x")
    assert alert.level == "error"
    assert len(h.tree.events.named("alert.flapping")) == 1
    assert len(h.fails) == 1
    assert "suppressed" in h.incidents()[0]["detail"]


def test_a_process_exit_is_an_incident_recovered_once_healthy_again(
    harness: Callable[..., Harness],
) -> None:
    h = harness(Respond())
    h.tree.events.wait_for("health.changed", "x", lambda e: e.get("new") == "healthy")
    h.publish("environment.exited", pid=4242, code=-9)
    h.publish("environment.started", pid=4243, release="r1")
    h.tree.events.wait_for("incident.recovered", "x")
    rows = h.incidents()
    assert [(r["cause"], r["status"], r["time_to_detect"]) for r in rows] == [
        ("exited", "recovered", 0.0)
    ]
    assert rows[0]["time_to_recover"] > 0
    assert "exited with code -9" in rows[0]["detail"]
    assert h.fails == []


def test_a_new_agent_takes_over_the_incidents_left_open_and_closes_them(
    harness: Callable[..., Harness],
) -> None:
    h = harness(Respond())
    h.tree.events.wait_for("health.changed", "x", lambda e: e.get("new") == "healthy")

    def left_open(env: str, started: float) -> int:
        row = fields_of(env=env, cause="hung", started=started, detected=started + 3.0,
                        status="open", detail="left by a crashed agent")  # fmt: skip
        row_id: int = h.tree.ask("store", InsertNow("incidents", row))
        return row_id

    older, newer, gone = left_open("x", 100.0), left_open("x", 200.0), left_open("gone", 300.0)
    h.tree.registry.tell("failover", Crash("as in the chaos soak"))
    h.tree.events.wait_for("incident.recovered", "x")
    h.tree.ask("store", Flush())
    rows = {row.id: row for row in Incident.select()}
    assert rows[newer].status == "recovered"
    assert rows[newer].time_to_detect == 3.0
    assert rows[newer].recovered > 203.0
    assert "taken over by a new failover agent" in rows[newer].detail
    assert rows[older].status == "superseded"
    assert f"superseded by incident #{newer}" in rows[older].detail
    assert rows[gone].status == "closed"
    assert "no longer configured" in rows[gone].detail


def test_degraded_is_an_alert(harness: Callable[..., Harness]) -> None:
    h = harness(Respond(delay=0.2), monitor={})  # slower than latency_degraded, within timeout
    alert = h.tree.events.wait_for("alert.degraded", "x")
    assert alert.level == "warning"
    assert "latency" in alert.get("reason")


def test_failed_is_an_alert_and_ends_the_incident(harness: Callable[..., Harness]) -> None:
    h = harness(Respond())
    h.publish("environment.exited", pid=4242, code=1)
    h.publish("environment.failed", error="restart budget and ladder spent")
    alert = h.tree.events.wait_for("alert.failed", "x")
    assert alert.level == "error"
    assert "reset x" in alert.get("action")
    rows = wait_until(lambda: [r for r in h.incidents() if r["status"] == "failed"])
    assert isinstance(rows, list)
    assert "FAILED: restart budget and ladder spent" in rows[0]["detail"]
    assert Incident.select().count() == 1
