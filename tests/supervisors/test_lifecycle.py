"""The supervisor's own life: listener errors, its threads and timers, its crash, requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pykka
import pytest

from supervisors import (
    Backoff,
    ChildSpec,
    Escalation,
    Intensity,
    Registry,
    ResetChild,
    RestartChild,
    SupervisionError,
    Supervisor,
    WhichChildren,
)
from tests.supervisors.support import (
    Crash,
    Journal,
    Probe,
    Script,
    Tree,
    Who,
    config,
    wait_until,
)


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_a_listener_that_raises_does_not_break_supervision(tree: Tree) -> None:
    calls: list[str] = []

    def broken(event: str, data: Mapping[str, Any]) -> None:
        calls.append(event)
        raise RuntimeError("listener down")

    tree.start([tree.spec("a")], listener=broken)
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 2)
    assert tree.registry.ask("a", Who()) == ("a", 2)
    assert "supervisor.restart" in calls
    assert tree.node("a").restarts == 1  # the tree view is kept before the listener runs


def test_the_ticker_thread_ends_with_its_supervisor(tree: Tree) -> None:
    root = tree.start([tree.spec("a")], config(ping_interval=0.01))
    [ticker] = threads_named("root-ticker")
    assert ticker.is_alive()
    root.stop(block=True, timeout=5)
    ticker.join(1)
    assert not ticker.is_alive()


def test_the_ticker_thread_ends_when_the_supervisor_escalates(tree: Tree) -> None:
    tree.start([tree.spec("a")], config(ping_interval=0.01, intensity=Intensity(0, 30.0)))
    [ticker] = threads_named("root-ticker")
    tree.registry.tell("a", Crash())
    assert tree.escalated.wait(5)
    ticker.join(1)
    assert not ticker.is_alive()


def test_no_ticker_without_a_pinged_child(tree: Tree) -> None:
    tree.start([tree.spec("a", ping=False)])
    assert threads_named("root-ticker") == []


def test_a_pending_restart_timer_is_cancelled_when_the_supervisor_stops(tree: Tree) -> None:
    backoff = Backoff(initial=5.0, maximum=5.0, jitter=0.0, stable_after=60.0)
    root = tree.start([tree.spec("a"), tree.spec("b")], config(backoff=backoff))
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 2)  # the first restart is immediate
    tree.registry.tell("a", Crash())
    tree.events.wait_for("supervisor.restart", child="a", delay=5.0)
    [timer] = threads_named("root-restart-a")
    root.stop(block=True, timeout=5)
    timer.join(1)
    assert not timer.is_alive()
    assert ("start", "a", 3) not in tree.journal.items()


def test_a_pending_restart_timer_is_cancelled_by_a_reset(tree: Tree) -> None:
    backoff = Backoff(initial=5.0, maximum=5.0, jitter=0.0, stable_after=60.0)
    tree.start([tree.spec("a")], config(backoff=backoff))
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 2)
    tree.registry.tell("a", Crash())
    tree.events.wait_for("supervisor.restart", child="a", delay=5.0)
    [timer] = threads_named("root-restart-a")
    info = tree.registry.ask("root", ResetChild("a"))
    assert (info.state, info.generation) == ("running", 3)
    timer.join(1)
    assert not timer.is_alive()


def test_a_crashing_nested_supervisor_takes_its_children_down_first(tree: Tree) -> None:
    # A listener raising SystemExit crashes the supervisor that calls it (a stand-in for any
    # bug in it). Its children must stop with it, or its restart would run them twice.
    def fatal(event: str, data: Mapping[str, Any]) -> None:
        if event == "supervisor.child_failed":
            raise SystemExit("listener bug")

    inner = Supervisor.child_spec("inner", [tree.spec("x"), tree.spec("y")], listener=fatal)
    tree.start([inner])
    mark = tree.journal.mark()
    tree.registry.tell("x", Crash())
    tree.journal.wait_for("start", "y", 1, since=mark)
    assert tree.journal.since(mark) == [
        ("crash", "x", 1),
        ("stop", "y", 1),
        ("start", "x", 1),
        ("start", "y", 1),
    ]
    [failed] = tree.events.all("supervisor.child_failed", child="inner")
    assert "listener bug" in failed["error"]
    assert tree.registry.ask("y", Who()) == ("y", 1)


def test_a_crashing_root_stops_its_children_and_calls_on_escalate(tree: Tree) -> None:
    def fatal(event: str, data: Mapping[str, Any]) -> None:
        if event == "supervisor.child_failed":
            raise SystemExit("listener bug")

    tree.start([tree.spec("a"), tree.spec("b")], listener=fatal)
    tree.registry.tell("a", Crash())
    assert tree.escalated.wait(5)
    [escalation] = tree.escalations
    assert (escalation.supervisor, escalation.child) == ("root", "root")
    assert "listener bug" in escalation.reason
    assert str(escalation).startswith("supervisor 'root' gave up: the supervisor itself crashed")
    assert ("stop", "b", 1) in tree.journal.items()
    assert tree.registry.names() == []


def test_on_escalate_may_stop_the_root_it_was_called_by() -> None:
    # The daemon's reaction to an escalation is to stop the tree; doing so from inside the
    # callback must not deadlock on the supervisor that is calling it.
    registry = Registry()
    stopped = threading.Event()
    refs: list[pykka.ActorRef[Supervisor]] = []

    def stop_root(_: Escalation) -> None:
        refs[0].stop(block=True, timeout=2)
        stopped.set()

    journal, script = Journal(), Script()
    spec = ChildSpec("a", lambda link: Probe.start(link, journal, script))
    refs.append(
        Supervisor.start_root(
            "solo",
            [spec],
            registry,
            config=config(intensity=Intensity(0, 30.0)),
            on_escalate=stop_root,
        )
    )
    registry.tell("a", Crash())
    assert stopped.wait(5)
    assert not refs[0].is_alive()


def test_an_escalated_root_starts_nothing_again(tree: Tree) -> None:
    tree.start([tree.spec("a")], config(intensity=Intensity(0, 30.0)))
    tree.registry.tell("a", Crash())
    assert tree.escalated.wait(5)
    with pytest.raises(SupervisionError, match="has escalated"):
        tree.registry.ask("root", ResetChild("a"))
    assert [c.state for c in tree.registry.ask("root", WhichChildren())] == ["stopped"]
    assert ("start", "a", 2) not in tree.journal.items()


def test_requests_for_an_unknown_child_are_errors(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    with pytest.raises(KeyError, match="no child 'zed'"):
        tree.registry.ask("root", ResetChild("zed"))
    with pytest.raises(KeyError, match="no child 'zed'"):
        tree.registry.ask("root", RestartChild("zed"))
    with pytest.raises(ValueError, match="unknown message"):
        tree.registry.ask("root", "hello")
    assert tree.registry.ask("a", Who()) == ("a", 1)


def test_a_child_blocking_on_its_supervisor_while_stopped_costs_one_shutdown_timeout(
    tree: Tree,
) -> None:
    # Both wait on each other: the supervisor for the child's stop, the child for an answer.
    # The shutdown timeout bounds it; the child is abandoned and the restart goes on.
    answers: list[object] = []

    def ask_supervisor(probe: Probe) -> None:
        tree.script.on_stop.pop("a")
        answers.append(probe.registry.ask("root", WhichChildren(), timeout=2))

    tree.script.on_stop["a"] = ask_supervisor
    tree.start([tree.spec("a", shutdown_timeout=0.2)])
    began = time.monotonic()
    assert tree.registry.ask("root", RestartChild("a"), timeout=5) is None
    assert 0.2 <= time.monotonic() - began < 1.5
    assert tree.events.all("supervisor.shutdown_timeout", child="a")
    assert tree.registry.ask("a", Who()) == ("a", 2)
    wait_until(lambda: answers)  # the abandoned one got its answer after all
