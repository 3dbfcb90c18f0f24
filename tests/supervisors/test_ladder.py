"""The escalation ladder: steps in order, one restart after each, then escalate or park."""

from __future__ import annotations

import pytest

from supervisors import Backoff, Exhausted, Intensity, NotRunning, ResetChild, Strategy
from supervisors.spec import LadderStep
from tests.supervisors.support import Crash, Proven, Tree, Who, config

BUDGET_ONE = config(intensity=Intensity(max_restarts=1, max_seconds=30.0))


def step(tree: Tree, label: str, fail: bool = False) -> tuple[str, LadderStep]:
    def action() -> None:
        tree.journal.add("step", label)
        if fail:
            raise RuntimeError(f"{label} failed")

    return (label, action)


def crash(tree: Tree, name: str, generation: int) -> None:
    """Crash generation ``generation`` of ``name`` once it has started."""
    tree.journal.wait_for("start", name, generation)
    tree.registry.tell(name, Crash(f"crash {generation}"))


def env_journal(tree: Tree, since: int = 0) -> list[tuple[object, ...]]:
    return [i for i in tree.journal.since(since) if i[0] == "step" or i[1] == "env"]


def test_steps_run_in_order_each_followed_by_one_restart_then_escalation(tree: Tree) -> None:
    ladder = [step(tree, "restore"), step(tree, "rollback")]
    tree.start([tree.spec("env", ladder=ladder), tree.spec("other")], BUDGET_ONE)
    for generation in (1, 2, 3, 4):
        crash(tree, "env", generation)
    assert tree.escalated.wait(5)
    assert env_journal(tree) == [
        ("start", "env", 1),
        ("crash", "env", 1),
        ("start", "env", 2),  # within the budget: a plain restart
        ("crash", "env", 2),  # budget spent
        ("step", "restore"),
        ("start", "env", 3),  # one restart after the step
        ("crash", "env", 3),  # it failed too: next step
        ("step", "rollback"),
        ("start", "env", 4),
        ("crash", "env", 4),  # ladder spent: escalate
    ]
    assert ("stop", "other", 1) in tree.journal.items()
    assert tree.escalations[0].child == "env"
    assert "crash 4" in tree.escalations[0].reason
    names = [n for n in tree.events.names(child="env") if "ladder" in n or "escalate" in n]
    assert names == [
        "supervisor.ladder_step",
        "supervisor.ladder_step_done",
        "supervisor.ladder_step",
        "supervisor.ladder_step_done",
        "supervisor.escalate",
    ]
    assert [e["step"] for e in tree.events.all("supervisor.ladder_step")] == [
        "restore",
        "rollback",
    ]


def test_a_child_proven_after_a_step_fails_anew_with_a_restart_not_the_next_step(
    tree: Tree,
) -> None:
    ladder = [step(tree, "restore"), step(tree, "rollback")]
    tree.start([tree.spec("env", ladder=ladder)], BUDGET_ONE)
    for generation in (1, 2):
        crash(tree, "env", generation)
    tree.journal.wait_for("start", "env", 3)
    tree.registry.tell("env", Proven())  # long before stable_after
    crash(tree, "env", 3)
    tree.journal.wait_for("start", "env", 4)
    assert env_journal(tree)[3:] == [
        ("crash", "env", 2),
        ("step", "restore"),
        ("start", "env", 3),
        ("crash", "env", 3),  # after proving itself: a new failure, within the budget
        ("start", "env", 4),
    ]
    assert [e["ladder_step"] for e in tree.events.all("supervisor.child_proven")] == [1]


def test_a_failing_step_moves_to_the_next_step_without_a_restart(tree: Tree) -> None:
    ladder = [step(tree, "restore", fail=True), step(tree, "rollback")]
    tree.start([tree.spec("env", ladder=ladder)], BUDGET_ONE)
    for generation in (1, 2):
        crash(tree, "env", generation)
    tree.journal.wait_for("start", "env", 3)
    assert env_journal(tree)[3:] == [
        ("crash", "env", 2),
        ("step", "restore"),
        ("step", "rollback"),
        ("start", "env", 3),
    ]
    [failed] = tree.events.all("supervisor.ladder_step_failed")
    assert failed["step"] == "restore"
    assert "restore failed" in failed["error"]
    assert tree.registry.ask("env", Who()) == ("env", 3)


