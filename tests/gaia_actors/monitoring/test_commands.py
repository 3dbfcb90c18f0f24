"""Monitoring commands: status, health, load-balance, incidents, live and offline."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gaia_actors.console import render
from gaia_actors.control import commands
from gaia_actors.control.commands import CommandContext, UsageError
from gaia_actors.errors import ControlError
from gaia_actors.messages import Event, Flush, fields_of
from gaia_actors.monitoring import commands as monitoring_commands
from gaia_actors.monitoring import views
from gaia_actors.monitoring.balancer import NoEnvironmentAvailable
from gaia_actors.monitoring.snapshot import snapshot_fields
from gaia_actors.store.database import open_database
from gaia_actors.store.models import ActorRestart
from tests.conftest import wait_until
from tests.gaia_actors.monitoring.conftest import Tree, make_settings
from tests.gaia_actors.monitoring.hostile import HostileServer, Respond


@pytest.fixture
def running(tmp_path: Path, start_tree: Callable[..., Tree]) -> Iterator[Tree]:
    """Environments ``blue`` (healthy) and ``green`` (down) with every monitoring actor."""
    with (
        HostileServer({"/health": Respond()}) as blue,
        HostileServer({"/health": Respond(500, b"{}")}) as green,
    ):
        tree = start_tree(make_settings(tmp_path, {"blue": blue.port, "green": green.port}))
        for env, status in (("blue", "healthy"), ("green", "down")):
            tree.events.wait_for("health.changed", env, lambda e, s=status: e.get("new") == s)
        # The balancer may start after those changes; it learns them from the monitor then.
        wait_until(lambda: _balancer_statuses(tree) == {"blue": "healthy", "green": "down"})
        yield tree
        tree.stop()


def _balancer_statuses(tree: Tree) -> dict[str, str]:
    node = tree.registry.node("balancer")
    if node is None or node.state != "running":
        return {}
    backends = tree.state("balancer")["backends"]
    return {env: backend["status"] for env, backend in backends.items()}


def live(tree: Tree) -> CommandContext:
    return CommandContext(tree.settings, tree.registry)


def test_the_commands_are_registered() -> None:
    names = set(commands.commands())
    assert {"status", "health", "load-balance", "incidents"} <= names
    assert commands.get("status").offline  # type: ignore[union-attr]
    assert not commands.get("load-balance").offline  # type: ignore[union-attr]


def test_status_shows_every_environment_and_actor(running: Tree) -> None:
    result = monitoring_commands.status(live(running))
    assert result["source"] == "monitor"
    envs = {e["env"]: e for e in result["environments"]}
    assert (envs["blue"]["status"], envs["green"]["status"]) == ("healthy", "down")
    assert set(envs["blue"]) == {*snapshot_fields(), "restarts"}
    actors = {a["actor"]: a["state"] for a in result["actors"]}
    for name in ("store", "bus", "monitor", "metrics", "failover", "balancer"):
        assert actors[name] == "running"
    text = render.render(result, commands.get("status"))
    assert "environments (from monitor):" in text
    assert "blue" in text
    assert "healthy" in text
    assert "ACTOR" in text


def test_status_without_a_daemon_reads_the_newest_stored_checks(
    running: Tree, tmp_path: Path
) -> None:
    running.wait_rounds(2)
    running.ask("store", Flush())
    settings = running.settings
    running.stop()
    db = open_database(settings.database_url)
    try:
        ActorRestart.create(ts=time.time(), supervisor="environments", child="environment.green")
        result = monitoring_commands.status(CommandContext(settings, None))
    finally:
        db.close()
    assert result["source"].startswith("store")
    envs = {e["env"]: e for e in result["environments"]}
    # Nobody watches the services: what the monitor last saw is only the last known state.
    assert {e["status"] for e in envs.values()} == {"unwatched"}
    assert (envs["blue"]["last_status"], envs["green"]["last_status"]) == ("healthy", "down")
    assert all(0 <= e["age_s"] < 60 for e in envs.values())
    assert (envs["blue"]["restarts"], envs["green"]["restarts"]) == (0, 1)
    assert envs["green"]["http_status"] == 500
    assert result["actors"] == []
    text = views.render_status(result)
    assert text.startswith("no daemon running")
    assert "STATUS" not in text  # a status needs somebody watching
    blue = next(line for line in text.splitlines() if line.strip().startswith("blue"))
    assert "healthy" in blue
    assert " ago" in blue


def test_health_shows_one_environment_with_its_recent_checks(running: Tree) -> None:
    running.wait_rounds(3)
    running.ask("store", Flush())
    result = monitoring_commands.health(live(running), "green", n=3)
    assert (result["env"], result["status"], result["source"]) == ("green", "down", "monitor")
    checks = result["recent_checks"]
    assert len(checks) == 3
    assert {(c["status"], c["http"]) for c in checks} == {("down", 500)}


def run(ctx: CommandContext, name: str, **values: object) -> object:
    """A command as the control server runs it: its arguments bound, then its handler."""
    cmd = commands.get(name)
    assert cmd is not None
    return cmd.handler(ctx, **commands.bind(cmd, values, ctx.settings))


def test_health_of_an_unknown_environment_names_the_known_ones(running: Tree) -> None:
    with pytest.raises(UsageError, match=r"'nope'.*blue, green"):
        run(live(running), "health", env="nope")


def test_incidents_of_an_unknown_environment_names_the_known_ones(running: Tree) -> None:
    with pytest.raises(UsageError, match=r"'nope'.*blue, green"):
        run(live(running), "incidents", env="nope")


def test_a_load_balance_pool_naming_an_unknown_environment_is_refused(running: Tree) -> None:
    with pytest.raises(UsageError, match=r"load-balance pool: no environment 'nope'.*blue, green"):
        run(live(running), "load-balance", n=1, pool="blue,nope")


def test_load_balance_shows_the_distribution_and_why(running: Tree) -> None:
    result = monitoring_commands.load_balance(live(running), n=30)
    assert (result["requests"], result["routed"], result["rejected"]) == (30, 30, 0)
    assert result["distribution"] == [
        {"env": "blue", "status": "healthy", "routed": 30, "share": "100.0%"}
    ]
    assert [(w["rule"], w["routes"]) for w in result["why"]] == [("healthy, least loaded", 30)]
    assert result["why"][0]["example"].startswith("blue is healthy with the lowest load")


def test_load_balance_with_nothing_healthy_says_why(running: Tree) -> None:
    with pytest.raises(
        NoEnvironmentAvailable, match=r"no environment of pool \[green\].*green down"
    ):
        monitoring_commands.load_balance(live(running), n=5, pool="green")


def test_load_balance_needs_the_daemon(running: Tree) -> None:
    with pytest.raises(ControlError, match="needs a running daemon"):
        monitoring_commands.load_balance(CommandContext(running.settings, None), n=1)


def test_incidents_lists_time_to_detect_and_recover(running: Tree) -> None:
    bus = running.registry
    bus.tell("bus", Event("environment.exited", env="blue", data=fields_of(pid=7, code=1)))
    bus.tell("bus", Event("environment.started", env="blue", data=fields_of(pid=8)))
    running.events.wait_for("incident.recovered", "blue")
    running.ask("store", Flush())
    rows = wait_until(
        lambda: [
            r
            for r in monitoring_commands.incidents(live(running), "blue")
            if r["status"] == "recovered"
        ]
    )
    assert isinstance(rows, list)
    assert rows[0]["cause"] == "exited"
    assert rows[0]["time_to_recover"] > 0
    assert len(rows[0]["recovered"]) == len("2026-01-01 00:00:00")
    assert monitoring_commands.incidents(live(running), "green") == []  # down, no process


def test_status_shows_uptime_as_of_now_not_as_of_the_last_check() -> None:
    # The monitor measured 2 s of uptime at a check made 60 s ago: the process has run ~62 s.
    checked = time.time() - 60
    env = {"env": "prod", "status": "healthy", "pid": 1, "uptime_s": 2.0, "last_check": checked}
    text = views.render_status({"source": "monitor", "environments": [env]})
    prod = next(line for line in text.splitlines() if line.strip().startswith("prod"))
    assert re.search(r"\b1m0[123]s\b", prod), prod
