"""HealthMonitor through the actor: real misbehaving servers on 127.0.0.1, a real tree with store
and bus."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gaia_actors import process
from gaia_actors.errors import InvalidMessage
from gaia_actors.messages import CheckNow, Crash, Event, Flush, GetHealth, fields_of
from gaia_actors.monitoring.snapshot import HealthSnapshot, snapshot_fields
from gaia_actors.store.models import HealthCheck
from tests.conftest import wait_until
from tests.gaia_actors.monitoring.conftest import Tree, make_settings
from tests.gaia_actors.monitoring.hostile import (
    Behaviour,
    Hang,
    HostileServer,
    HugeBody,
    Reset,
    Respond,
    Script,
    Switch,
    garbage_body,
    refused_port,
)

REPO = Path(__file__).resolve().parents[3]
OK = Respond()
ERROR = Respond(500, b'{"status": "error"}')

ZOO: dict[str, tuple[Behaviour | None, str]] = {
    "ok": (OK, "healthy"),
    "slow": (Respond(delay=0.2), "degraded"),  # answers, but slower than latency_degraded
    "error500": (ERROR, "down"),
    "hang": (Hang(), "down"),  # never answers: read timeout
    "reset": (Reset(), "down"),
    "garbage": (garbage_body(), "degraded"),  # 200 with a body that is not JSON
    "huge": (HugeBody(8 * 1024 * 1024, framing="chunked"), "degraded"),  # cut off at the bound
    "says_error": (Respond(body=b'{"status": "error"}'), "down"),  # 200, body says down
    "refused": (None, "down"),
}


# The zoo: one environment per misbehaviour, all checked by one monitor, built once for the
# class below (class scope: the store's database proxy is process-wide, so no other tree may
# run beside it).


@pytest.fixture(scope="class")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tree]:
    with contextlib.ExitStack() as stack:
        ports = {}
        for env, (behaviour, _) in ZOO.items():
            if behaviour is None:
                ports[env] = stack.enter_context(refused_port())
            else:
                server = stack.enter_context(HostileServer({"/health": behaviour}))
                ports[env] = server.port
        tree = Tree(make_settings(tmp_path_factory.mktemp("zoo"), ports), actors=("monitor",))
        stack.callback(tree.stop)  # before the servers stop: no round sees them vanish
        yield tree


@pytest.fixture(scope="class")
def settled(zoo: Tree) -> dict[str, HealthSnapshot]:
    """Each environment's snapshot once all reached their expected status, plus a round."""

    def reached() -> bool:
        snapshots = zoo.ask("monitor", GetHealth())
        return all(s.status == ZOO[s.env][1] for s in snapshots)

    wait_until(reached, 5.0)
    zoo.wait_rounds(1)
    return {s.env: s for s in zoo.ask("monitor", GetHealth())}


class TestMisbehavingEndpoints:
    """The zoo's environments, each classified; the monitor never stops."""

    @pytest.mark.parametrize("env", list(ZOO))
    def test_each_misbehaviour_is_classified_and_the_monitor_carries_on(
        self, zoo: Tree, settled: dict[str, HealthSnapshot], env: str
    ) -> None:
        assert settled[env].status == ZOO[env][1], settled[env]
        assert zoo.state("monitor")["failed_rounds"] == 0
        assert zoo.registry.node("monitor").generation == 1  # type: ignore[union-attr]

    def test_a_failing_check_says_why(self, zoo: Tree) -> None:
        wait_until(lambda: zoo.ask("monitor", GetHealth("hang")).status == "down")
        snapshot = zoo.ask("monitor", GetHealth("hang"))
        assert snapshot.error.startswith("timeout")
        assert "consecutive failures" in snapshot.reason
        assert snapshot.consecutive_failures >= 2

    def test_get_health_answers_at_once_while_a_round_waits_on_a_hung_endpoint(
        self, zoo: Tree
    ) -> None:
        wait_until(lambda: zoo.state("monitor")["running"])  # a round is stuck on "hang"
        started = time.perf_counter()
        snapshots = zoo.ask("monitor", GetHealth(), timeout=1.0)
        assert time.perf_counter() - started < 0.1
        assert [s.env for s in snapshots] == list(ZOO)

    def test_rounds_do_not_pile_up_when_one_overruns_the_interval(self, zoo: Tree) -> None:
        # interval 0.05 s, but each round waits 0.3 s on the hung environment: rounds that
        # piled up would finish every 0.05 s.
        zoo.wait_rounds(1)  # from the end of a round: the next one has just started
        first = zoo.state("monitor")["rounds"]
        started = time.monotonic()
        zoo.wait_rounds(2)
        elapsed = time.monotonic() - started
        rounds = zoo.state("monitor")["rounds"] - first
        assert elapsed >= 0.3 + 0.3 * 0.8  # one whole round, and most of the one under way
        assert rounds <= elapsed / 0.3 + 1

    def test_an_unknown_environment_is_refused_by_name(self, zoo: Tree) -> None:
        with pytest.raises(InvalidMessage, match=r"'nope'.*environments: ok, slow"):
            zoo.ask("monitor", GetHealth("nope"))


