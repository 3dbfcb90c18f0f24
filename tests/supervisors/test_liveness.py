"""A hung child is caught by the liveness ping, replaced, and its late reports ignored.

The trees run on the manual clock: a ping round happens when the test advances it by the
ping interval, and a ping is overdue once the test has advanced past the ping timeout. The
hung children are real threads blocked in a handler."""

from __future__ import annotations

from supervisors import Restart, RestartChild, WhichChildren
from tests.supervisors.support import (
    Block,
    Probe,
    Tree,
    Who,
    config,
    inbox_size,
    wait_until,
)

PINGS = config(ping_interval=0.02, ping_timeout=0.25)


def ping_round(tree: Tree, *answering: str) -> None:
    """Advance one ping interval and wait until the round is over: the supervisor has sent
    its pings and each ``answering`` child's Pong is in its mailbox (queued ahead of the next
    round's tick, since a child answers a ping before a later ask)."""
    tree.clock.advance(PINGS.ping_interval)
    tree.registry.ask("root", WhichChildren())  # handled after the tick: the pings are out
    for name in answering:
        tree.registry.ask(name, Who())


def test_a_hung_child_is_replaced_and_its_late_stop_is_ignored(tree: Tree) -> None:
    tree.start([tree.spec("h"), tree.spec("s")], PINGS, clock=tree.clock)
    gate = tree.gate()
    block = Block(gate)
    tree.registry.tell("h", block)
    assert block.entered.wait(5)
    for _ in range(12):  # s answers every round; h's first ping waits behind the block
        ping_round(tree, "s")
    assert tree.events.all("supervisor.child_hung") == []  # 0.22 s overdue: within 0.25 s
    for _ in range(3):  # past the ping timeout
        ping_round(tree, "s")
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
    tree.start([tree.spec("a"), tree.spec("b")], PINGS, clock=tree.clock)
    for _ in range(30):  # many ping rounds, each answered, 0.6 s in all
        ping_round(tree, "a", "b")
    assert tree.clock.now() >= 0.6
    tree.registry.ask("root", WhichChildren())
    assert tree.events.all("supervisor.child_hung") == []
    assert tree.registry.ask("a", Who()) == ("a", 1)


def test_children_without_ping_are_not_probed(tree: Tree) -> None:
    tree.start([tree.spec("quiet", ping=False)], PINGS, clock=tree.clock)
    block = Block(tree.gate())
    tree.registry.tell("quiet", block)
    assert block.entered.wait(5)
    assert tree.clock.pending() == []  # no ticker: nobody to ping
    tree.clock.advance(0.5)  # twice the ping timeout
    tree.registry.ask("root", WhichChildren())
    assert tree.events.all("supervisor.child_hung") == []
    assert tree.node("quiet").generation == 1


def test_a_busy_supervisor_does_not_mistake_its_backlog_for_a_hung_child(tree: Tree) -> None:
    # s is slow to answer one ping (but within the timeout); meanwhile the supervisor is
    # busy stopping another child for longer than the timeout, so ticks pile up ahead of s's
    # answer. Judged at handling time they would all look overdue.
    tree.start([tree.spec("s"), tree.spec("slow", Restart.TRANSIENT)], PINGS, clock=tree.clock)
    gate = tree.gate()
    block = Block(gate)
    tree.registry.tell("s", block)
    assert block.entered.wait(5)
    ping_round(tree, "slow")
    s_ref, root_ref = tree.registry.lookup("s"), tree.registry.lookup("root")
    wait_until(lambda: inbox_size(s_ref) >= 1)  # the supervisor's ping waits behind the block

    def slow_stop(_: Probe) -> None:
        tree.script.on_stop.pop("slow")  # once
        tree.clock.advance(0.04)  # ticks queue up in the supervisor's mailbox
        queued = inbox_size(root_ref)
        gate.set()  # s answers its ping now, well within the timeout
        wait_until(lambda: inbox_size(root_ref) > queued)  # its Pong, behind those ticks
        tree.clock.advance(0.45)  # the supervisor stays busy past the ping timeout

    tree.script.on_stop["slow"] = slow_stop
    tree.registry.tell("root", RestartChild("slow"))
    tree.journal.wait_for("start", "slow", 2)
    tree.registry.ask("root", WhichChildren())
    assert tree.events.all("supervisor.child_hung") == []
    assert tree.registry.ask("s", Who()) == ("s", 1)
