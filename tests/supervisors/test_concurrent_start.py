"""``concurrent_start``: independent children start all at once, each waited for."""

from __future__ import annotations

import threading

from supervisors import WhichChildren
from tests.supervisors.support import Tree, Who, config

CONCURRENT = config(concurrent_start=True)


def test_every_child_starts_while_an_earlier_one_is_still_starting(tree: Tree) -> None:
    gate = tree.gate()
    tree.script.start_gates["a"] = gate  # a's on_start waits for the gate
    specs = [tree.spec("a"), tree.spec("b"), tree.spec("c")]
    starting = threading.Thread(target=tree.start, args=(specs, CONCURRENT))
    starting.start()
    # One after the other (OTP's order), b and c would wait for a's on_start to return.
    tree.journal.wait_for("start", "b", 1)
    tree.journal.wait_for("start", "c", 1)
    assert not gate.is_set()
    gate.set()
    starting.join(10)
    assert not starting.is_alive()
    assert [c.state for c in tree.registry.ask("root", WhichChildren())] == ["running"] * 3
    # Reported in the order of the specs, as a one-by-one start reports them.
    started = tree.events.all("supervisor.child_started")
    assert [e["child"] for e in started] == ["a", "b", "c"]


def test_a_failed_start_among_them_is_restarted_and_the_others_keep_running(
    tree: Tree,
) -> None:
    tree.script.start_failures["b"] = 1
    tree.script.factory_failures["c"] = 1
    tree.start([tree.spec("a"), tree.spec("b"), tree.spec("c")], CONCURRENT)
    tree.journal.wait_for("start", "b", 2)
    tree.journal.wait_for("start", "c", 2)
    tree.registry.ask("root", WhichChildren())  # the failures' reports are handled
    failed = tree.events.all("supervisor.child_failed")
    assert sorted((f["child"], f["phase"]) for f in failed) == [("b", "start"), ("c", "start")]
    assert tree.registry.ask("a", Who()) == ("a", 1)
    assert tree.registry.ask("b", Who()) == ("b", 2)
    assert tree.registry.ask("c", Who()) == ("c", 2)


def test_a_start_failed_while_the_tree_stops_is_not_restarted_and_nothing_more_starts(
    tree: Tree,
) -> None:
    # a's start is cut short by the stop (as a cancelled build is): b and c, after it one
    # by one, never start, and a is neither restarted nor reported as failed.
    gate = tree.gate()
    tree.script.start_gates["a"] = gate
    tree.script.start_failures["a"] = 1
    starting = threading.Thread(target=tree.start, args=([tree.spec(n) for n in "abc"],))
    starting.start()
    tree.journal.wait_for("start", "a", 1)
    tree.registry.stopping.set()
    gate.set()
    starting.join(10)
    assert not starting.is_alive()
    children = tree.registry.ask("root", WhichChildren())  # a's report is handled
    assert [(c.name, c.state) for c in children] == [(n, "stopped") for n in "abc"]
    assert [item[1] for item in tree.journal.kinds("start")] == ["a"]
    assert tree.events.all("supervisor.child_failed") == []
    assert [e["child"] for e in tree.events.all("supervisor.child_exited")] == ["a"]