def test_every_check_is_stored(tmp_path: Path, start_tree: Callable[..., Tree]) -> None:
    with HostileServer({"/health": OK}) as server:
        tree = start_tree(make_settings(tmp_path, {"app": server.port}), actors=("monitor",))
        tree.wait_rounds(4)
        rounds = tree.state("monitor")["rounds"]
        tree.ask("store", Flush())
        rows = list(HealthCheck.select().where(HealthCheck.env == "app"))
        assert len(rows) >= rounds
        assert {r.status for r in rows} <= {"healthy"}
        assert all(r.http_status == 200 and r.latency_ms is not None for r in rows)


def test_transitions_are_published_once_each_with_their_level(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    switch = Switch(OK)
    with HostileServer({"/health": switch}) as server:
        tree = start_tree(make_settings(tmp_path, {"app": server.port}), actors=("monitor",))
        steps = [(ERROR, "down"), (Respond(delay=0.2), "degraded"), (OK, "healthy")]
        tree.events.wait_for("health.changed", "app", lambda e: e.get("new") == "healthy")
        for number, (behaviour, status) in enumerate(steps, start=2):
            switch.set(behaviour)
            wait_until(lambda n=number: len(tree.events.named("health.changed", "app")) >= n)
            assert tree.events.named("health.changed", "app")[-1].get("new") == status
            tree.wait_rounds(2)  # staying in a state publishes nothing more
        changes = [
            (e.get("old"), e.get("new"), e.level) for e in tree.events.named("health.changed")
        ]
    assert changes == [
        ("unknown", "healthy", "info"),
        ("healthy", "down", "error"),
        ("down", "degraded", "warning"),
        ("degraded", "healthy", "info"),
    ]


def test_one_failed_check_does_not_change_a_healthy_environment(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    script = Script([OK, OK, ERROR, OK, OK], then=OK)
    with HostileServer({"/health": script}) as server:
        tree = start_tree(make_settings(tmp_path, {"app": server.port}), actors=("monitor",))
        wait_until(lambda: script.served >= 7)
        tree.wait_rounds(1)
        news = [e.get("new") for e in tree.events.named("health.changed", "app")]
    assert news == ["healthy"]


def test_failure_threshold_consecutive_failures_go_down_then_recover(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    script = Script([OK, ERROR, ERROR, ERROR], then=OK)
    overrides = {"monitor": {"failure_threshold": 3}}
    with HostileServer({"/health": script}) as server:
        tree = start_tree(
            make_settings(tmp_path, {"app": server.port}, overrides), actors=("monitor",)
        )
        tree.events.wait_for(
            "health.changed", "app", lambda e: e.get("new") == "healthy" and e.get("old") == "down"
        )
        down = tree.events.named("health.changed", "app")[1]
    assert (down.get("old"), down.get("new"), down.get("consecutive_failures")) == (
        "healthy",
        "down",
        3,
    )


def test_flapping_answers_degrade_by_error_rate_but_never_go_down(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    script = Script([OK, ERROR] * 6, then=OK)
    overrides = {"monitor": {"window": 4, "error_rate_degraded": 0.3}}
    with HostileServer({"/health": script}) as server:
        tree = start_tree(
            make_settings(tmp_path, {"app": server.port}, overrides), actors=("monitor",)
        )
        wait_until(lambda: script.served >= 12)
        tree.events.wait_for("health.changed", "app", lambda e: e.get("old") == "degraded")
        news = [e.get("new") for e in tree.events.named("health.changed", "app")]
    assert news == ["healthy", "degraded", "healthy"]
    assert "error rate" in tree.events.named("health.changed", "app")[1].get("reason")


def test_check_now_during_a_round_asks_for_exactly_one_more(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    with HostileServer({"/health": Hang()}) as server:
        settings = make_settings(tmp_path, {"app": server.port}, {"monitor": {"interval": 60.0}})
        tree = start_tree(settings, actors=("monitor",))
        assert tree.state("monitor")["running"]  # the first round starts with the actor
        for _ in range(10):
            tree.registry.tell("monitor", CheckNow())
        wait_until(lambda: tree.state("monitor")["rounds"] == 2)
        state = tree.state("monitor")
        assert (state["rounds"], state["running"]) == (2, False)  # no third round follows


def test_watchers_watch_a_restarted_monitor_again(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    with HostileServer({"/health": OK}) as server:
        settings = make_settings(tmp_path, {"app": server.port})
        tree = start_tree(settings, actors=("monitor", "metrics", "failover"))
        wait_until(lambda: sorted(tree.state("monitor")["watchers"]) == ["failover", "metrics"])
        tree.registry.tell("monitor", Crash("test"))
        wait_until(lambda: tree.registry.node("monitor").generation == 2)  # type: ignore[union-attr]
        # Only the monitor restarted (one_for_one); its watchers came back by themselves.
        wait_until(lambda: sorted(tree.state("monitor")["watchers"]) == ["failover", "metrics"])
        for name in ("metrics", "failover"):
            assert tree.registry.node(name).generation == 1  # type: ignore[union-attr]


def test_a_corrupt_pid_file_leaves_the_process_fields_empty(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    with HostileServer({"/health": OK}) as server:
        settings = make_settings(tmp_path, {"app": server.port})
        pidfile = settings.env_dir("app") / "pid"
        pidfile.parent.mkdir(parents=True)
        pidfile.write_text("not json at all")
        tree = start_tree(settings, actors=("monitor",))
        tree.wait_rounds(2)
        snapshot = tree.ask("monitor", GetHealth("app"))
    assert (snapshot.status, snapshot.pid, snapshot.alive) == ("healthy", None, None)


# -- every snapshot field from a real demo process ---------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Any, int]]:
    """A real demo service whose pid file, data and log live in env ``app``'s directory."""
    port = free_port()
    settings = make_settings(tmp_path, {"app": port})
    env_dir = settings.env_dir("app")
    (env_dir / "logs").mkdir(parents=True)
    env = {**os.environ, "PORT": str(port), "DATA_DIR": str(env_dir / "data"), "RELEASE_ID": "r42"}
    with (env_dir / "logs" / "app.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "demo" / "server.py")], env=env, stdout=log, stderr=log
        )
    start_time = process.proc_start_time(proc.pid)
    assert start_time is not None
    process.write_pidfile(env_dir / "pid", proc.pid, start_time)
    yield settings, proc.pid
    proc.terminate()
    proc.wait(timeout=10)


def make_a_5xx(port: int) -> None:
    """One real server error, so the service's own error counter has a sample."""

    def admin(body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/admin/fault", json.dumps(body).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=5).close()

    admin({"unhealthy": True})
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
    admin({"unhealthy": False})


def test_every_snapshot_field_is_filled_from_a_real_process(
    demo: tuple[Any, int], start_tree: Callable[..., Tree]
) -> None:
    settings, pid = demo
    tree = start_tree(settings, actors=("monitor", "metrics"))
    wait_until(lambda: tree.ask("monitor", GetHealth("app")).status == "healthy", 10.0)
    make_a_5xx(settings.environments["app"].port)

    def filled() -> HealthSnapshot | None:
        snapshot: HealthSnapshot = tree.ask("monitor", GetHealth("app"))
        values = [getattr(snapshot, name) for name in snapshot_fields()]
        # A check that ran while the fault was on saw its 503: wait for one after it.
        healthy = snapshot.http_status == 200
        return snapshot if healthy and all(v is not None for v in values) else None

    snapshot = wait_until(filled, 10.0)
    assert isinstance(snapshot, HealthSnapshot)
    assert snapshot.pid == pid
    assert snapshot.alive is True
    assert snapshot.release == "r42"  # from /health: no `current` link in this directory
    assert snapshot.rss_bytes > 1_000_000
    assert snapshot.db_bytes > 0  # app.db and its WAL in DATA_DIR
    assert snapshot.log_bytes > 0  # one JSON line per request
    assert 0 < snapshot.uptime_s < 60
    assert snapshot.cpu_percent >= 0
    assert snapshot.requests >= 1
    assert snapshot.errors >= 1
    assert 0 < snapshot.service_error_rate <= 1
    assert snapshot.checks >= 1
    assert snapshot.response_ms > 0
    assert snapshot.http_status == 200


# -- the first minute: a starting process --------------------------------------------------------


@pytest.fixture
def young_process(tmp_path: Path) -> Iterator[Callable[[Any, str], int]]:
    """``young_process(settings, env)``: a just-spawned child recorded as ``env``'s process."""
    children: list[subprocess.Popen[bytes]] = []

    def spawn(settings: Any, env: str) -> int:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        children.append(child)
        start_time = process.proc_start_time(child.pid)
        assert start_time is not None
        path = settings.env_dir(env) / "pid"
        path.parent.mkdir(parents=True, exist_ok=True)
        process.write_pidfile(path, child.pid, start_time)
        return child.pid

    yield spawn
    for child in children:
        child.kill()
        child.wait(5)


def test_a_starting_process_refusing_is_no_error_and_healthy_as_soon_as_it_listens(
    tmp_path: Path, start_tree: Callable[..., Tree], young_process: Callable[[Any, str], int]
) -> None:
    overrides = {
        "monitor": {"interval": 30.0, "start_interval": 0.05},
        "env.app": {"deploy_timeout": 30.0},
    }
    with refused_port() as port:
        settings = make_settings(tmp_path, {"app": port}, overrides)
        young_process(settings, "app")
        tree = start_tree(settings, actors=("monitor",))
        tree.wait_rounds(6)  # fast rounds while it starts: the interval is 30 s
        refusing = tree.ask("monitor", GetHealth("app"))
        starting_pace = tree.state("monitor")["interval"]
    with HostileServer({"/health": OK}, port=port):
        listening = time.monotonic()
        wait_until(lambda: tree.ask("monitor", GetHealth("app")).status == "healthy")
        shown_after = time.monotonic() - listening
        healthy = tree.ask("monitor", GetHealth("app"))
        paced = tree.state("monitor")["interval"]
    assert (refusing.status, refusing.check_errors, refusing.error_rate) == (
        "unknown",
        0,
        0.0,
    )
    assert refusing.reason.startswith("starting: refused")
    assert shown_after < 1.5
    assert (healthy.check_errors, healthy.error_rate) == (0, 0.0)
    assert (starting_pace, paced) == (0.05, 30.0)  # fast only until it answered


def test_refusals_count_again_once_the_process_is_gone(
    tmp_path: Path, start_tree: Callable[..., Tree], young_process: Callable[[Any, str], int]
) -> None:
    overrides = {"monitor": {"interval": 30.0, "start_interval": 0.05}}
    with refused_port() as port:
        settings = make_settings(tmp_path, {"app": port}, overrides)
        young_process(settings, "app")
        tree = start_tree(settings, actors=("monitor",))
        tree.wait_rounds(2)
        tree.registry.tell("bus", Event("environment.exited", env="app"))
        tree.registry.tell("bus", Event("environment.started", env="app"))  # a fresh window
        tree.wait_rounds(2)
        assert tree.ask("monitor", GetHealth("app")).check_errors == 0
        tree.registry.tell("bus", Event("environment.failed", env="app"))
        (settings.env_dir("app") / "pid").unlink()  # nothing runs any more
        for _ in range(2):  # failure_threshold: 2 refusals that count
            tree.wait_rounds(1)  # the one in flight, which may have started before the events
            tree.registry.tell("monitor", CheckNow())
        tree.wait_rounds(1)
        gone = tree.ask("monitor", GetHealth("app"))
    assert (gone.status, gone.check_errors) == ("down", gone.consecutive_failures)


def test_an_environment_reported_healthy_is_checked_at_once(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    with HostileServer({"/health": OK}) as server:
        settings = make_settings(tmp_path, {"app": server.port}, {"monitor": {"interval": 30.0}})
        tree = start_tree(settings, actors=("monitor",))
        wait_until(lambda: tree.state("monitor")["rounds"] >= 1)  # the first, at start
        rounds = tree.state("monitor")["rounds"]
        tree.registry.tell("bus", Event("environment.healthy", env="app", data=fields_of(pid=1)))
        wait_until(lambda: tree.state("monitor")["rounds"] > rounds, timeout=2.0)
