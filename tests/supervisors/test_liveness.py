"""A hung child is caught by the liveness ping, replaced, and its late reports ignored."""

from __future__ import annotations

from supervisors import Restart, RestartChild, WhichChildren
from tests.supervisors.support import (
    Block,
    Probe,
    Tree,
    Who,
    config,
    inbox_size,
    let_time_pass,
    wait_until,
)

PINGS = config(ping_interval=0.02, ping_timeout=0.25)


def test_a_hung_child_is_replaced_and_its_late_stop_is_ignored(tree: Tree) -> None:
    tree.start([tree.spec("h"), tree.spec("s")], PINGS)
    gate = tree.gate()
    block = Block(gate)
    tree.registry.tell("h", block)
    assert block.entered.wait(5)
    tree.events.wait_for("supervisor.child_hung", child="h")
    wait_until(lambda: tree.registry.is_running("h") and tree.node("h").generation == 2)
    assert tree.registry.ask("h", Who()) == ("h", 2)  # the replacement answers the name
    assert tree.registry.ask("s", Who()) == ("s", 1)  # its sibling never moved
    [hung] = tree.events.all("supervisor.child_hung")
    assert "liveness ping within 0.25s" in hung["error"]

    # Release the abandoned generation: it finishes its message, handles the stop it was
    # sent, and reports a normal exit of generation 1, which must change nothing.
    gate.set()
    tree.script.threads[("h", 1)].join(5)
    assert ("stop", "h", 1) in tree.journal.items()
    children = {c.name: c for c in tree.registry.ask("root", WhichChildren())}
    assert (children["h"].state, children["h"].generation, children["h"].restarts) == (
        "running",
        2,
        1,
    )
    assert ("start", "h", 3) not in tree.journal.items()
    assert tree.registry.ask("h", Who()) == ("h", 2)


def test_healthy_children_are_not_taken_for_hung(tree: Tree) -> None:
    tree.start([tree.spec("a"), tree.spec("b")], PINGS)
    let_time_pass(0.6)  # many ping rounds, each answered
    assert tree.events.all("supervisor.child_hung") == []
    assert tree.registry.ask("a", Who()) == ("a", 1)


def test_children_without_ping_are_not_probed(tree: Tree) -> None:
    tree.start([tree.spec("quiet", ping=False)], PINGS)
    block = Block(tree.gate())
    tree.registry.tell("quiet", block)
    assert block.entered.wait(5)
    let_time_pass(0.5)  # twice the ping timeout
    assert tree.events.all("supervisor.child_hung") == []
    assert tree.node("quiet").generation == 1


def test_a_busy_supervisor_does_not_mistake_its_backlog_for_a_hung_child(tree: Tree) -> None:
    # s is slow to answer one ping (but within the timeout); meanwhile the supervisor is
    # busy stopping another child for longer than the timeout, so ticks pile up ahead of s's
    # answer. Judged at handling time they would all look overdue.
    tree.start([tree.spec("s"), tree.spec("slow", Restart.TRANSIENT)], PINGS)
    gate = tree.gate()
    block = Block(gate)
    tree.registry.tell("s", block)
    assert block.entered.wait(5)
    s_ref = tree.registry.lookup("s")
    wait_until(lambda: inbox_size(s_ref) >= 1)  # the supervisor's ping waits behind the block

    def slow_stop(_: Probe) -> None:
        tree.script.on_stop.pop("slow")  # once
        let_time_pass(0.04)  # ticks queue up in the supervisor's mailbox
        gate.set()  # s answers its ping now, well within the timeout
        let_time_pass(0.45)  # the supervisor stays busy past the ping timeout

    tree.script.on_stop["slow"] = slow_stop
    tree.registry.tell("root", RestartChild("slow"))
    tree.journal.wait_for("start", "slow", 2)
    tree.registry.ask("root", WhichChildren())
    assert tree.events.all("supervisor.child_hung") == []
    assert tree.registry.ask("s", Who()) == ("s", 1)
