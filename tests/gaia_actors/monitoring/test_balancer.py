"""LoadBalancer through real actors: health from the monitor, routing by health and load."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gaia_actors.errors import InvalidMessage
from gaia_actors.messages import Crash, Event, Route, RouteDone, fields_of
from gaia_actors.monitoring.balancer import NoEnvironmentAvailable, RouteAnswer
from tests.conftest import wait_until
from tests.gaia_actors.monitoring.conftest import Tree, make_settings
from tests.gaia_actors.monitoring.hostile import HostileServer, Respond, Switch

OK = Respond()
ERROR = Respond(500, b'{"status": "error"}')
SLOW = Respond(delay=0.2)  # degraded: slower than latency_degraded, within the timeout


class Pool:
    """Environments a, b, c behind switchable /health endpoints, and the tree routing them."""

    def __init__(self, tree: Tree, health: dict[str, Switch]) -> None:
        self.tree = tree
        self.health = health

    def statuses(self) -> dict[str, str]:
        backends = self.tree.state("balancer")["backends"]
        return {env: b["status"] for env, b in backends.items()}

    def settle(self, **expected: str) -> None:
        """Set each named environment's /health and wait until the balancer sees it."""
        behaviours = {"healthy": OK, "down": ERROR, "degraded": SLOW}
        for env, status in expected.items():
            self.health[env].set(behaviours[status])
        wanted = {**self.statuses(), **expected}
        wait_until(lambda: self.statuses() == wanted, 10.0)

    def route(self, *pool: str) -> RouteAnswer:
        answer: RouteAnswer = self.tree.ask("balancer", Route(pool))
        return answer

    def publish(self, name: str, env: str) -> None:
        self.tree.registry.tell("bus", Event(name, env=env, data=fields_of(pid=1)))


@pytest.fixture
def pool(tmp_path: Path, start_tree: Callable[..., Tree]) -> Iterator[Pool]:
    health = {env: Switch(OK) for env in ("a", "b", "c")}
    with contextlib.ExitStack() as stack:
        ports = {
            env: stack.enter_context(HostileServer({"/health": switch})).port
            for env, switch in health.items()
        }
        tree = start_tree(make_settings(tmp_path, ports), actors=("monitor", "balancer"))
        result = Pool(tree, health)
        result.settle(a="healthy", b="healthy", c="healthy")
        yield result
        tree.stop()  # before the servers go


def test_a_down_environment_is_never_picked_and_equals_share_evenly(pool: Pool) -> None:
    pool.settle(c="down")
    routed = Counter(pool.route().env for _ in range(300))
    assert routed == {"a": 150, "b": 150}


def test_the_lowest_load_wins(pool: Pool) -> None:
    first, second = pool.route("a", "b").env, pool.route("a", "b").env
    assert {first, second} == {"a", "b"}
    pool.tree.registry.tell("balancer", RouteDone(second))  # second's request finished
    assert pool.route("a", "b").env == second


def test_degraded_only_when_nothing_healthy_is_left_and_the_answer_says_so(pool: Pool) -> None:
    pool.settle(b="degraded", c="down")
    assert {pool.route().env for _ in range(20)} == {"a"}
    pool.settle(a="down")
    answer = pool.route()
    assert (answer.env, answer.status, answer.fallback) == ("b", "degraded", True)
    assert answer.reason.startswith("no healthy environment left (a down, c down)")
    assert answer.rule == "no healthy one left, degraded, least loaded"


def test_none_available_is_a_clear_rejection(pool: Pool) -> None:
    pool.settle(a="down", b="down", c="down")
    with pytest.raises(NoEnvironmentAvailable, match=r"pool \[a, b, c\].*a down, b down, c down"):
        pool.route()
    assert pool.tree.registry.node("balancer").generation == 1  # type: ignore[union-attr]


def test_a_process_exit_takes_an_environment_out_until_it_starts_again(pool: Pool) -> None:
    pool.publish("environment.exited", "a")
    wait_until(lambda: pool.statuses()["a"] == "stopped")
    assert {pool.route().env for _ in range(10)} == {"b", "c"}
    pool.publish("environment.started", "a")
    wait_until(lambda: pool.statuses()["a"] == "healthy")
    assert "a" in {pool.route().env for _ in range(3)}


def test_an_unknown_pool_member_is_refused_by_name(pool: Pool) -> None:
    with pytest.raises(InvalidMessage, match="'zz'"):
        pool.route("a", "zz")


def test_a_restarted_balancer_learns_health_from_the_monitor(pool: Pool) -> None:
    pool.settle(c="down")
    pool.tree.registry.tell("balancer", Crash("test"))
    wait_until(lambda: pool.tree.registry.node("balancer").generation == 2)  # type: ignore[union-attr]
    # No transition happens now: only the GetHealth asked at start can tell it about c.
    wait_until(lambda: pool.statuses() == {"a": "healthy", "b": "healthy", "c": "down"})
    assert {pool.route().env for _ in range(10)} == {"a", "b"}
