"""Backoff as the supervisor applies it: the delays of `supervisor.restart` events."""

from __future__ import annotations

import itertools
import random

from supervisors import Backoff, Intensity
from tests.supervisors.support import Crash, Tree, config, let_time_pass

SEED = 1234


def restart_delays(tree: Tree, child: str = "a") -> list[float]:
    return [e["delay"] for e in tree.events.all("supervisor.restart", child=child)]


def test_restart_delays_grow_are_capped_and_follow_the_seeded_jitter(tree: Tree) -> None:
    backoff = Backoff(initial=0.01, maximum=0.04, jitter=0.5, stable_after=60.0)
    tree.start([tree.spec("a")], config(backoff=backoff), seed=SEED)
    tree.script.start_failures["a"] = 5  # the crash, then five failed starts in a row
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 7)
    tree.events.wait_for("supervisor.child_started", child="a", generation=7)

    rng = random.Random(SEED)
    expected = [round(backoff.delay(n, rng), 3) for n in range(6)]
    delays = restart_delays(tree)
    assert delays == expected
    assert delays[0] == 0.0  # the first restart is immediate
    assert delays[1] < delays[2] < delays[3]  # growing
    assert delays[3:] == [0.04, 0.04, 0.04]  # capped
    assert delays[1:3] != [0.01, 0.02]  # jittered, not the bare exponential
    # The timers really waited: each restart came at least its delay after it was scheduled.
    timeline = [
        (name, data)
        for name, data in tree.events.items()
        if data["child"] == "a"
        and name in ("supervisor.restart", "supervisor.child_failed", "supervisor.child_started")
    ]
    checked = 0
    for (name, scheduled), (_, outcome) in itertools.pairwise(timeline):
        if name == "supervisor.restart":
            assert outcome["at"] - scheduled["at"] >= scheduled["delay"] - 0.001
            checked += 1
    assert checked == 6


def test_a_stable_run_resets_the_backoff(tree: Tree) -> None:
    backoff = Backoff(initial=0.02, maximum=1.0, jitter=0.0, stable_after=0.25)
    tree.start([tree.spec("a")], config(backoff=backoff))
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 2)
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 3)
    assert restart_delays(tree) == [0.0, 0.02]
    let_time_pass(0.3)  # generation 3 runs longer than stable_after
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 4)
    assert restart_delays(tree) == [0.0, 0.02, 0.0]


def test_failed_starts_after_a_stable_run_still_back_off(tree: Tree) -> None:
    # A start that fails never ran: the stability of an older generation must not count.
    backoff = Backoff(initial=0.02, maximum=1.0, jitter=0.0, stable_after=0.2)
    tree.start([tree.spec("a")], config(backoff=backoff))
    let_time_pass(0.25)  # generation 1 is stable
    tree.script.start_failures["a"] = 2
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 4)
    tree.events.wait_for("supervisor.child_started", child="a", generation=4)
    assert restart_delays(tree) == [0.0, 0.02, 0.04]


def test_intensity_counts_restarts_not_delays(tree: Tree) -> None:
    backoff = Backoff(initial=0.01, maximum=0.01, jitter=0.0, stable_after=60.0)
    tree.start([tree.spec("a")], config(backoff=backoff, intensity=Intensity(2, 30.0)))
    tree.script.start_failures["a"] = 5
    tree.registry.tell("a", Crash())
    assert tree.escalated.wait(5)
    assert restart_delays(tree) == [0.0, 0.01]
    assert "cannot start" in tree.escalations[0].reason