def test_exhausted_ladder_parks_the_child_until_reset(tree: Tree) -> None:
    ladder = [step(tree, "restore")]
    tree.start(
        [tree.spec("env", ladder=ladder, exhausted=Exhausted.PARK), tree.spec("other")],
        BUDGET_ONE,
    )
    for generation in (1, 2, 3):
        crash(tree, "env", generation)
    tree.events.wait_for("supervisor.child_parked", child="env")
    assert tree.node("env").state == "failed"
    with pytest.raises(NotRunning, match=r"state failed: .*crash 3"):
        tree.registry.ask("env", Who())
    assert tree.registry.ask("other", Who()) == ("other", 1)  # parking is not escalation
    assert not tree.escalated.is_set()

    info = tree.registry.ask("root", ResetChild("env"))
    assert (info.name, info.state, info.generation) == ("env", "running", 4)
    assert tree.registry.ask("env", Who()) == ("env", 4)
    # The reset cleared the history: the next crash is an ordinary restart, not a step.
    crash(tree, "env", 4)
    tree.journal.wait_for("start", "env", 5)
    assert tree.journal.kinds("step") == [("step", "restore")]


def test_a_stable_run_after_a_step_resets_the_ladder(tree: Tree) -> None:
    ladder = [step(tree, "restore"), step(tree, "rollback")]
    backoff = Backoff(0.0, 0.0, 0.0, stable_after=0.2)
    tree.start(
        [tree.spec("env", ladder=ladder)],
        config(intensity=BUDGET_ONE.intensity, backoff=backoff),
        clock=tree.clock,
    )
    for generation in (1, 2):
        crash(tree, "env", generation)
    tree.events.wait_for("supervisor.child_started", child="env", generation=3)
    tree.clock.advance(0.25)  # the restart after "restore" runs stably
    crash(tree, "env", 3)
    tree.journal.wait_for("start", "env", 4)
    assert tree.journal.kinds("step") == [("step", "restore")]  # a plain restart again


def test_ladder_restart_follows_the_strategy(tree: Tree) -> None:
    ladder = [step(tree, "restore")]
    tree.start(
        [tree.spec("a"), tree.spec("env", ladder=ladder), tree.spec("c")],
        config(strategy=Strategy.REST_FOR_ONE, intensity=BUDGET_ONE.intensity),
    )
    crash(tree, "env", 1)
    tree.journal.wait_for("start", "c", 2)  # the whole group is back before the next crash
    mark = tree.journal.mark()
    crash(tree, "env", 2)
    tree.journal.wait_for("start", "c", 3)
    assert tree.journal.since(mark) == [
        ("crash", "env", 2),
        ("stop", "c", 2),  # the group stops before the step runs
        ("step", "restore"),
        ("start", "env", 3),
        ("start", "c", 3),
    ]
    assert tree.registry.ask("a", Who()) == ("a", 1)


def test_a_parked_sibling_stays_parked_through_a_group_restart(tree: Tree) -> None:
    tree.start(
        [tree.spec("a"), tree.spec("p", exhausted=Exhausted.PARK)],
        config(strategy=Strategy.ONE_FOR_ALL, intensity=Intensity(1, 30.0)),
    )
    crash(tree, "p", 1)
    crash(tree, "p", 2)
    tree.events.wait_for("supervisor.child_parked", child="p")
    mark = tree.journal.mark()
    crash(tree, "a", 2)  # within the budget again (parking cleared it)
    tree.journal.wait_for("start", "a", 3)
    assert tree.registry.ask("a", Who()) == ("a", 3)
    assert tree.journal.since(mark) == [("crash", "a", 2), ("start", "a", 3)]
    assert tree.node("p").state == "failed"
