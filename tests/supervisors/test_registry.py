"""Sending by name: restarted actors, down names, timeouts, replies that are errors."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pykka
import pytest

from supervisors import (
    AskExpired,
    AskTimeout,
    Link,
    NodeInfo,
    NotRunning,
    Registry,
    Restart,
    Supervisor,
)
from supervisors.messages import WhichChildren
from tests.supervisors.support import (
    Block,
    Crash,
    Defer,
    GiveBack,
    Journal,
    Probe,
    RaiseIt,
    Script,
    Tree,
    Who,
    Write,
    inbox_size,
    wait_until,
)


def test_tell_and_ask_by_name_reach_the_restarted_actor(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    first = tree.registry.lookup("a")
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 2)
    assert tree.registry.lookup("a") is not first
    assert tree.registry.ask("a", Who()) == ("a", 2)
    tree.registry.tell("a", Crash())  # a tell by name also reaches generation 2
    tree.journal.wait_for("crash", "a", 2)
    tree.journal.wait_for("start", "a", 3)


def test_a_child_is_reachable_by_name_from_its_own_on_start(tree: Tree) -> None:
    tree.start([tree.spec("a"), tree.spec("b")])
    for generation in (1, 2, 3, 4):
        tree.journal.wait_for("start", "a", generation)
        tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 5)
    tree.registry.ask("root", WhichChildren())
    assert tree.script.addressable == {("a", g): True for g in range(1, 6)} | {("b", 1): True}


def test_sending_to_a_down_name_raises_not_running_at_once(tree: Tree) -> None:
    tree.start([tree.spec("a", Restart.TEMPORARY)])
    tree.registry.tell("a", Crash("gone for good"))
    wait_until(lambda: tree.node("a").state == "stopped")
    began = time.monotonic()
    with pytest.raises(NotRunning, match=r"'a' is not running \(state stopped: .*gone for good"):
        tree.registry.ask("a", Who(), timeout=5)
    with pytest.raises(NotRunning):
        tree.registry.tell("a", Who())
    with pytest.raises(NotRunning):
        tree.registry.lookup("a")
    assert time.monotonic() - began < 0.5
    assert not tree.registry.is_running("a")


def test_an_unknown_name_raises_not_running(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    with pytest.raises(NotRunning, match=r"'nobody' is not running \(no such actor\)"):
        tree.registry.ask("nobody", Who())


def test_an_ask_queued_behind_a_crash_gets_not_running_not_a_hang(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    gate = tree.gate()
    block = Block(gate)
    tree.registry.tell("a", block)
    assert block.entered.wait(5)
    tree.registry.tell("a", Crash())  # queued: runs when the gate opens
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(tree.registry.ask, "a", Who(), 5.0)  # queued behind the crash
        wait_until(lambda: inbox_size(tree.registry.lookup("a")) == 2)
        gate.set()
        began = time.monotonic()
        with pytest.raises(NotRunning, match="stopped before answering"):
            answer.result(timeout=5)
        assert time.monotonic() - began < 1.0


def test_an_ask_that_gets_no_reply_raises_ask_timeout(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    block = Block(tree.gate())
    tree.registry.tell("a", block)
    assert block.entered.wait(5)
    began = time.monotonic()
    with pytest.raises(AskTimeout, match=r"no reply from 'a' to Who within 0.1s") as caught:
        tree.registry.ask("a", Who(), timeout=0.1)
    assert 0.1 <= time.monotonic() - began < 1.0
    assert (caught.value.name, caught.value.timeout) == ("a", 0.1)


def test_an_ask_with_reply_by_is_not_handled_after_its_asker_gave_up(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    gate = tree.gate()
    block = Block(gate)
    tree.registry.tell("a", block)
    assert block.entered.wait(5)
    with pytest.raises(AskTimeout):
        tree.registry.ask("a", Write("late"), timeout=0.2)
    tree.registry.tell("a", Write("told"))  # a tell has no asker: always handled
    gate.set()
    assert tree.registry.ask("a", Who()) == ("a", 1)  # everything queued before it is done
    assert tree.journal.kinds("write") == [("write", "a", "told")]
    assert tree.registry.ask("a", Write("in time"), timeout=5) == "in time"
    assert tree.node("a").restarts == 0


def test_an_expired_ask_is_answered_with_ask_expired(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    ref = tree.registry.lookup("a")
    stale = Write("stale", reply_by=time.monotonic() - 1.0)  # as if queued past its deadline
    answer = ref.ask(stale, timeout=5)
    assert isinstance(answer, AskExpired)
    assert "Write reached 'a' 1." in str(answer)
    assert answer.late >= 1.0
    assert tree.journal.kinds("write") == []


def test_a_returned_exception_is_raised_by_ask_and_the_actor_lives(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    with pytest.raises(KeyError, match="missing"):
        tree.registry.ask("a", GiveBack(KeyError("missing")))
    assert tree.registry.ask("a", GiveBack("fine")) == "fine"
    assert tree.registry.ask("a", Who()) == ("a", 1)


def test_an_exception_raised_in_an_ask_goes_to_the_caller_without_a_restart(
    tree: Tree,
) -> None:
    tree.start([tree.spec("a")])
    with pytest.raises(ValueError, match="bad request"):
        tree.registry.ask("a", RaiseIt(ValueError("bad request")))
    assert tree.registry.ask("a", Who()) == ("a", 1)
    assert tree.node("a").restarts == 0


def test_a_deferred_reply_is_waited_for_while_the_actor_keeps_answering(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    gate = tree.gate()
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(tree.registry.ask, "a", Defer(gate, "built"), 5.0)
        assert tree.registry.ask("a", Who(), timeout=1) == ("a", 1)  # the mailbox is free
        assert not answer.done()
        gate.set()
        assert answer.result(timeout=5) == "built"


def test_a_deferred_failure_is_raised_by_ask(tree: Tree) -> None:
    tree.start([tree.spec("a")])
    gate = tree.gate()
    gate.set()
    with pytest.raises(OSError, match="disk full"):
        tree.registry.ask("a", Defer(gate, error=OSError("disk full")))
    assert tree.registry.ask("a", Who()) == ("a", 1)


def test_a_deferred_reply_that_never_comes_times_out_within_the_ask_timeout(
    tree: Tree,
) -> None:
    tree.start([tree.spec("a")])
    began = time.monotonic()
    with pytest.raises(AskTimeout, match=r"Defer within 0\.2s"):
        tree.registry.ask("a", Defer(tree.gate()), timeout=0.2)
    assert 0.2 <= time.monotonic() - began < 0.6  # one timeout in all, not one per stage


def test_an_ask_to_an_actor_that_stopped_without_answering_ends_quickly() -> None:
    # The race Pykka leaves open: an ask queued after the stopping actor drained its inbox
    # is never answered. The wait notices the actor is dead instead of sitting out the timeout.
    registry = Registry()
    root = Supervisor.start_root("solo", [], registry)
    ref = registry.lookup("solo")
    never_answered: pykka.Future[object] = pykka.ThreadingFuture()
    root.stop(block=True, timeout=5)
    began = time.monotonic()
    with pytest.raises(pykka.ActorDeadError):
        Registry._wait(ref, never_answered, timeout=10)
    assert time.monotonic() - began < 0.5


def test_snapshot_shows_states_restarts_and_generations(tree: Tree) -> None:
    tree.start(
        [
            tree.spec("a"),
            tree.spec("t", Restart.TEMPORARY),
            Supervisor.child_spec("inner", [tree.spec("x")], listener=tree.events),
        ]
    )
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 2)
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 3)
    tree.registry.tell("t", Crash("temporary trouble"))
    wait_until(lambda: tree.node("t").state == "stopped")
    tree.registry.ask("root", WhichChildren())
    nodes = {n.name: n for n in tree.registry.snapshot()}
    assert set(nodes) == {"a", "t", "inner", "x"}
    a, t, inner, x = nodes["a"], nodes["t"], nodes["inner"], nodes["x"]
    assert (a.parent, a.state, a.restarts, a.generation) == ("root", "running", 2, 3)
    assert "boom" in a.last_error
    assert (t.state, t.restarts, t.generation) == ("stopped", 0, 1)
    assert "temporary trouble" in t.last_error
    assert (inner.parent, inner.supervisor, inner.state) == ("root", True, "running")
    assert (x.parent, x.supervisor, x.state, x.generation) == ("inner", False, "running", 1)
    assert all(n.since > 0 for n in nodes.values())
    assert tree.registry.names() == ["a", "inner", "root", "x"]


def test_since_holds_while_state_and_generation_hold() -> None:
    registry = Registry()
    registry.report(NodeInfo("a", "root", "running", generation=1))
    first = registry.node("a")
    assert first is not None
    registry.report(NodeInfo("a", "root", "running", restarts=0, generation=1, last_error="x"))
    assert registry.node("a").since == first.since  # type: ignore[union-attr]
    registry.report(NodeInfo("a", "root", "restarting", generation=1, since=first.since + 5))
    assert registry.node("a").since == first.since + 5  # type: ignore[union-attr]
    registry.report(NodeInfo("a", "root", "running", generation=2))
    assert registry.node("a").since >= first.since  # type: ignore[union-attr]
    assert registry.node("a").since != first.since + 5  # type: ignore[union-attr]


def test_a_hand_made_link_does_not_wait_for_registration() -> None:
    registry = Registry()
    journal = Journal()
    ref = Probe.start(Link(None, registry, "loose"), journal, Script())
    try:
        assert ref.ask(Who(), timeout=1) == ("loose", 0)
        assert journal.items() == [("start", "loose", 0)]
    finally:
        ref.stop(block=True, timeout=5)


def test_the_root_is_unregistered_when_it_stops() -> None:
    registry = Registry()
    root = Supervisor.start_root("solo", [], registry)
    assert registry.names() == ["solo"]
    root.stop(block=True, timeout=5)
    assert registry.names() == []
