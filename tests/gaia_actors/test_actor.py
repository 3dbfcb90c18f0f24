"""The base actor: typed dispatch, unknown messages, fault injection, timers."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from gaia_actors.actor import GaiaActor
from gaia_actors.errors import Superseded, UnknownMessage
from gaia_actors.messages import Crash, GetState, Hang, message
from supervisors import ChildSpec, Link, NodeInfo, Registry, Supervisor
from supervisors.backoff import Backoff
from supervisors.spec import SupervisorConfig
from tests.conftest import wait_until


@message
class _Add:
    """Test command."""

    amount: int


@message
class _Total:
    """Test query."""


@message
class _Tick:
    """Test timer message."""


ADDED: list[tuple[int, int]] = []  # (generation, amount) of every _Add acted on


class Counter(GaiaActor):
    def __init__(self, link: Link) -> None:
        super().__init__(link)
        self.total = 0
        self.ticks = threading.Event()

    def receive(self, message: Any) -> Any:
        match message:
            case _Add(amount=amount):
                self.total += amount
                ADDED.append((self.link.generation, amount))
            case _Total():
                return self.total
            case _Tick():
                self.ticks.set()
                return None
            case _:
                return self.unhandled(message)
        return None


# A ping unanswered this long is a hang. The tests that hang an actor use the short one; the
# others the long one, so that a loaded machine never replaces the actor they look at.
QUICK_PING = 0.5
PATIENT_PING = 5.0


def start_counter(actor: type[Counter], ping_timeout: float = PATIENT_PING) -> tuple[Registry, Any]:
    """A root supervisor with one ``actor`` named "counter" (quick pings, quick restarts)."""
    registry = Registry()
    config = SupervisorConfig(
        backoff=Backoff(initial=0.01, maximum=0.05), ping_interval=0.05, ping_timeout=ping_timeout
    )
    root = Supervisor.start_root(
        "root", [ChildSpec("counter", actor.start)], registry, config=config
    )
    return registry, root


@pytest.fixture
def registry() -> Any:
    registry, root = start_counter(Counter)
    yield registry
    root.stop(block=True, timeout=5)


@pytest.fixture
def hangable() -> Any:
    """A counter whose hangs of a few times ``QUICK_PING`` are caught while they last."""
    registry, root = start_counter(Counter, QUICK_PING)
    yield registry
    root.stop(block=True, timeout=5)


def test_typed_dispatch_by_name(registry: Registry) -> None:
    registry.tell("counter", _Add(2))
    registry.tell("counter", _Add(3))
    assert registry.ask("counter", _Total()) == 5


def test_unknown_message_is_an_error_reply_and_the_actor_lives(registry: Registry) -> None:
    with pytest.raises(UnknownMessage) as info:
        registry.ask("counter", "hello")
    assert "counter" in str(info.value)
    assert "'str'" in str(info.value)
    registry.tell("counter", 42)  # a told unknown message is logged, not fatal
    registry.tell("counter", _Add(1))
    assert registry.ask("counter", _Total()) == 1
    assert registry.node("counter").restarts == 0  # type: ignore[union-attr]


def running_generation(registry: Registry, generation: int) -> NodeInfo | None:
    """The counter's node once its supervisor reports ``generation`` running."""
    node = registry.node("counter")
    if node is None or (node.generation, node.state) != (generation, "running"):
        return None
    return node


def test_crash_restarts_the_actor_under_the_same_name(registry: Registry) -> None:
    registry.tell("counter", _Add(5))
    first = registry.lookup("counter")
    registry.tell("counter", Crash("test"))
    # The tree view shows the new generation once its supervisor has seen it start, a moment
    # after its name resolves to it.
    node = wait_until(lambda: running_generation(registry, 2))
    assert registry.lookup("counter") is not first
    assert registry.ask("counter", _Total()) == 0  # a fresh actor: state starts over
    assert node.restarts == 1
    assert "test" in node.last_error


def test_hang_is_caught_by_the_liveness_ping(hangable: Registry) -> None:
    registry = hangable
    first = registry.lookup("counter")
    registry.tell("counter", Hang(3.0))
    wait_until(
        lambda: registry.is_running("counter") and registry.lookup("counter") is not first,
        timeout=3,
    )
    assert registry.ask("counter", _Total(), timeout=1) == 0


def test_a_replaced_generation_that_wakes_does_not_act_on_what_it_had_queued(
    hangable: Registry,
) -> None:
    """Two generations must never work on the same thing: the hung one, once awake, answers
    its queued asks with Superseded and leaves its queued tells alone."""
    registry = hangable
    ADDED.clear()
    first = registry.lookup("counter")
    registry.tell("counter", Hang(4 * QUICK_PING))
    registry.tell("counter", _Add(5))  # queued behind the hang, in the first generation
    asked = first.ask(_Total(), block=False)
    wait_until(lambda: registry.is_running("counter") and registry.lookup("counter") is not first)
    assert isinstance(asked.get(timeout=5), Superseded)  # answered once it woke
    assert "generation 1 was replaced" in str(asked.get())
    wait_until(lambda: not first.is_alive())
    assert ADDED == []  # the told _Add was not acted on by either generation
    registry.tell("counter", _Add(2))
    assert registry.ask("counter", _Total()) == 2
    assert ADDED == [(2, 2)]


class Farewell(Counter):
    """Says goodbye in its own name on the way out, as a bus subscriber unsubscribes."""

    def on_stop(self) -> None:
        self.tell(self.name, _Add(100))


def test_a_replaced_generation_tells_nothing_in_its_successors_name() -> None:
    registry, root = start_counter(Farewell, QUICK_PING)
    try:
        ADDED.clear()
        first = registry.lookup("counter")
        registry.tell("counter", Hang(4 * QUICK_PING))
        wait_until(
            lambda: registry.is_running("counter") and registry.lookup("counter") is not first
        )
        wait_until(lambda: not first.is_alive(), timeout=5)  # woke, stopped: said goodbye
        registry.tell("counter", _Add(2))
        assert registry.ask("counter", _Total()) == 2
        assert ADDED == [(2, 2)]
    finally:
        root.stop(block=True, timeout=5)


def test_get_state_reports_name_and_generation(registry: Registry) -> None:
    state = registry.ask("counter", GetState())
    assert state["actor"] == "counter"
    assert state["generation"] >= 1


def test_timers_send_messages_to_self() -> None:
    registry = Registry()
    root = Supervisor.start_root("root", [ChildSpec("counter", Counter.start)], registry)
    try:
        actor = registry.lookup("counter").proxy()
        ticks: threading.Event = actor.ticks.get()
        actor.after(0.01, _Tick()).get()
        assert ticks.wait(2)
    finally:
        root.stop(block=True, timeout=5)
