"""A hung child is caught by the liveness ping, replaced, and its late reports ignored; a
busy one, however deep its backlog, is not.

Most trees run on the manual clock: a ping round happens when the test advances it by the
ping interval, and a ping is overdue once the test has advanced past the ping timeout. The
flood tests run on real time, as a daemon does. The hung children are real threads blocked
in a handler."""

from __future__ import annotations

import itertools
import time

from supervisors import Restart, RestartChild, WhichChildren
from tests.supervisors.support import (
    Block,
    Probe,
    Tree,
    Who,
    Work,
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


def test_a_child_finishing_messages_is_not_hung_however_late_its_answer(tree: Tree) -> None:
    # A ping waits behind ten messages, each taking 0.2 s (under the 0.25 s timeout): the
    # answer comes 2 s late, yet the child moved on every 0.2 s. Then it stops moving.
    tree.start([tree.spec("busy")], PINGS, clock=tree.clock)
    blocks = [Block(tree.gate()) for _ in range(10)]
    for block in blocks:
        tree.registry.tell("busy", block)
    assert blocks[0].entered.wait(5)
    ping_round(tree)  # the ping goes out, behind all ten
    moved_at = 0.0
    for block, following in itertools.pairwise(blocks):
        for _ in range(10):  # 0.2 s with no message finished
            ping_round(tree)
        block.gate.set()
        assert following.entered.wait(5)
        ping_round(tree)  # the supervisor sees the count move
        moved_at = tree.clock.now()
    assert tree.events.all("supervisor.child_hung") == []
    assert tree.clock.now() > 8 * PINGS.ping_timeout
    while not tree.events.all("supervisor.child_hung"):  # the last message never ends
        assert tree.clock.now() < moved_at + 1.0, "a stuck child was never declared hung"
        ping_round(tree)
    [hung] = tree.events.all("supervisor.child_hung", child="busy")
    waited = hung["at"] - moved_at
    assert PINGS.ping_timeout < waited <= PINGS.ping_timeout + 2 * PINGS.ping_interval + 1e-9
    wait_until(lambda: tree.registry.is_running("busy") and tree.node("busy").generation == 2)


FLOOD = config(ping_interval=0.02, ping_timeout=0.3)


def test_a_flooded_child_is_never_replaced_and_handles_every_message(tree: Tree) -> None:
    tree.start([tree.spec("flooded"), tree.spec("idle")], FLOOD)
    count = 300
    began = time.monotonic()
    for key in range(count):  # about 1.5 s of work, queued at once: pings wait behind it
        tree.registry.tell("flooded", Work(key, 0.005))
    tree.journal.wait_for("work", "flooded", count - 1, timeout=30)
    drained = time.monotonic() - began
    assert drained > 4 * FLOOD.ping_timeout  # the pings did wait far past the timeout
    assert tree.registry.ask("flooded", Who()) == ("flooded", 1)
    assert tree.registry.ask("idle", Who()) == ("idle", 1)  # idle all along: fine too
    assert tree.events.all("supervisor.child_hung") == []
    assert [item[2] for item in tree.journal.kinds("work")] == list(range(count))


def test_a_child_stuck_behind_its_backlog_is_replaced_within_the_timeout(tree: Tree) -> None:
    tree.start([tree.spec("worker")], FLOOD)
    block = Block(tree.gate())
    for key in range(60):
        tree.registry.tell("worker", Work(key, 0.005))
    tree.registry.tell("worker", block)  # it gets stuck after about 0.3 s of work
    tree.registry.tell("worker", Work(60, 0.005))
    tree.events.wait_for("supervisor.child_hung", child="worker")
    [hung] = tree.events.all("supervisor.child_hung")
    [stuck_at] = block.entered_at
    detected = hung["at"] - stuck_at
    slack = 0.3  # scheduling on a loaded machine
    bound = FLOOD.ping_timeout + 2 * FLOOD.ping_interval
    assert FLOOD.ping_timeout - FLOOD.ping_interval <= detected <= bound + slack
    assert len(tree.journal.kinds("work")) == 60  # all it finished before it got stuck
    wait_until(lambda: tree.registry.is_running("worker") and tree.node("worker").generation == 2)
    assert tree.registry.ask("worker", Who()) == ("worker", 2)
