"""Restart intensity: past the budget a supervisor stops its children and fails upward."""

from __future__ import annotations

import pytest

from supervisors import ChildSpec, Escalation, Intensity, NotRunning, Strategy, Supervisor
from supervisors.messages import RestartChild, WhichChildren
from tests.supervisors.support import (
    FAST,
    Crash,
    Tree,
    Who,
    config,
    wait_until,
)


def nested(tree: Tree, max_restarts: int, *names: str) -> ChildSpec:
    """A nested supervisor spec over probes ``names``, sharing the tree's listener."""
    return Supervisor.child_spec(
        "inner",
        [tree.spec(name) for name in names],
        config=config(intensity=Intensity(max_restarts, 5.0)),
        listener=tree.events,
        shutdown_timeout=5.0,
    )


def test_exceeding_intensity_at_the_root_stops_all_children_and_calls_on_escalate(
    tree: Tree,
) -> None:
    tree.start(
        [tree.spec("a"), tree.spec("b"), tree.spec("c")],
        config(intensity=Intensity(max_restarts=1, max_seconds=30.0)),
    )
    tree.registry.tell("b", Crash("first"))
    tree.journal.wait_for("start", "b", 2)
    mark = tree.journal.mark()
    tree.registry.tell("b", Crash("second"))
    assert tree.escalated.wait(5)
    assert tree.journal.since(mark) == [
        ("crash", "b", 2),
        ("stop", "c", 1),
        ("stop", "a", 1),
    ]
    [escalation] = tree.escalations
    assert isinstance(escalation, Escalation)
    assert (escalation.supervisor, escalation.child) == ("root", "b")
    assert "second" in escalation.reason
    assert "'b'" in str(escalation)
    assert {c.state for c in tree.registry.ask("root", WhichChildren())} == {"stopped"}
    for name in "abc":
        with pytest.raises(NotRunning):
            tree.registry.ask(name, Who())
    [event] = tree.events.all("supervisor.escalate")
    assert event["child"] == "b"
    assert "second" in event["reason"]


def test_restarts_within_budget_do_not_escalate(tree: Tree) -> None:
    tree.start([tree.spec("a")], config(intensity=Intensity(max_restarts=3, max_seconds=30.0)))
    for generation in (1, 2, 3):
        tree.registry.tell("a", Crash())
        tree.journal.wait_for("start", "a", generation + 1)
    assert tree.registry.ask("a", Who()) == ("a", 4)
    assert not tree.escalated.is_set()
    tree.registry.tell("a", Crash())
    assert tree.escalated.wait(5)


def test_restarts_outside_the_window_are_forgotten(tree: Tree) -> None:
    tree.start(
        [tree.spec("a")],
        config(intensity=Intensity(max_restarts=1, max_seconds=0.15)),
        clock=tree.clock,
    )
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 2)
    # Intensity is a sliding window: once the first restart is older than max_seconds it no
    # longer counts, so a second crash is within budget.
    tree.clock.advance(0.2)
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 3)
    assert not tree.escalated.is_set()


def test_nested_supervisor_escalates_to_its_parent_which_restarts_it(tree: Tree) -> None:
    tree.start([tree.spec("a"), nested(tree, 0, "x", "y"), tree.spec("c")])
    assert tree.registry.ask("x", Who()) == ("x", 1)
    mark = tree.journal.mark()
    tree.registry.tell("x", Crash("x broke"))
    tree.journal.wait_for("start", "y", 1, since=mark)
    tree.registry.ask("root", WhichChildren())
    # inner gave up: stopped y (x had crashed) and failed; root restarted inner, whose new
    # children start again from generation 1.
    assert tree.journal.since(mark) == [
        ("crash", "x", 1),
        ("stop", "y", 1),
        ("start", "x", 1),
        ("start", "y", 1),
    ]
    [escalate] = tree.events.all("supervisor.escalate")
    assert (escalate["supervisor"], escalate["child"]) == ("inner", "x")
    [failed] = tree.events.all("supervisor.child_failed", child="inner")
    assert failed["supervisor"] == "root"
    assert "Escalation" in failed["error"]
    assert "x broke" in failed["error"]
    assert tree.node("inner").state == "running"
    assert tree.node("inner").restarts == 1
    assert tree.registry.ask("a", Who()) == ("a", 1)
    assert not tree.escalated.is_set()


def test_escalation_chain_reaches_the_root_callback(tree: Tree) -> None:
    tree.start(
        [tree.spec("a"), nested(tree, 0, "x")],
        config(intensity=Intensity(max_restarts=0, max_seconds=30.0)),
    )
    mark = tree.journal.mark()
    tree.registry.tell("x", Crash("deep"))
    assert tree.escalated.wait(5)
    [escalation] = tree.escalations
    assert (escalation.supervisor, escalation.child) == ("root", "inner")
    assert "deep" in escalation.reason
    assert tree.journal.since(mark) == [("crash", "x", 1), ("stop", "a", 1)]
    assert tree.registry.names() == ["root"]


def test_escalation_started_by_an_ask_fails_the_nested_supervisor_and_answers(
    tree: Tree,
) -> None:
    tree.start([nested(tree, 0, "x")], FAST)
    # RestartChild is asked; the escalation it causes must not hang or eat the reply.
    assert tree.registry.ask("inner", RestartChild("x", "operator"), timeout=2) is None
    tree.events.wait_for("supervisor.child_failed", child="inner")
    wait_until(lambda: tree.node("inner").restarts == 1 and tree.node("inner").state == "running")
    assert tree.registry.ask("x", Who())[0] == "x"


def test_escalation_started_by_an_ask_at_the_root_calls_on_escalate(tree: Tree) -> None:
    tree.start([tree.spec("a")], config(intensity=Intensity(0, 30.0)))
    assert tree.registry.ask("root", RestartChild("a", "operator"), timeout=2) is None
    assert tree.escalated.wait(5)
    assert tree.escalations[0].reason == "operator"


def test_strategy_does_not_change_escalation(tree: Tree) -> None:
    tree.start(
        [tree.spec("a"), tree.spec("b")],
        config(strategy=Strategy.ONE_FOR_ALL, intensity=Intensity(0, 30.0)),
    )
    tree.registry.tell("a", Crash())
    assert tree.escalated.wait(5)
    assert tree.journal.kinds("stop") == [("stop", "b", 1)]
