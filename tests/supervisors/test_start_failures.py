"""Failures while starting: on_start raising, a factory raising, on_start too slow."""

from __future__ import annotations

import pykka

from supervisors import WhichChildren
from tests.supervisors.support import Tree, Who


def test_an_on_start_failure_is_seen_and_restarted(tree: Tree) -> None:
    tree.script.start_failures["a"] = 1
    tree.start([tree.spec("a"), tree.spec("b")])
    tree.journal.wait_for("start", "a", 2)
    tree.registry.ask("root", WhichChildren())
    [failed] = tree.events.all("supervisor.child_failed", child="a")
    assert failed["phase"] == "start"
    assert "a cannot start" in failed["error"]
    assert tree.registry.ask("a", Who()) == ("a", 2)
    assert (tree.node("a").state, tree.node("a").restarts) == ("running", 1)
    # Pykka never calls on_failure for an on_start failure; the report came from Supervised.
    assert ("crash", "a", 1) not in tree.journal.items()


def test_a_system_exit_in_on_start_is_a_failed_start(tree: Tree) -> None:
    tree.script.start_aborts["a"] = 1
    tree.start([tree.spec("a"), tree.spec("b")])
    tree.journal.wait_for("start", "a", 2)
    tree.registry.ask("root", WhichChildren())
    [failed] = tree.events.all("supervisor.child_failed", child="a")
    assert failed["phase"] == "start"
    assert "SystemExit" in failed["error"]
    assert tree.registry.ask("a", Who()) == ("a", 2)
    assert tree.registry.ask("b", Who()) == ("b", 1)
    first = tree.script.threads[("a", 1)]
    first.join(5)
    assert not first.is_alive()  # the thread ended; it did not linger "alive" and unanswering


def test_a_factory_that_raises_is_a_failed_start(tree: Tree) -> None:
    tree.script.factory_failures["a"] = 2
    tree.start([tree.spec("a"), tree.spec("b")])
    tree.journal.wait_for("start", "a", 3)
    tree.registry.ask("root", WhichChildren())
    failures = tree.events.all("supervisor.child_failed", child="a")
    assert [f["phase"] for f in failures] == ["start", "start"]
    assert all("factory for a failed" in f["error"] for f in failures)
    assert [i for i in tree.journal.items() if i[1] == "a"] == [("start", "a", 3)]
    assert tree.registry.ask("a", Who()) == ("a", 3)


def test_an_on_start_slower_than_start_timeout_is_a_failed_start(tree: Tree) -> None:
    gate = tree.gate()
    tree.script.start_gates["a"] = gate  # the first start hangs in on_start
    tree.start([tree.spec("a", start_timeout=0.3, shutdown_timeout=0.1), tree.spec("b")])
    tree.journal.wait_for("start", "a", 2)
    children = {c.name: c for c in tree.registry.ask("root", WhichChildren())}
    assert children["a"].state == "running"
    [failed] = tree.events.all("supervisor.child_failed", child="a")
    assert "on_start did not finish within 0.3s" in failed["error"]
    # It could not be stopped either (still in on_start): abandoned after its shutdown timeout.
    assert tree.events.all("supervisor.shutdown_timeout", child="a", generation=1)
    assert tree.registry.ask("a", Who()) == ("a", 2)
    # Released later, the old generation runs its queued stop; nothing else changes.
    gate.set()
    tree.script.threads[("a", 1)].join(5)
    assert tree.registry.ask("a", Who()) == ("a", 2)
    assert tree.registry.ask("root", WhichChildren())[0].generation == 2
    assert len([a for a in pykka.ActorRegistry.get_all() if a.actor_class.__name__ == "Probe"]) == 2
