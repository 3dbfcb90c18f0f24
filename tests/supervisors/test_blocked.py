"""Ladder steps that skip or park, and children blocked by a cause a restart cannot fix."""

from __future__ import annotations

import threading

import pytest

from supervisors import Exhausted, Intensity, NotRunning, ResetChild, Strategy
from supervisors.spec import LadderStep, ParkNow, StepSkipped
from tests.supervisors.support import Crash, Tree, Who, config
from tests.supervisors.test_ladder import BUDGET_ONE, crash, env_journal, step


def raising(tree: Tree, label: str, error: Exception) -> tuple[str, LadderStep]:
    def action() -> None:
        tree.journal.add("step", label)
        raise error

    return (label, action)


def test_a_skipped_step_moves_on_at_once_and_is_not_a_failure(tree: Tree) -> None:
    ladder = [raising(tree, "restore", StepSkipped("the data verifies")), step(tree, "rollback")]
    tree.start([tree.spec("env", ladder=ladder)], BUDGET_ONE)
    for generation in (1, 2):
        crash(tree, "env", generation)
    tree.journal.wait_for("start", "env", 3)
    assert env_journal(tree)[3:] == [
        ("crash", "env", 2),
        ("step", "restore"),
        ("step", "rollback"),  # no restart between a skipped step and the next
        ("start", "env", 3),
    ]
    [skipped] = tree.events.all("supervisor.ladder_step_skipped")
    assert (skipped["step"], skipped["reason"]) == ("restore", "the data verifies")
    assert tree.events.all("supervisor.ladder_step_failed") == []


def test_a_step_that_parks_skips_the_remaining_steps(tree: Tree) -> None:
    ladder = [raising(tree, "restore", ParkNow("nothing safe to try")), step(tree, "rollback")]
    tree.start([tree.spec("env", ladder=ladder, exhausted=Exhausted.PARK)], BUDGET_ONE)
    for generation in (1, 2):
        crash(tree, "env", generation)
    tree.events.wait_for("supervisor.child_parked", child="env")
    assert tree.journal.kinds("step") == [("step", "restore")]
    [parked] = tree.events.all("supervisor.child_parked")
    assert parked["reason"] == "restore: nothing safe to try"
    assert "crash 2" in parked["error"]
    assert tree.node("env").state == "failed"


class Cause:
    """A cause outside the child that the test sets and clears (thread-safe)."""

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, error: str) -> str | None:
        with self.lock:
            self.asked.append(error)
            return self.reason

    def clear(self) -> None:
        with self.lock:
            self.reason = None


def test_a_blocked_child_waits_without_spending_its_budget_and_resumes(tree: Tree) -> None:
    cause = Cause()
    ladder = [step(tree, "restore")]
    spec = tree.spec("env", ladder=ladder, blocked=cause, blocked_poll=0.02)
    tree.start([spec, tree.spec("other")], config(intensity=Intensity(0, 30.0)), clock=tree.clock)
    cause.reason = "port 80 held by pid 1 (init)"
    crash(tree, "env", 1)  # with no budget at all, only the block keeps the ladder out
    tree.events.wait_for("supervisor.child_blocked", child="env")
    assert tree.node("env").state == "blocked"
    with pytest.raises(NotRunning):
        tree.registry.ask("env", Who())
    [blocked] = tree.events.all("supervisor.child_blocked")
    assert blocked["reason"] == "port 80 held by pid 1 (init)"
    assert "crash 1" in cause.asked[0]
    tree.clock.advance(0.1)  # the poll asks again and again: still blocked
    assert len(cause.asked) == 6
    assert tree.events.all("supervisor.child_unblocked") == []

    cause.clear()
    tree.clock.advance(0.02)  # the next poll finds the cause gone

    tree.events.wait_for("supervisor.child_unblocked", child="env")
    tree.journal.wait_for("start", "env", 2)
    assert tree.registry.ask("env", Who()) == ("env", 2)
    assert tree.journal.kinds("step") == []
    assert tree.registry.ask("other", Who()) == ("other", 1)
    assert not tree.escalated.is_set()


def test_an_operator_reset_starts_a_blocked_child_and_ends_its_poll(tree: Tree) -> None:
    cause = Cause()
    spec = tree.spec("env", blocked=cause, blocked_poll=0.02)
    tree.start([spec], BUDGET_ONE, clock=tree.clock)
    cause.reason = "command not found"
    crash(tree, "env", 1)
    tree.events.wait_for("supervisor.child_blocked", child="env")
    tree.clock.advance(0.04)  # the poll is under way
    assert len(cause.asked) == 3

    info = tree.registry.ask("root", ResetChild("env"))

    assert (info.state, info.generation) == ("running", 2)
    asked = len(cause.asked)
    cause.clear()  # a poll still running would now unblock (and restart) the child
    tree.clock.advance(1.0)
    assert [name for _, name in tree.clock.pending()] == ["root-ticker"]  # the poll is gone
    assert len(cause.asked) == asked
    assert tree.registry.ask("env", Who()) == ("env", 2)
    assert len(cause.asked) <= asked + 1  # at most one poll was already under way
    assert tree.events.all("supervisor.child_unblocked") == []


def test_a_blocked_sibling_stays_blocked_through_a_group_restart(tree: Tree) -> None:
    cause = Cause("disk unplugged")
    spec = tree.spec("p", blocked=cause, blocked_poll=5.0)
    tree.start([tree.spec("a"), spec], config(strategy=Strategy.ONE_FOR_ALL))
    crash(tree, "p", 1)
    tree.events.wait_for("supervisor.child_blocked", child="p")
    tree.journal.wait_for("start", "a", 2)  # the group restarted without the blocked child
    mark = tree.journal.mark()
    crash(tree, "a", 2)
    tree.journal.wait_for("start", "a", 3)
    assert tree.journal.since(mark) == [("crash", "a", 2), ("start", "a", 3)]
    assert tree.node("p").state == "blocked"


def test_a_failure_that_needs_the_ladder_takes_the_next_step_at_once(tree: Tree) -> None:
    ladder = [step(tree, "restore"), step(tree, "rollback")]
    spec = tree.spec("env", ladder=ladder, needs_ladder=lambda error: "data fails" in error)
    tree.start([spec], config(intensity=Intensity(5, 30.0)))  # budget to spare
    crash(tree, "env", 1)  # an ordinary failure: a plain restart
    tree.journal.wait_for("start", "env", 2)

    tree.registry.tell("env", Crash("the data fails its check"))

    tree.journal.wait_for("start", "env", 3)
    assert env_journal(tree)[2:] == [
        ("start", "env", 2),
        ("crash", "env", 2),
        ("step", "restore"),  # at once, the budget unspent
        ("start", "env", 3),
    ]
